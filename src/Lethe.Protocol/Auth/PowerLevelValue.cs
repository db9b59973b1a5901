using System.Text.Json;
using System.Text.Json.Nodes;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Auth;

/// <summary>Reads one value of <c>m.room.power_levels</c> content in the forms a room version accepts.</summary>
internal static class PowerLevelValue
{
    // Values beyond these are clamped; long.MaxValue stays free to mean a v12 creator's infinite power.
    private const long Highest = long.MaxValue - 1;
    private const long Lowest = long.MinValue + 1;

    /// <summary>Reads an integer, a numeric string (v1–9) or a float (v1–5, truncated); false for anything else.</summary>
    public static bool TryRead(JsonNode? node, RoomVersion version, out long value)
    {
        if (node.TryGetInt64(out value))
        {
            value = Math.Clamp(value, Lowest, Highest);
            return true;
        }

        if (node is not JsonValue v)
        {
            return false;
        }

        if (v.TryGetValue<string>(out var text))
        {
            return !version.IntegerPowerLevels && TryParseNumericString(text, out value);
        }

        if (!TryGetDouble(v, out var d) || !double.IsFinite(d))
        {
            return false;
        }

        // An integral double is the same JSON number as the integer; only v1–5 accept fractions (the "floaty" rule).
        var truncated = Math.Truncate(d);
        if (truncated != d && version.StrictCanonicalJson)
        {
            return false;
        }

        value = truncated >= Highest ? Highest : truncated <= Lowest ? Lowest : (long)truncated;
        return true;
    }

    /// <summary>True when the value is present but not in a form the room version accepts.</summary>
    public static bool IsMalformed(JsonNode? node, RoomVersion version) => node is not null && !TryRead(node, version, out _);

    /// <summary>Parses the "stringy" form: optional surrounding whitespace, an optional sign, base-10 digits.</summary>
    internal static bool TryParseNumericString(string text, out long value)
    {
        value = 0;
        var span = text.AsSpan().Trim();
        var negative = false;
        if (span.Length > 0 && span[0] is '+' or '-')
        {
            negative = span[0] == '-';
            span = span[1..];
        }

        if (span.IsEmpty)
        {
            return false;
        }

        long magnitude = 0;
        foreach (var c in span)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }

            // Saturate rather than fail: the spec puts no bound on the digits, and comparisons stay right.
            magnitude = magnitude > (Highest - (c - '0')) / 10 ? Highest : (magnitude * 10) + (c - '0');
        }

        value = negative ? -magnitude : magnitude;
        return true;
    }

    private static bool TryGetDouble(JsonValue v, out double d)
    {
        if (v.TryGetValue(out d))
        {
            return true;
        }

        if (v.TryGetValue<float>(out var f))
        {
            d = f;
            return true;
        }

        if (v.TryGetValue<decimal>(out var m))
        {
            d = (double)m;
            return true;
        }

        if (v.TryGetValue<JsonElement>(out var e) && e.ValueKind == JsonValueKind.Number)
        {
            // TryGetDouble refuses numbers outside double's range, which the floaty rule treats as invalid anyway.
            return e.TryGetDouble(out d);
        }

        return false;
    }
}
