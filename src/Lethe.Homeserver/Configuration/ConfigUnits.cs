using System.Globalization;

namespace Lethe.Homeserver.Configuration;

/// <summary>Synapse's config units: durations (ms, s, m, h, d, w, y; a bare number is milliseconds) and sizes (K, M, G, T; a bare number is bytes).</summary>
public static class ConfigUnits
{
    /// <summary>A duration in milliseconds, or null when the text is not one.</summary>
    public static long? ParseDuration(string text)
    {
        text = text.Trim();
        if (text.Length == 0)
        {
            return null;
        }

        if (text.EndsWith("ms", StringComparison.Ordinal))
        {
            return long.TryParse(text[..^2], NumberStyles.None, CultureInfo.InvariantCulture, out var ms) ? ms : null;
        }

        long unit = text[^1] switch
        {
            's' => 1000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 7 * 86_400_000L,
            'y' => 365 * 86_400_000L,
            _ => 1,
        };
        var digits = unit == 1 ? text : text[..^1];
        return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= long.MaxValue / unit ? n * unit : null;
    }

    /// <summary>A size in bytes, or null when the text is not one.</summary>
    public static long? ParseSize(string text)
    {
        text = text.Trim();
        if (text.Length == 0)
        {
            return null;
        }

        long unit = text[^1] switch
        {
            'K' => 1024,
            'M' => 1024 * 1024,
            'G' => 1024L * 1024 * 1024,
            'T' => 1024L * 1024 * 1024 * 1024,
            _ => 1,
        };
        var digits = unit == 1 ? text : text[..^1];
        return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= long.MaxValue / unit ? n * unit : null;
    }

}
