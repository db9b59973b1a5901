using System.Text;

namespace Lethe.Protocol.Identifiers;

/// <summary>An event ID: <c>$opaque:server</c> (room versions 1–2) or <c>$hash</c> (3 and later).</summary>
public readonly record struct EventId
{
    private EventId(string value) => Value = value;

    /// <summary>The full ID.</summary>
    public string Value { get; }

    /// <inheritdoc />
    public override string ToString() => Value;

    /// <summary>Parses an event ID: a <c>$</c> sigil, a non-empty opaque part, at most 255 bytes.</summary>
    public static bool TryParse(string? text, out EventId result)
    {
        result = default;
        if (text is null || text.Length < 2 || text[0] != '$' || Encoding.UTF8.GetByteCount(text) > 255 || text.Contains('\0', StringComparison.Ordinal))
        {
            return false;
        }

        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0 && (colon == 1 || !ServerName.IsValid(text[(colon + 1)..])))
        {
            return false;
        }

        result = new EventId(text);
        return true;
    }

    /// <summary>Parses an event ID or throws <see cref="FormatException"/>.</summary>
    public static EventId Parse(string text) =>
        TryParse(text, out var e) ? e : throw new FormatException($"'{text}' is not a valid event ID");
}
