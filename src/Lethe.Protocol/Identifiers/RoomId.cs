using System.Text;

namespace Lethe.Protocol.Identifiers;

/// <summary>A room ID: <c>!opaque:server</c>, or <c>!hash</c> (the create event's ID with a <c>!</c> sigil) from room version 12.</summary>
public readonly record struct RoomId
{
    private RoomId(string value, ServerName? server)
    {
        Value = value;
        Server = server;
    }

    /// <summary>The full ID.</summary>
    public string Value { get; }

    /// <summary>The creating server, for room IDs that carry one.</summary>
    public ServerName? Server { get; }

    /// <inheritdoc />
    public override string ToString() => Value;

    /// <summary>Parses a room ID of either form.</summary>
    public static bool TryParse(string? text, out RoomId result)
    {
        result = default;
        if (text is null || text.Length < 2 || text[0] != '!' || Encoding.UTF8.GetByteCount(text) > 255 || text.Contains('\0', StringComparison.Ordinal))
        {
            return false;
        }

        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            result = new RoomId(text, null);
            return true;
        }

        if (colon == 1 || !ServerName.TryParse(text[(colon + 1)..], out var server))
        {
            return false;
        }

        result = new RoomId(text, server);
        return true;
    }

    /// <summary>Parses a room ID or throws <see cref="FormatException"/>.</summary>
    public static RoomId Parse(string text) =>
        TryParse(text, out var r) ? r : throw new FormatException($"'{text}' is not a valid room ID");
}
