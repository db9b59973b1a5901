using System.Text;

namespace Lethe.Protocol.Identifiers;

/// <summary>A room alias, <c>#localpart:server</c>.</summary>
public readonly record struct RoomAlias
{
    private RoomAlias(string value, string localpart, ServerName server)
    {
        Value = value;
        Localpart = localpart;
        Server = server;
    }

    /// <summary>The full alias.</summary>
    public string Value { get; }

    /// <summary>The part between <c>#</c> and the first <c>:</c>.</summary>
    public string Localpart { get; }

    /// <summary>The server that holds the alias.</summary>
    public ServerName Server { get; }

    /// <inheritdoc />
    public override string ToString() => Value;

    /// <summary>Parses an alias: any localpart without <c>:</c> or NUL, a valid server name, at most 255 bytes.</summary>
    public static bool TryParse(string? text, out RoomAlias result)
    {
        result = default;
        if (text is null || text.Length < 3 || text[0] != '#' || Encoding.UTF8.GetByteCount(text) > 255)
        {
            return false;
        }

        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            return false;
        }

        var localpart = text[1..colon];
        if (localpart.Contains('\0', StringComparison.Ordinal) || !ServerName.TryParse(text[(colon + 1)..], out var server))
        {
            return false;
        }

        result = new RoomAlias(text, localpart, server);
        return true;
    }

    /// <summary>Parses an alias or throws <see cref="FormatException"/>.</summary>
    public static RoomAlias Parse(string text) =>
        TryParse(text, out var a) ? a : throw new FormatException($"'{text}' is not a valid room alias");
}
