using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Lethe.Protocol.Json;

/// <summary>Typed reads from JSON nodes that tolerate how the value was created (parsed, or built from int/long in code).</summary>
public static class JsonAccess
{
    /// <summary>The string value of a node, or null when it is not a JSON string.</summary>
    public static string? AsString(this JsonNode? node) =>
        node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    /// <summary>True when the node is a JSON integer, whatever CLR type backs it.</summary>
    public static bool TryGetInt64(this JsonNode? node, out long value)
    {
        value = 0;
        if (node is not JsonValue v)
        {
            return false;
        }

        if (v.TryGetValue(out value))
        {
            return true;
        }

        if (v.TryGetValue<int>(out var i))
        {
            value = i;
            return true;
        }

        if (v.TryGetValue<JsonElement>(out var e) && e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out value))
        {
            return true;
        }

        return false;
    }

    /// <summary>True when the node is a JSON boolean.</summary>
    public static bool TryGetBool(this JsonNode? node, out bool value)
    {
        value = false;
        if (node is not JsonValue v)
        {
            return false;
        }

        if (v.TryGetValue(out value))
        {
            return true;
        }

        if (v.TryGetValue<JsonElement>(out var e) && e.ValueKind is JsonValueKind.True or JsonValueKind.False)
        {
            value = e.GetBoolean();
            return true;
        }

        return false;
    }

    /// <summary>The object under <paramref name="key"/>, or null.</summary>
    public static JsonObject? GetObject(this JsonObject obj, string key) => obj[key] as JsonObject;

    /// <summary>The string under <paramref name="key"/>, or null.</summary>
    public static string? GetString(this JsonObject obj, string key) => obj[key].AsString();

    /// <summary>The integer under <paramref name="key"/>, or null.</summary>
    public static long? GetInt64(this JsonObject obj, string key) => obj[key].TryGetInt64(out var l) ? l : null;

    /// <summary>True when the node is a JSON string and returns it.</summary>
    public static bool TryGetString(this JsonNode? node, [NotNullWhen(true)] out string? value)
    {
        value = node.AsString();
        return value is not null;
    }
}
