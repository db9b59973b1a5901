using System.Net;
using System.Text.RegularExpressions;
using Lethe.Homeserver.Configuration;

namespace Lethe.Homeserver.Media;

/// <summary>URL preview settings, in Synapse's keys. Off by default; when on, an IP blacklist is mandatory.</summary>
public sealed record UrlPreviewConfig
{
    /// <summary><c>url_preview_enabled</c>.</summary>
    public bool Enabled { get; init; }

    /// <summary><c>url_preview_ip_range_blacklist</c>: addresses the previewer never connects to (checked on every resolved address, at connect time).</summary>
    public IReadOnlyList<IPNetwork> IpRangeBlacklist { get; init; } = [];

    /// <summary><c>url_preview_ip_range_whitelist</c>: exceptions to the blacklist.</summary>
    public IReadOnlyList<IPNetwork> IpRangeWhitelist { get; init; } = [];

    /// <summary><c>url_preview_url_blacklist</c>: URLs never fetched.</summary>
    public IReadOnlyList<UrlBlacklistRule> UrlBlacklist { get; init; } = [];

    /// <summary><c>max_spider_size</c>: the most bytes read from one response (default 10M, as Synapse).</summary>
    public long MaxSpiderSize { get; init; } = 10L * 1024 * 1024;

    /// <summary><c>url_preview_timeout</c> (Lethe's own): how long one fetch, redirects and body included, may take (ms).</summary>
    public long TimeoutMs { get; init; } = 10_000;

    /// <summary><c>url_preview_accept_language</c>: sent as Accept-Language (default <c>en</c>, as Synapse).</summary>
    public IReadOnlyList<string> AcceptLanguage { get; init; } = ["en"];

    /// <summary>Reads the keys from the root of homeserver.yaml.</summary>
    internal static UrlPreviewConfig Read(ConfigSection root)
    {
        var enabled = root.Bool("url_preview_enabled", false);
        var blacklist = ConfigLoader.ReadIpRanges(root, "url_preview_ip_range_blacklist");
        var whitelist = ConfigLoader.ReadIpRanges(root, "url_preview_ip_range_whitelist");
        var rules = new List<UrlBlacklistRule>();
        foreach (var entry in root.SectionList("url_preview_url_blacklist"))
        {
            rules.Add(UrlBlacklistRule.Read(entry));
        }

        var maxSize = root.Size("max_spider_size", 10L * 1024 * 1024);
        if (maxSize <= 0)
        {
            throw new ConfigException("max_spider_size", "must be positive");
        }

        var timeout = root.Duration("url_preview_timeout", 10_000)!.Value;
        if (timeout is <= 0 or > 120_000)
        {
            throw new ConfigException("url_preview_timeout", "must be more than 0 and at most 2m");
        }

        var languages = root.StringList("url_preview_accept_language");
        for (var i = 0; i < languages.Count; i++)
        {
            // It goes into a request header: language tags, q-values and '*' only.
            if (languages[i].Length is 0 or > 64 || languages[i].Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('-' or '*' or ';' or '=' or '.' or ' ')))
            {
                throw new ConfigException($"url_preview_accept_language[{i}]", $"'{languages[i]}' is not a language range such as en-GB or fr;q=0.8");
            }
        }

        if (enabled && blacklist.Count == 0)
        {
            throw new ConfigException("url_preview_ip_range_blacklist", "is required when url_preview_enabled is true (list the private and loopback ranges the server must never fetch)");
        }

        return new UrlPreviewConfig
        {
            Enabled = enabled,
            IpRangeBlacklist = blacklist,
            IpRangeWhitelist = whitelist,
            UrlBlacklist = rules,
            MaxSpiderSize = maxSize,
            TimeoutMs = timeout,
            AcceptLanguage = languages.Count > 0 ? languages : ["en"],
        };
    }
}

/// <summary>
/// One <c>url_preview_url_blacklist</c> entry: a URL is blocked when every component the entry names matches. Patterns
/// are globs (<c>*</c>, <c>?</c>, <c>[…]</c>, as Python's fnmatch) or, when they start with <c>^</c>, regular expressions
/// matched from the start, as in Synapse.
/// </summary>
public sealed class UrlBlacklistRule
{
    /// <summary>The URL components a rule may name (Python's urlsplit attributes, as Synapse reads them).</summary>
    public static readonly IReadOnlySet<string> Components = new HashSet<string>(StringComparer.Ordinal)
    {
        "scheme", "netloc", "path", "params", "query", "fragment", "username", "password", "hostname", "port",
    };

    private readonly List<(string Component, Regex Pattern)> _patterns;

    private UrlBlacklistRule(List<(string, Regex)> patterns) => _patterns = patterns;

    /// <summary>Builds a rule from component → pattern pairs; throws <see cref="ArgumentException"/> for an unknown component or a bad pattern.</summary>
    public static UrlBlacklistRule Of(IEnumerable<KeyValuePair<string, string>> entry)
    {
        var patterns = new List<(string, Regex)>();
        foreach (var (component, pattern) in entry)
        {
            if (!Components.Contains(component))
            {
                throw new ArgumentException($"unknown URL component '{component}' (known: {string.Join(", ", Components.Order(StringComparer.Ordinal))})");
            }

            patterns.Add((component, new Regex(pattern.StartsWith('^') ? pattern : Push.Glob.RegexSource(pattern, words: false), RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100))));
        }

        return new UrlBlacklistRule(patterns);
    }

    internal static UrlBlacklistRule Read(ConfigSection entry)
    {
        var pairs = new List<KeyValuePair<string, string>>();
        foreach (var key in entry.Keys().ToList())
        {
            pairs.Add(new(key, entry.String(key) ?? ""));
        }

        try
        {
            return Of(pairs);
        }
        catch (ArgumentException e)
        {
            throw new ConfigException(entry.Path, e.Message);
        }
    }

    /// <summary>Whether <paramref name="url"/> matches every component of this rule (a component the URL lacks never matches).</summary>
    public bool Matches(Uri url)
    {
        foreach (var (component, pattern) in _patterns)
        {
            if (Component(url, component) is not { } value)
            {
                return false;
            }

            try
            {
                if (!pattern.IsMatch(value))
                {
                    return false;
                }
            }
            catch (RegexMatchTimeoutException)
            {
                return true; // a pattern too slow to decide blocks rather than lets through
            }
        }

        return true;
    }

    private static string? Component(Uri url, string name)
    {
        var userInfo = url.UserInfo;
        var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
        var path = url.AbsolutePath;
        var lastSlash = path.LastIndexOf('/');
        var semicolon = path.IndexOf(';', lastSlash + 1);
        return name switch
        {
            "scheme" => url.Scheme,
            "netloc" => (userInfo.Length > 0 ? userInfo + "@" : "") + url.Authority,
            "hostname" => url.IdnHost.Trim('[', ']').ToLowerInvariant(),
            "port" => url.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "path" => semicolon < 0 ? path : path[..semicolon],
            "params" => semicolon < 0 ? "" : path[(semicolon + 1)..],
            "query" => url.Query.TrimStart('?'),
            "fragment" => url.Fragment.TrimStart('#'),
            "username" => userInfo.Length == 0 ? null : colon < 0 ? userInfo : userInfo[..colon],
            "password" => colon < 0 ? null : userInfo[(colon + 1)..],
            _ => null,
        };
    }
}
