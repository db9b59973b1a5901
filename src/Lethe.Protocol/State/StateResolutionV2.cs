using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;

namespace Lethe.Protocol.State;

/// <summary>State resolution v2 (room versions 2–11) and v2.1 (room version 12), as the spec's "State resolution" section of room version 2 and 12 describe.</summary>
internal sealed class StateResolutionV2
{
    private static readonly StateKey PowerLevelsKey = new(EventTypes.PowerLevels, "");

    private readonly EventAuthorizer _authorizer;

    /// <summary>Creates the algorithm with the authorizer its auth checks use.</summary>
    public StateResolutionV2(EventAuthorizer authorizer) => _authorizer = authorizer;

    /// <summary>Resolves two or more state sets.</summary>
    public async ValueTask<Dictionary<StateKey, string>> ResolveAsync(
        RoomVersion version,
        string roomId,
        IReadOnlyList<IReadOnlyDictionary<StateKey, string>> stateSets,
        IStateEventSource source,
        CancellationToken ct)
    {
        var (unconflicted, conflicted) = Split(stateSets);
        if (conflicted.Count == 0)
        {
            return unconflicted;
        }

        var cache = new EventCache(source, roomId);
        var everyStateEvent = new HashSet<string>(StringComparer.Ordinal);
        foreach (var set in stateSets)
        {
            everyStateEvent.UnionWith(set.Values);
        }

        var graph = await AuthGraph.LoadAsync(cache, everyStateEvent, ct);
        Pdu? roomCreate = null;
        if (version.RoomIdIsCreateEventHash)
        {
            var createId = "$" + roomId[1..];
            await cache.LoadAsync([createId], ct);
            roomCreate = cache.GetAccepted(createId);
        }

        // The full conflicted set; events the source does not have cannot take part.
        var conflictedNodes = new List<int>(conflicted.Count);
        foreach (var id in conflicted)
        {
            var node = graph.IndexOf(id);
            if (node >= 0)
            {
                conflictedNodes.Add(node);
            }
        }

        var fullSet = new HashSet<int>(conflictedNodes);
        fullSet.UnionWith(ConflictedSets.AuthDifference(graph, stateSets));
        if (version.StateResolution == StateResolutionAlgorithm.V2_1)
        {
            fullSet.UnionWith(ConflictedSets.Subgraph(graph, conflictedNodes));
        }

        // 1. Power events and their conflicted auth ancestors, in reverse topological power ordering.
        var powerEvents = new List<int>();
        foreach (var node in fullSet)
        {
            if (PowerOrdering.IsPowerEvent(graph.EventAt(node)))
            {
                powerEvents.Add(node);
            }
        }

        var sortedPower = PowerOrdering.Sort(graph, fullSet, powerEvents, version, roomCreate);

        // 2. Iterative auth checks from the unconflicted state map (v2.1: from empty, so bogus unconflicted state cannot vouch for power events).
        var checks = new IterativeAuthChecks(_authorizer, cache, roomCreate);
        var resolved = version.StateResolution == StateResolutionAlgorithm.V2_1
            ? new Dictionary<StateKey, string>()
            : new Dictionary<StateKey, string>(unconflicted);
        checks.Apply(graph, sortedPower, resolved);

        // 3. Everything else by mainline ordering of the partially resolved power levels.
        var picked = new HashSet<int>(sortedPower);
        var remaining = new List<int>(fullSet.Count - picked.Count);
        foreach (var node in fullSet)
        {
            if (!picked.Contains(node))
            {
                remaining.Add(node);
            }
        }

        resolved.TryGetValue(PowerLevelsKey, out var powerLevelsId);
        var sortedRemaining = MainlineOrdering.Sort(graph, remaining, powerLevelsId);

        // 4.
        checks.Apply(graph, sortedRemaining, resolved);

        // 5. The unconflicted state map always wins.
        foreach (var (key, id) in unconflicted)
        {
            resolved[key] = id;
        }

        return resolved;
    }

    /// <summary>Splits the state sets: a key is unconflicted when every set maps it to the same event; otherwise all its events are conflicted.</summary>
    internal static (Dictionary<StateKey, string> Unconflicted, HashSet<string> Conflicted) Split(IReadOnlyList<IReadOnlyDictionary<StateKey, string>> stateSets)
    {
        var unconflicted = new Dictionary<StateKey, string>();
        var conflicted = new HashSet<string>(StringComparer.Ordinal);
        var seen = new HashSet<StateKey>();
        foreach (var set in stateSets)
        {
            foreach (var key in set.Keys)
            {
                if (!seen.Add(key))
                {
                    continue;
                }

                string? first = null;
                var agreed = true;
                foreach (var other in stateSets)
                {
                    if (!other.TryGetValue(key, out var id))
                    {
                        agreed = false;
                        continue;
                    }

                    first ??= id;
                    if (id != first)
                    {
                        agreed = false;
                    }
                }

                if (agreed)
                {
                    unconflicted[key] = first!;
                    continue;
                }

                foreach (var other in stateSets)
                {
                    if (other.TryGetValue(key, out var id))
                    {
                        conflicted.Add(id);
                    }
                }
            }
        }

        return (unconflicted, conflicted);
    }
}
