using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Lethe.Protocol.Identifiers;

/// <summary>A validated server name: DNS name, IPv4 literal or bracketed IPv6 literal, with an optional port.</summary>
public readonly record struct ServerName
{
    private ServerName(string value, string host, int? port)
    {
        Value = value;
        Host = host;
        Port = port;
    }

    /// <summary>The server name as written, e.g. <c>example.org:8448</c>.</summary>
    public string Value { get; }

    /// <summary>The host part (IPv6 literals keep their brackets).</summary>
    public string Host { get; }

    /// <summary>The explicit port, if any.</summary>
    public int? Port { get; }

    /// <summary>True for an IPv4 or IPv6 literal.</summary>
    public bool IsIpLiteral => Host.StartsWith('[') || IPAddress.TryParse(Host, out var ip) && ip.AddressFamily == AddressFamily.InterNetwork && IsIpv4Literal(Host);

    /// <inheritdoc />
    public override string ToString() => Value;

    /// <summary>Parses a server name per the spec grammar.</summary>
    public static bool TryParse(string? text, out ServerName result)
    {
        result = default;
        if (string.IsNullOrEmpty(text) || text.Length > 255)
        {
            return false;
        }

        string host;
        int? port = null;
        string? portText = null;
        if (text[0] == '[')
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                return false;
            }

            host = text[..(close + 1)];
            var rest = text[(close + 1)..];
            if (rest.Length > 0)
            {
                if (rest[0] != ':')
                {
                    return false;
                }

                portText = rest[1..];
            }

            var inner = host[1..^1];
            if (inner.Length is < 2 or > 45 || !inner.All(IsIpv6Char)
                || !IPAddress.TryParse(inner, out var ip6) || ip6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon >= 0)
            {
                host = text[..colon];
                portText = text[(colon + 1)..];
            }
            else
            {
                host = text;
            }

            if (host.Length == 0 || !host.All(IsDnsChar))
            {
                return false;
            }

            // Four dotted all-digit groups read as an IPv4 literal, whose octets must be 0..255.
            if (LooksLikeIpv4(host) && !IsIpv4Literal(host))
            {
                return false;
            }
        }

        if (portText is not null)
        {
            if (portText.Length is 0 or > 5 || !portText.All(char.IsAsciiDigit))
            {
                return false;
            }

            var p = int.Parse(portText, CultureInfo.InvariantCulture);
            if (p > 65535)
            {
                return false;
            }

            port = p;
        }

        result = new ServerName(text, host, port);
        return true;
    }

    /// <summary>Parses a server name or throws <see cref="FormatException"/>.</summary>
    public static ServerName Parse(string text) =>
        TryParse(text, out var s) ? s : throw new FormatException($"'{text}' is not a valid server name");

    /// <summary>True when <paramref name="text"/> is a valid server name.</summary>
    public static bool IsValid([NotNullWhen(true)] string? text) => TryParse(text, out _);

    private static bool IsDnsChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '.';

    private static bool IsIpv6Char(char c) => char.IsAsciiHexDigit(c) || c is ':' or '.';

    private static bool LooksLikeIpv4(string host)
    {
        var parts = host.Split('.');
        return parts.Length == 4 && parts.All(p => p.Length is >= 1 and <= 3 && p.All(char.IsAsciiDigit));
    }

    private static bool IsIpv4Literal(string host) =>
        LooksLikeIpv4(host) && host.Split('.').All(p => int.Parse(p, CultureInfo.InvariantCulture) <= 255);
}
