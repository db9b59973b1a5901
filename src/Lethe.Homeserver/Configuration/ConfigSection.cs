using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Lethe.Homeserver.Configuration;

/// <summary>A YAML mapping read with Synapse's conventions (YAML 1.1 booleans, durations like <c>1d</c>, sizes like <c>50M</c>); remembers which keys were read so the rest can be reported as unknown.</summary>
internal sealed class ConfigSection
{
    private readonly YamlMappingNode _node;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);
    private readonly List<ConfigSection> _all;

    private ConfigSection(YamlMappingNode node, string path, List<ConfigSection>? all)
    {
        _node = node;
        Path = path;
        _all = all ?? [];
        _all.Add(this);
    }

    /// <summary>Where this section sits, e.g. <c>listeners[1]</c>; empty for the root.</summary>
    public string Path { get; }

    public static ConfigSection Parse(string yaml)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new ConfigException("(file)", $"not valid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.InnerException?.Message ?? e.Message}");
        }

        if (stream.Documents.Count == 0)
        {
            throw new ConfigException("(file)", "the file is empty");
        }

        return stream.Documents[0].RootNode is YamlMappingNode root
            ? new ConfigSection(root, "", null)
            : throw new ConfigException("(file)", "the top level must be a mapping of keys to values");
    }

    public string KeyPath(string key) => Path.Length == 0 ? key : Path + "." + key;

    public bool Has(string key) => Get(key) is not null;

    /// <summary>Marks every key of this section as understood.</summary>
    public void AcceptAll()
    {
        foreach (var key in Keys())
        {
            _read.Add(key);
        }
    }

    /// <summary>Marks a key as understood without reading it.</summary>
    public void Accept(string key) => _read.Add(key);

    private YamlNode? Get(string key)
    {
        _read.Add(key);
        var node = _node.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;
        return IsNull(node) ? null : node;
    }

    /// <summary>True when the key is present with a null value (<c>key: null</c> or <c>key:</c>), which some options use to mean "never".</summary>
    public bool IsExplicitNull(string key)
    {
        _read.Add(key);
        return _node.Children.TryGetValue(new YamlScalarNode(key), out var value) && IsNull(value);
    }

    private static bool IsNull(YamlNode? node) =>
        node is null || node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } s && s.Value is null or "" or "~" or "null" or "Null" or "NULL";

    private string Scalar(string key, YamlNode node, string expected) =>
        node is YamlScalarNode s ? s.Value ?? "" : throw new ConfigException(KeyPath(key), $"must be {expected}, not a {(node is YamlSequenceNode ? "list" : "mapping")}");

    public string? String(string key, string? fallback = null)
    {
        var node = Get(key);
        return node is null ? fallback : Scalar(key, node, "a string");
    }

    public string RequiredString(string key) =>
        String(key) is { Length: > 0 } s ? s : throw new ConfigException(KeyPath(key), "is required");

    public bool Bool(string key, bool fallback)
    {
        var node = Get(key);
        if (node is null)
        {
            return fallback;
        }

        // PyYAML (YAML 1.1), which Synapse uses, also reads yes/no/on/off as booleans.
        return Scalar(key, node, "true or false").ToLowerInvariant() switch
        {
            "true" or "yes" or "on" => true,
            "false" or "no" or "off" => false,
            var other => throw new ConfigException(KeyPath(key), $"must be true or false, not '{other}'"),
        };
    }

    public long Integer(string key, long fallback, long min = long.MinValue, long max = long.MaxValue)
    {
        var node = Get(key);
        if (node is null)
        {
            return fallback;
        }

        var text = Scalar(key, node, "an integer");
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            throw new ConfigException(KeyPath(key), $"must be an integer, not '{text}'");
        }

        return value < min || value > max
            ? throw new ConfigException(KeyPath(key), $"must be between {min} and {max}, not {value}")
            : value;
    }

    public double Number(string key, double fallback, double min = 0)
    {
        var node = Get(key);
        if (node is null)
        {
            return fallback;
        }

        var text = Scalar(key, node, "a number");
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || double.IsNaN(value) || double.IsInfinity(value))
        {
            throw new ConfigException(KeyPath(key), $"must be a number, not '{text}'");
        }

        return value < min ? throw new ConfigException(KeyPath(key), $"must be at least {min}, not {value}") : value;
    }

    /// <summary>A duration in milliseconds: an integer (ms) or a number with suffix ms, s, m, h, d, w or y (Synapse's units, plus ms).</summary>
    public long? Duration(string key, long? fallback)
    {
        var node = Get(key);
        if (node is null)
        {
            return fallback;
        }

        var text = Scalar(key, node, "a duration");
        return ParseDuration(text) ?? throw new ConfigException(KeyPath(key), $"must be a duration such as 30s, 10m, 12h, 7d, 4w or 1y (or milliseconds), not '{text}'");
    }

    /// <summary>A size in bytes: an integer or a number with suffix K, M, G or T (binary multiples), as Synapse reads them.</summary>
    public long Size(string key, long fallback)
    {
        var node = Get(key);
        if (node is null)
        {
            return fallback;
        }

        var text = Scalar(key, node, "a size");
        return ParseSize(text) ?? throw new ConfigException(KeyPath(key), $"must be a size such as 512K, 50M or 1G (or bytes), not '{text}'");
    }

    /// <summary>See <see cref="ConfigUnits.ParseDuration"/>.</summary>
    public static long? ParseDuration(string text) => ConfigUnits.ParseDuration(text);

    /// <summary>See <see cref="ConfigUnits.ParseSize"/>.</summary>
    public static long? ParseSize(string text) => ConfigUnits.ParseSize(text);

    public ConfigSection? Section(string key)
    {
        var node = Get(key);
        return node switch
        {
            null => null,
            YamlMappingNode m => new ConfigSection(m, KeyPath(key), _all),
            _ => throw new ConfigException(KeyPath(key), "must be a mapping of keys to values"),
        };
    }

    public List<ConfigSection> SectionList(string key)
    {
        var node = Get(key);
        if (node is null)
        {
            return [];
        }

        if (node is not YamlSequenceNode seq)
        {
            throw new ConfigException(KeyPath(key), "must be a list");
        }

        var result = new List<ConfigSection>();
        for (var i = 0; i < seq.Children.Count; i++)
        {
            result.Add(seq.Children[i] is YamlMappingNode m
                ? new ConfigSection(m, $"{KeyPath(key)}[{i}]", _all)
                : throw new ConfigException($"{KeyPath(key)}[{i}]", "must be a mapping of keys to values"));
        }

        return result;
    }

    public List<string> StringList(string key)
    {
        var node = Get(key);
        if (node is null)
        {
            return [];
        }

        if (node is not YamlSequenceNode seq)
        {
            throw new ConfigException(KeyPath(key), "must be a list");
        }

        var result = new List<string>();
        for (var i = 0; i < seq.Children.Count; i++)
        {
            result.Add(seq.Children[i] is YamlScalarNode { Value: { } v }
                ? v
                : throw new ConfigException($"{KeyPath(key)}[{i}]", "must be a string"));
        }

        return result;
    }

    /// <summary>Keys present in this mapping whose values as strings (for pass-through maps such as database args).</summary>
    public IEnumerable<string> Keys()
    {
        foreach (var kv in _node.Children)
        {
            if (kv.Key is YamlScalarNode { Value: { } k })
            {
                yield return k;
            }
        }
    }

    /// <summary>The value under <paramref name="key"/> as JSON (for options passed to clients verbatim).</summary>
    public JsonNode? Json(string key) => ToJson(Get(key));

    private static JsonNode? ToJson(YamlNode? node)
    {
        switch (node)
        {
            case null:
                return null;
            case YamlMappingNode m:
                var obj = new JsonObject();
                foreach (var kv in m.Children)
                {
                    obj[((YamlScalarNode)kv.Key).Value ?? ""] = IsNull(kv.Value) ? null : ToJson(kv.Value);
                }

                return obj;
            case YamlSequenceNode s:
                var arr = new JsonArray();
                foreach (var child in s.Children)
                {
                    arr.Add(IsNull(child) ? null : ToJson(child));
                }

                return arr;
            case YamlScalarNode scalar:
                var v = scalar.Value ?? "";
                if (scalar.Style is ScalarStyle.Plain or ScalarStyle.Any)
                {
                    if (long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
                    {
                        return l;
                    }

                    if (v is "true" or "false")
                    {
                        return v == "true";
                    }
                }

                return v;
            default:
                return null;
        }
    }

    /// <summary>Keys present in this section or any section read from the same file that nothing read: each is reported once as a warning.</summary>
    public IEnumerable<string> UnreadKeys()
    {
        foreach (var section in _all)
        {
            foreach (var key in section.Keys())
            {
                if (!section._read.Contains(key))
                {
                    yield return section.KeyPath(key);
                }
            }
        }
    }
}
