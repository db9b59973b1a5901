using System.Security.Cryptography;
using System.Text;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;

namespace Lethe.Protocol.State;

/// <summary>The original state resolution algorithm of room version 1, with Synapse's reading of its loose points.</summary>
/// <remarks>
/// Conflicts are resolved in passes: power levels, then join rules, then memberships (each key against the state as it stood
/// before the pass, so the order of keys is irrelevant), then everything else. When no candidate of an ordinary key passes auth,
/// the one with the least depth is kept.
/// </remarks>
internal sealed class StateResolutionV1
{
    private static readonly StateKey PowerLevelsKey = new(EventTypes.PowerLevels, "");

    private readonly EventAuthorizer _authorizer;

    /// <summary>Creates the algorithm with the authorizer its auth checks use.</summary>
    public StateResolutionV1(EventAuthorizer authorizer) => _authorizer = authorizer;

    /// <summary>Resolves two or more state sets.</summary>
    public async ValueTask<Dictionary<StateKey, string>> ResolveAsync(
        string roomId,
        IReadOnlyList<IReadOnlyDictionary<StateKey, string>> stateSets,
        IStateEventSource source,
        CancellationToken ct)
    {
        // A key conflicts only when sets disagree on its event; a key some sets lack is not a conflict here.
        var unconflicted = new Dictionary<StateKey, string>();
        var candidates = new Dictionary<StateKey, HashSet<string>>();
        foreach (var set in stateSets)
        {
            foreach (var (key, id) in set)
            {
                if (!candidates.TryGetValue(key, out var ids))
                {
                    candidates[key] = ids = new HashSet<string>(StringComparer.Ordinal);
                }

                ids.Add(id);
            }
        }

        var cache = new EventCache(source, roomId);
        var conflictedIds = new List<string>();
        foreach (var (key, ids) in candidates)
        {
            if (ids.Count == 1)
            {
                unconflicted[key] = First(ids);
            }
            else
            {
                conflictedIds.AddRange(ids);
            }
        }

        if (conflictedIds.Count == 0)
        {
            return unconflicted;
        }

        await cache.LoadAsync(conflictedIds, ct);
        var conflicted = new Dictionary<StateKey, List<Candidate>>();
        foreach (var (key, ids) in candidates)
        {
            if (ids.Count == 1)
            {
                continue;
            }

            var known = new List<Candidate>(ids.Count);
            foreach (var id in ids)
            {
                if (cache.Get(id) is { } pdu)
                {
                    known.Add(new Candidate(pdu));
                }
            }

            if (known.Count == 1)
            {
                unconflicted[key] = known[0].Pdu.EventId;
            }
            else if (known.Count > 1)
            {
                known.Sort(Candidate.DeepestFirst);
                conflicted[key] = known;
            }
        }

        // R starts as the unconflicted state, restricted to what the conflicted events' auth needs.
        var neededKeys = new HashSet<StateKey>();
        foreach (var list in conflicted.Values)
        {
            foreach (var candidate in list)
            {
                neededKeys.UnionWith(AuthEventSelection.Select(candidate.Pdu));
            }
        }

        var neededIds = new List<string>();
        foreach (var key in neededKeys)
        {
            if (unconflicted.TryGetValue(key, out var id))
            {
                neededIds.Add(id);
            }
        }

        await cache.LoadAsync(neededIds, ct);
        var authState = new Dictionary<StateKey, Pdu>();
        foreach (var key in neededKeys)
        {
            if (unconflicted.TryGetValue(key, out var id) && cache.Get(id) is { } pdu)
            {
                authState[key] = pdu;
            }
        }

        var resolved = new Dictionary<StateKey, Pdu>();
        if (conflicted.TryGetValue(PowerLevelsKey, out var powerLevels))
        {
            resolved[PowerLevelsKey] = ResolveAuthKey(powerLevels, authState);
        }

        Merge(authState, resolved);
        ResolvePass(conflicted, resolved, authState, key => key.Type == EventTypes.JoinRules);
        Merge(authState, resolved);
        ResolvePass(conflicted, resolved, authState, key => key.Type == EventTypes.Member);
        Merge(authState, resolved);
        foreach (var (key, list) in conflicted)
        {
            if (!resolved.ContainsKey(key))
            {
                resolved[key] = ResolveOrdinaryKey(list, authState);
            }
        }

        foreach (var (key, pdu) in resolved)
        {
            unconflicted[key] = pdu.EventId;
        }

        return unconflicted;
    }

