using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;

namespace Lethe.Protocol.State;

/// <summary>Step 1 of state resolution v2: the power events of the full conflicted set, with their conflicted auth ancestors, in reverse topological power ordering.</summary>
internal static class PowerOrdering
{
    /// <summary>True for the events that may take power away: power levels, join rules, kicks and bans (and the create event, as Synapse and ruma also count it).</summary>
    public static bool IsPowerEvent(Pdu pdu)
    {
        if (pdu.StateKey is null)
        {
            return false;
        }

        if (pdu.Type is EventTypes.PowerLevels or EventTypes.JoinRules or EventTypes.Create)
        {
            return pdu.StateKey.Length == 0;
        }

        return pdu.Type == EventTypes.Member && pdu.Membership is Membership.Leave or Membership.Ban && pdu.Sender != pdu.StateKey;
    }

    /// <summary>Enlarges the power events by their auth ancestors within <paramref name="fullSet"/> and sorts them with Kahn's algorithm, earliest first.</summary>
    /// <remarks>The DAG is the auth edges between members of the full conflicted set, as Synapse and ruma build it. Events on an auth cycle (impossible with hash IDs) are left out.</remarks>
    public static List<int> Sort(AuthGraph graph, HashSet<int> fullSet, List<int> powerEvents, RoomVersion version, Pdu? roomCreate)
    {
        // Each node's auth events inside the set; only those edges constrain the order.
        var dependsOn = new Dictionary<int, List<int>>();
        var pending = new Stack<int>(powerEvents);
        while (pending.Count > 0)
        {
            var node = pending.Pop();
            if (dependsOn.ContainsKey(node))
            {
                continue;
            }

            var deps = new List<int>();
            foreach (var a in graph.AuthOf(node))
            {
                if (fullSet.Contains(a))
                {
                    deps.Add(a);
                    pending.Push(a);
                }
            }

            dependsOn[node] = deps;
        }

        var waitingOn = new Dictionary<int, int>(dependsOn.Count);
        var dependents = new Dictionary<int, List<int>>(dependsOn.Count);
        var ready = new PriorityQueue<int, TieBreak>(TieBreakComparer.Instance);
        foreach (var (node, deps) in dependsOn)
        {
            waitingOn[node] = deps.Count;
            foreach (var d in deps)
            {
                if (!dependents.TryGetValue(d, out var list))
                {
                    dependents[d] = list = [];
                }

                list.Add(node);
            }
        }

        foreach (var (node, count) in waitingOn)
        {
            if (count == 0)
            {
                ready.Enqueue(node, Key(graph, node, version, roomCreate));
            }
        }

        var sorted = new List<int>(dependsOn.Count);
        while (ready.TryDequeue(out var node, out _))
        {
            sorted.Add(node);
            if (!dependents.TryGetValue(node, out var waiting))
            {
                continue;
            }

            foreach (var d in waiting)
            {
                if (--waitingOn[d] == 0)
                {
                    ready.Enqueue(d, Key(graph, node: d, version, roomCreate));
                }
            }
        }

        return sorted;
    }

    // Higher sender power sorts first, so the rank is the level negated (by complement, which cannot overflow).
    private static TieBreak Key(AuthGraph graph, int node, RoomVersion version, Pdu? roomCreate)
    {
        var pdu = graph.EventAt(node);
        return new TieBreak(~SenderLevel(graph, node, version, roomCreate), pdu.OriginServerTs, pdu.EventId);
    }

    /// <summary>The sender's level according to the event's own auth events (v12: plus the room's create event).</summary>
    public static long SenderLevel(AuthGraph graph, int node, RoomVersion version, Pdu? roomCreate)
    {
        Pdu? powerLevels = null;
        var create = version.RoomIdIsCreateEventHash ? roomCreate : null;
        foreach (var a in graph.AuthOf(node))
        {
            var auth = graph.EventAt(a);
            if (auth.StateKey is not "")
            {
                continue;
            }

            if (powerLevels is null && auth.Type == EventTypes.PowerLevels)
            {
                powerLevels = auth;
            }
            else if (create is null && auth.Type == EventTypes.Create)
            {
                create = auth;
            }
        }

        var creators = create is null ? RoomCreators.None : RoomCreators.FromCreateEvent(create);
        return PowerLevels.FromContent(powerLevels?.Content, version, creators).GetUserLevel(graph.EventAt(node).Sender);
    }
}
