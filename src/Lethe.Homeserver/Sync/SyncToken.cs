using System.Globalization;
using Lethe.Homeserver.Http;

namespace Lethe.Homeserver.Sync;

/// <summary>
/// A /sync position: one number per stream, written <c>s{events}_{account_data}_{receipts}_{presence}_{typing}_{to_device}_{device_lists}</c>.
/// Pagination tokens for /messages are <c>t{events}</c>: the position just after that event.
/// </summary>
public readonly record struct SyncToken(long Events, long AccountData, long Receipts, long Presence, long Typing, long ToDevice, long DeviceLists)
{
    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"s{Events}_{AccountData}_{Receipts}_{Presence}_{Typing}_{ToDevice}_{DeviceLists}");

    /// <summary>Parses a sync token; 400 M_INVALID_PARAM when it is not one of ours.</summary>
    public static SyncToken Parse(string text)
    {
        if (text.Length < 2 || text[0] != 's')
        {
            throw MatrixException.InvalidParam("Invalid sync token");
        }

        var parts = text[1..].Split('_');
        var values = new long[7];
        if (parts.Length > values.Length)
        {
            throw MatrixException.InvalidParam("Invalid sync token");
        }

        for (var i = 0; i < parts.Length; i++)
        {
            if (!long.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out values[i]))
            {
                throw MatrixException.InvalidParam("Invalid sync token");
            }
        }

        return new SyncToken(values[0], values[1], values[2], values[3], values[4], values[5], values[6]);
    }

    /// <summary>A pagination token for the position just after event stream position <paramref name="events"/>.</summary>
    public static string Pagination(long events) => "t" + events.ToString(CultureInfo.InvariantCulture);

    /// <summary>The events-stream position in a sync or pagination token, or null when the text is neither.</summary>
    public static long? EventsPositionOf(string token)
    {
        if (token.Length > 1 && token[0] == 't' && long.TryParse(token.AsSpan(1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var p))
        {
            return p;
        }

        if (token.Length > 1 && token[0] == 's')
        {
            var end = token.IndexOf('_', StringComparison.Ordinal);
            var first = end < 0 ? token.AsSpan(1) : token.AsSpan(1, end - 1);
            if (long.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out p))
            {
                return p;
            }
        }

        return null;
    }
}
