using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;

namespace Lethe.Protocol.State;

/// <summary>An <see cref="IStateEventSource"/> over events held in memory, optionally falling back to another source for the rest.</summary>
public sealed class InMemoryStateEventSource : IStateEventSource
{
    private readonly Dictionary<string, EventRecord> _events = new(StringComparer.Ordinal);
    private readonly IStateEventSource? _fallback;

    /// <summary>Creates a source holding no events that asks <paramref name="fallback"/> (if any) for events it lacks.</summary>
    public InMemoryStateEventSource(IStateEventSource? fallback = null) => _fallback = fallback;

    /// <summary>Creates a source holding <paramref name="events"/>, none of them rejected.</summary>
    public InMemoryStateEventSource(IEnumerable<Pdu> events)
    {
        foreach (var pdu in events)
        {
            Add(pdu);
        }
    }

    /// <summary>How many events the source holds itself.</summary>
    public int Count => _events.Count;

    /// <summary>Adds or replaces an event.</summary>
    public void Add(Pdu pdu, bool isRejected = false) => _events[pdu.EventId] = new EventRecord(pdu, isRejected);

    /// <inheritdoc />
    public async ValueTask<IReadOnlyDictionary<string, EventRecord>> GetEventsAsync(IReadOnlyCollection<string> eventIds, CancellationToken cancellationToken)
    {
        var found = new Dictionary<string, EventRecord>(eventIds.Count, StringComparer.Ordinal);
        List<string>? missing = null;
        foreach (var id in eventIds)
        {
            if (_events.TryGetValue(id, out var record))
            {
                found[id] = record;
            }
            else
            {
                (missing ??= []).Add(id);
            }
        }

        if (missing is not null && _fallback is not null)
        {
            foreach (var (id, record) in await _fallback.GetEventsAsync(missing, cancellationToken))
            {
                found[id] = record;
            }
        }

        return found;
    }
}
