using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;

namespace Lethe.Protocol.State;

/// <summary>The events one resolution has loaded, fetched from the source in batches. Events of other rooms count as unknown.</summary>
internal sealed class EventCache
{
    private readonly IStateEventSource _source;
    private readonly string _roomId;
    private readonly Dictionary<string, EventRecord?> _events = new(StringComparer.Ordinal);

    /// <summary>Creates an empty cache over <paramref name="source"/> for events of <paramref name="roomId"/>.</summary>
    public EventCache(IStateEventSource source, string roomId)
    {
        _source = source;
        _roomId = roomId;
    }

    /// <summary>Loads the IDs not yet asked for; returns those newly found.</summary>
    public async ValueTask<List<EventRecord>> LoadAsync(IEnumerable<string> ids, CancellationToken ct)
    {
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            if (!_events.ContainsKey(id))
            {
                wanted.Add(id);
            }
        }

        var loaded = new List<EventRecord>();
        if (wanted.Count == 0)
        {
            return loaded;
        }

        ct.ThrowIfCancellationRequested();
        var found = await _source.GetEventsAsync(wanted, ct);
        foreach (var id in wanted)
        {
            // An event from another room must never lend its authority to this one.
            if (found.TryGetValue(id, out var record) && record.Event.EventId == id && record.Event.RoomId == _roomId)
            {
                _events[id] = record;
                loaded.Add(record);
            }
            else
            {
                _events[id] = null;
            }
        }

        return loaded;
    }

    /// <summary>The loaded event with that ID.</summary>
    public bool TryGet(string id, out EventRecord record)
    {
        if (_events.TryGetValue(id, out var found) && found is { } r)
        {
            record = r;
            return true;
        }

        record = default;
        return false;
    }

    /// <summary>The loaded event with that ID, or null.</summary>
    public Pdu? Get(string id) => TryGet(id, out var record) ? record.Event : null;

    /// <summary>The loaded, non-rejected event with that ID, or null.</summary>
    public Pdu? GetAccepted(string id) => TryGet(id, out var record) && !record.IsRejected ? record.Event : null;
}
