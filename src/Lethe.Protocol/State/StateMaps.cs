using Lethe.Protocol.Events;

namespace Lethe.Protocol.State;

/// <summary>Room state maps: (type, state_key) to event ID.</summary>
public static class StateMaps
{
    /// <summary>The state after <paramref name="pdu"/> given the state before it: a state event replaces its key's entry; message events and rejected events change nothing.</summary>
    public static Dictionary<StateKey, string> After(IReadOnlyDictionary<StateKey, string> before, Pdu pdu, bool isRejected = false)
    {
        var after = new Dictionary<StateKey, string>(before.Count + 1);
        foreach (var (key, id) in before)
        {
            after[key] = id;
        }

        if (pdu.IsState && !isRejected)
        {
            after[pdu.StateMapKey] = pdu.EventId;
        }

        return after;
    }
}
