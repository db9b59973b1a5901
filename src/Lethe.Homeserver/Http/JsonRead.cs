using System.Text;
using System.Text.Json.Nodes;
using Lethe.Protocol.Json;

namespace Lethe.Homeserver.Http;

/// <summary>Typed reads from request bodies that fail with the right Matrix error: M_MISSING_PARAM, M_BAD_JSON or M_INVALID_PARAM.</summary>
public static class JsonRead
{
    /// <summary>Longest string accepted in an ordinary field, in bytes, unless a field says otherwise.</summary>
    public const int DefaultMaxStringBytes = 65536;

    /// <summary>A required string.</summary>
    public static string RequiredString(this JsonObject body, string key, int maxBytes = DefaultMaxStringBytes) =>
        body.OptionalString(key, maxBytes) ?? throw MatrixException.MissingParam($"Missing '{key}'");

    /// <summary>An optional string; null when absent or null.</summary>
    public static string? OptionalString(this JsonObject body, string key, int maxBytes = DefaultMaxStringBytes)
    {
        var node = body[key];
        if (node is null)
        {
            return null;
        }

        var s = node.AsString() ?? throw MatrixException.BadJson($"'{key}' must be a string");
        if (Encoding.UTF8.GetByteCount(s) > maxBytes)
        {
            throw MatrixException.Of(400, ErrCode.TooLarge, $"'{key}' is longer than {maxBytes} bytes");
        }

        return s;
    }

    /// <summary>An optional boolean.</summary>
    public static bool OptionalBool(this JsonObject body, string key, bool fallback)
    {
        var node = body[key];
        if (node is null)
        {
            return fallback;
        }

        return node.TryGetBool(out var b) ? b : throw MatrixException.BadJson($"'{key}' must be a boolean");
    }

    /// <summary>An optional integer within bounds.</summary>
    public static long? OptionalInteger(this JsonObject body, string key, long min = long.MinValue, long max = long.MaxValue)
    {
        var node = body[key];
        if (node is null)
        {
            return null;
        }

        if (!node.TryGetInt64(out var l))
        {
            throw MatrixException.BadJson($"'{key}' must be an integer");
        }

        return l < min || l > max ? throw MatrixException.InvalidParam($"'{key}' must be between {min} and {max}") : l;
    }

    /// <summary>An optional object.</summary>
    public static JsonObject? OptionalObject(this JsonObject body, string key) =>
        body[key] switch
        {
            null => null,
            JsonObject o => o,
            _ => throw MatrixException.BadJson($"'{key}' must be an object"),
        };

    /// <summary>An optional array.</summary>
    public static JsonArray? OptionalArray(this JsonObject body, string key) =>
        body[key] switch
        {
            null => null,
            JsonArray a => a,
            _ => throw MatrixException.BadJson($"'{key}' must be an array"),
        };

    /// <summary>An optional array of strings.</summary>
    public static List<string>? OptionalStringArray(this JsonObject body, string key, int maxItems = 1000, int maxBytes = 255)
    {
        var arr = body.OptionalArray(key);
        if (arr is null)
        {
            return null;
        }

        if (arr.Count > maxItems)
        {
            throw MatrixException.InvalidParam($"'{key}' has more than {maxItems} entries");
        }

        var result = new List<string>(arr.Count);
        foreach (var item in arr)
        {
            var s = item.AsString() ?? throw MatrixException.BadJson($"'{key}' must be an array of strings");
            if (Encoding.UTF8.GetByteCount(s) > maxBytes)
            {
                throw MatrixException.InvalidParam($"an entry of '{key}' is longer than {maxBytes} bytes");
            }

            result.Add(s);
        }

        return result;
    }
}