    private void ResolvePass(Dictionary<StateKey, List<Candidate>> conflicted, Dictionary<StateKey, Pdu> resolved, Dictionary<StateKey, Pdu> authState, Func<StateKey, bool> inPass)
    {
        // Every key of a pass sees the same R; results join R only after the pass.
        var results = new List<(StateKey, Pdu)>();
        foreach (var (key, list) in conflicted)
        {
            if (inPass(key) && !resolved.ContainsKey(key))
            {
                results.Add((key, ResolveAuthKey(list, authState)));
            }
        }

        foreach (var (key, pdu) in results)
        {
            resolved[key] = pdu;
        }
    }

    // Walk the candidates from the shallowest, each replacing the last while the auth rules allow it.
    private Pdu ResolveAuthKey(List<Candidate> deepestFirst, Dictionary<StateKey, Pdu> authState)
    {
        var neededKeys = new HashSet<StateKey>();
        foreach (var candidate in deepestFirst)
        {
            neededKeys.UnionWith(AuthEventSelection.Select(candidate.Pdu));
        }

        var state = new Dictionary<StateKey, Pdu>();
        foreach (var key in neededKeys)
        {
            if (authState.TryGetValue(key, out var pdu))
            {
                state[key] = pdu;
            }
        }

        var current = deepestFirst[^1].Pdu;
        for (var i = deepestFirst.Count - 2; i >= 0; i--)
        {
            state[current.StateMapKey] = current;
            var next = deepestFirst[i].Pdu;
            if (!_authorizer.CheckWithState(next, state).IsAllowed)
            {
                return current;
            }

            current = next;
        }

        return current;
    }

    // The deepest candidate (lowest SHA-1 of its ID among equals) that passes auth in R; the shallowest if none does.
    private Pdu ResolveOrdinaryKey(List<Candidate> deepestFirst, Dictionary<StateKey, Pdu> authState)
    {
        foreach (var candidate in deepestFirst)
        {
            if (_authorizer.CheckWithState(candidate.Pdu, authState).IsAllowed)
            {
                return candidate.Pdu;
            }
        }

        return deepestFirst[^1].Pdu;
    }

    private static void Merge(Dictionary<StateKey, Pdu> authState, Dictionary<StateKey, Pdu> resolved)
    {
        foreach (var (key, pdu) in resolved)
        {
            authState[key] = pdu;
        }
    }

    private static string First(HashSet<string> ids)
    {
        foreach (var id in ids)
        {
            return id;
        }

        throw new InvalidOperationException("empty set");
    }

    /// <summary>A conflicted event with the SHA-1 of its ID, which v1 uses to break depth ties.</summary>
    private sealed class Candidate(Pdu pdu)
    {
        /// <summary>Greatest depth first, then lowest SHA-1 of the event ID.</summary>
        public static readonly Comparison<Candidate> DeepestFirst = (a, b) =>
        {
            var c = b.Pdu.Depth.CompareTo(a.Pdu.Depth);
            return c != 0 ? c : a.Sha1.AsSpan().SequenceCompareTo(b.Sha1);
        };

        /// <summary>The event.</summary>
        public Pdu Pdu { get; } = pdu;

#pragma warning disable CA5350 // The protocol fixes SHA-1 here; it is a tie-break, not a security boundary.
        /// <summary>SHA-1 of the event ID's UTF-8 bytes.</summary>
        public byte[] Sha1 { get; } = SHA1.HashData(Encoding.UTF8.GetBytes(pdu.EventId));
#pragma warning restore CA5350
    }
}
