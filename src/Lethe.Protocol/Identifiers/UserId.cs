using System.Text;

namespace Lethe.Protocol.Identifiers;

/// <summary>A Matrix user ID, <c>@localpart:server</c>.</summary>
public readonly record struct UserId
{
    private UserId(string value, string localpart, ServerName server)
    {
        Value = value;
        Localpart = localpart;
        Server = server;
    }

    /// <summary>The full ID.</summary>
    public string Value { get; }

    /// <summary>The part between <c>@</c> and the first <c>:</c>.</summary>
    public string Localpart { get; }

    /// <summary>The server that allocated the ID.</summary>
    public ServerName Server { get; }

    /// <summary>True when the localpart uses only the characters the current grammar allows (a–z, 0–9, <c>-._=/+</c>).</summary>
    public bool IsCompliant => IsValidLocalpart(Localpart);

    /// <inheritdoc />
    public override string ToString() => Value;

    /// <summary>Parses a user ID, accepting the historical localpart grammar (anything but <c>:</c> and NUL) as servers must for events.</summary>
    public static bool TryParse(string? text, out UserId result)
    {
        result = default;
        if (text is null || text.Length < 3 || text[0] != '@' || Encoding.UTF8.GetByteCount(text) > 255)
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

        result = new UserId(text, localpart, server);
        return true;
    }

    /// <summary>Parses a user ID whose localpart must follow the current (strict) grammar.</summary>
    public static bool TryParseStrict(string? text, out UserId result) => TryParse(text, out result) && result.IsCompliant;

    /// <summary>Parses a user ID or throws <see cref="FormatException"/>.</summary>
    public static UserId Parse(string text) =>
        TryParse(text, out var u) ? u : throw new FormatException($"'{text}' is not a valid user ID");

    /// <summary>Builds a user ID from a localpart and server name; the localpart must be valid.</summary>
    public static UserId Create(string localpart, ServerName server)
    {
        if (!IsValidLocalpart(localpart))
        {
            throw new FormatException($"'{localpart}' is not a valid user localpart");
        }

        return Parse("@" + localpart + ":" + server.Value);
    }

    /// <summary>True when the localpart is non-empty and uses only a–z, 0–9 and <c>-._=/+</c>.</summary>
    public static bool IsValidLocalpart(string localpart)
    {
        if (localpart.Length == 0)
        {
            return false;
        }

        foreach (var c in localpart)
        {
            if (!(char.IsAsciiDigit(c) || c is >= 'a' and <= 'z' || c is '-' or '.' or '=' or '_' or '/' or '+'))
            {
                return false;
            }
        }

        return true;
    }
}
