using Lethe.Protocol.Auth;

namespace Lethe.Protocol.State;

/// <summary>Where state resolution gets events from: typically the database, plus events still being persisted.</summary>
public interface IStateEventSource
{
    /// <summary>Loads the events with the given IDs, rejected ones included (flagged). IDs the source does not know are left out of the result.</summary>
    ValueTask<IReadOnlyDictionary<string, EventRecord>> GetEventsAsync(IReadOnlyCollection<string> eventIds, CancellationToken cancellationToken);
}
