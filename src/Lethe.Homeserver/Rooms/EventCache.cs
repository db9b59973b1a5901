using Lethe.Protocol.Events;
using Lethe.Storage;
using Microsoft.Extensions.Caching.Memory;

namespace Lethe.Homeserver.Rooms;

/// <summary>Recently used events, parsed, in front of the events table. Entries are replaced when an event is redacted.</summary>
/// <remarks>
/// Bounded by the memory the entries take, not by their number: a cached event takes about three times its JSON
/// (its bytes, the parsed content, its IDs; 1.9 KB for a 632-byte message, measured with dotnet-gcdump). The bound
/// was 5,000 entries, which was 10 MB of heap for short messages, and would have been over 600 MB for events near the
/// 64 KiB limit.
/// </remarks>
public sealed class EventCache(EventStore events, RoomDirectory rooms) : IDisposable
{
    /// <summary>Estimated bytes the cached events may take: about 2,000 short messages, 20 of the largest events.</summary>
    private const long Budget = 4 * 1024 * 1024;

    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = Budget });

    /// <summary>How many events are cached now.</summary>
    public int Count => _cache.Count;

    /// <summary>One event, or null when unknown.</summary>
    public async Task<StoredEvent?> GetAsync(string eventId, CancellationToken ct = default)
    {
        if (_cache.TryGetValue(eventId, out StoredEvent? hit))
        {
            return hit;
        }

        var row = await events.GetAsync(eventId, ct);
        return row is null ? null : Add(row, await rooms.VersionOfAsync(row.RoomId, ct));
    }

    /// <summary>Several events; unknown IDs are left out.</summary>
    public async Task<Dictionary<string, StoredEvent>> GetManyAsync(IEnumerable<string> eventIds, CancellationToken ct = default)
    {
        var result = new Dictionary<string, StoredEvent>(StringComparer.Ordinal);
        List<string>? missing = null;
        foreach (var id in eventIds)
        {
            if (_cache.TryGetValue(id, out StoredEvent? hit) && hit is not null)
            {
                result[id] = hit;
            }
            else
            {
                (missing ??= []).Add(id);
            }
        }

        if (missing is not null)
        {
            foreach (var row in (await events.GetManyAsync(missing, ct)).Values)
            {
                result[row.EventId] = Add(row, await rooms.VersionOfAsync(row.RoomId, ct));
            }
        }

        return result;
    }

    /// <summary>
    /// Parses rows fetched elsewhere (e.g. a timeline page), using the cache and, unless <paramref name="fill"/> is
    /// false, filling it. Bulk readers of old history (exports) pass false so they do not evict what clients use.
    /// </summary>
    public async Task<List<StoredEvent>> FromRowsAsync(IEnumerable<EventRow> rows, CancellationToken ct = default, bool fill = true)
    {
        var result = new List<StoredEvent>();
        foreach (var row in rows)
        {
            if (_cache.TryGetValue(row.EventId, out StoredEvent? hit) && hit is not null && hit.Row.RedactedBy == row.RedactedBy)
            {
                result.Add(hit);
            }
            else
            {
                var version = await rooms.VersionOfAsync(row.RoomId, ct);
                result.Add(fill ? Add(row, version) : StoredEvent.FromRow(row, version));
            }
        }

        return result;
    }

    /// <summary>Caches a freshly persisted event, in its compact form (a parsed event's whole tree is several times its size).</summary>
    public void Put(StoredEvent e) => _cache.Set(e.EventId, e.Compact(), new MemoryCacheEntryOptions { Size = EstimatedSize(e) });

    /// <summary>The heap an entry takes, roughly (see the remarks on the class).</summary>
    private static long EstimatedSize(StoredEvent e) => 256 + 3L * e.Row.Json.Length;

    /// <summary>Drops an event (after a redaction changes how it is served).</summary>
    public void Forget(string eventId) => _cache.Remove(eventId);

    private StoredEvent Add(EventRow row, RoomVersion version)
    {
        var e = StoredEvent.FromRow(row, version);
        Put(e);
        return e;
    }

    /// <inheritdoc />
    public void Dispose() => _cache.Dispose();
}
