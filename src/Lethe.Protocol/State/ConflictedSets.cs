using Lethe.Protocol.Events;

namespace Lethe.Protocol.State;

/// <summary>The parts of the full conflicted set derived from the auth graph: the auth difference and (v2.1) the conflicted state subgraph.</summary>
internal static class ConflictedSets
{
    /// <summary>Events in the full auth chain of some state sets but not all: ∪Cᵢ − ∩Cᵢ.</summary>
    /// <remarks>One pass propagates, along auth edges, a bit per state set saying whose full auth chain an event is in; a node is revisited only when its bits grow.</remarks>
    public static List<int> AuthDifference(AuthGraph graph, IReadOnlyList<IReadOnlyDictionary<StateKey, string>> stateSets)
    {
        var sets = stateSets.Count;
        var words = (sets + 63) / 64;
        var masks = new ulong[graph.Count * words];
        var pending = new Stack<int>();
        for (var s = 0; s < sets; s++)
        {
            var word = s / 64;
            var bit = 1UL << (s % 64);
            foreach (var id in stateSets[s].Values)
            {
                var index = graph.IndexOf(id);
                if (index < 0)
                {
                    continue;
                }

                // An event's auth chain excludes the event itself, so the set's bit starts at its auth events.
                foreach (var a in graph.AuthOf(index))
                {
                    ref var m = ref masks[(a * words) + word];
                    if ((m & bit) == 0)
                    {
                        m |= bit;
                        pending.Push(a);
                    }
                }
            }
        }

        while (pending.Count > 0)
        {
            var node = pending.Pop();
            var from = node * words;
            foreach (var a in graph.AuthOf(node))
            {
                var to = a * words;
                var grew = false;
                for (var w = 0; w < words; w++)
                {
                    var merged = masks[to + w] | masks[from + w];
                    if (merged != masks[to + w])
                    {
                        masks[to + w] = merged;
                        grew = true;
                    }
                }

                if (grew)
                {
                    pending.Push(a);
                }
            }
        }

        var difference = new List<int>();
        for (var i = 0; i < graph.Count; i++)
        {
            if (IsPartial(masks, i * words, words, sets))
            {
                difference.Add(i);
            }
        }

        return difference;
    }

    /// <summary>The conflicted state subgraph: every event on an auth-edge path from one conflicted event to another, endpoints included.</summary>
    public static List<int> Subgraph(AuthGraph graph, IReadOnlyCollection<int> conflicted)
    {
        var n = graph.Count;
        var isConflicted = new bool[n];
        foreach (var c in conflicted)
        {
            isConflicted[c] = true;
        }

        // Forward half: events reachable from a conflicted event by at least one edge.
        var below = new bool[n];
        var pending = new Stack<int>();
        foreach (var c in conflicted)
        {
            pending.Push(c);
        }

        while (pending.Count > 0)
        {
            foreach (var a in graph.AuthOf(pending.Pop()))
            {
                if (!below[a])
                {
                    below[a] = true;
                    pending.Push(a);
                }
            }
        }

        // Backward half: which of those reach a conflicted event. Depth-first, post-order, without recursion.
        const byte Unvisited = 0, Visiting = 1, Reaches = 2, DoesNotReach = 3;
        var state = new byte[n];
        var frames = new Stack<(int Node, int Next)>();
        for (var start = 0; start < n; start++)
        {
            if (!below[start] || state[start] != Unvisited)
            {
                continue;
            }

            state[start] = isConflicted[start] ? Reaches : Visiting;
            if (state[start] == Reaches)
            {
                continue;
            }

            frames.Push((start, 0));
            while (frames.Count > 0)
            {
                var (node, next) = frames.Pop();
                var auth = graph.AuthOf(node);
                if (next < auth.Length)
                {
                    frames.Push((node, next + 1));
                    var a = auth[next];
                    if (state[a] == Unvisited)
                    {
                        state[a] = isConflicted[a] ? Reaches : Visiting;
                        if (state[a] == Visiting)
                        {
                            frames.Push((a, 0));
                        }
                    }

                    continue;
                }

                // A node still Visiting among the children would mean a cycle; it counts as not reaching.
                var reaches = false;
                foreach (var a in auth)
                {
                    if (state[a] == Reaches)
                    {
                        reaches = true;
                        break;
                    }
                }

                state[node] = reaches ? Reaches : DoesNotReach;
            }
        }

        var subgraph = new List<int>(conflicted);
        for (var i = 0; i < n; i++)
        {
            if (below[i] && state[i] == Reaches && !isConflicted[i])
            {
                subgraph.Add(i);
            }
        }

        return subgraph;
    }

    private static bool IsPartial(ulong[] masks, int offset, int words, int sets)
    {
        var any = false;
        var all = true;
        for (var w = 0; w < words; w++)
        {
            var bitsInWord = Math.Min(64, sets - (w * 64));
            var full = bitsInWord == 64 ? ulong.MaxValue : (1UL << bitsInWord) - 1;
            var m = masks[offset + w];
            any |= m != 0;
            all &= m == full;
        }

        return any && !all;
    }
}
