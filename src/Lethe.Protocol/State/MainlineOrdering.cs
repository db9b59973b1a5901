using Lethe.Protocol.Events;

namespace Lethe.Protocol.State;

/// <summary>Step 3 of state resolution v2: orders events by where their power levels ancestry meets the mainline of the resolved power levels event.</summary>
internal static class MainlineOrdering
{
    private const int Infinity = int.MaxValue;

    /// <summary>Sorts <paramref name="events"/> by mainline position (deepest first), then <c>origin_server_ts</c>, then event ID.</summary>
    public static List<int> Sort(AuthGraph graph, List<int> events, string? powerLevelsId)
    {
        // P0 is position 0, the power levels event it cites is 1, and so on back to the first.
        var mainline = new Dictionary<int, int>();
        var p = powerLevelsId is null ? -1 : graph.IndexOf(powerLevelsId);
        while (p >= 0 && !mainline.ContainsKey(p))
        {
            mainline[p] = mainline.Count;
            p = PowerLevelsAuthEvent(graph, p);
        }

        // firstOnMainline[x]: the mainline position first met walking power levels events from x (inclusive).
        var firstOnMainline = new Dictionary<int, int>();
        var keyed = new List<(TieBreak Key, int Node)>(events.Count);
        foreach (var e in events)
        {
            var position = Position(graph, e, mainline, firstOnMainline);

            // A greater position sorts first; ∞ (no power levels ancestry on the mainline) first of all.
            var pdu = graph.EventAt(e);
            keyed.Add((new TieBreak(-(long)position, pdu.OriginServerTs, pdu.EventId), e));
        }

        keyed.Sort((a, b) => TieBreakComparer.Instance.Compare(a.Key, b.Key));
        var sorted = new List<int>(keyed.Count);
        foreach (var (_, node) in keyed)
        {
            sorted.Add(node);
        }

        return sorted;
    }

    // The spec's mainline position of e: the first of e1, e2, … (not e itself) that lies on the mainline.
    private static int Position(AuthGraph graph, int e, Dictionary<int, int> mainline, Dictionary<int, int> firstOnMainline)
    {
        var path = new List<int>();
        var position = Infinity;
        var cur = PowerLevelsAuthEvent(graph, e);
        while (cur >= 0)
        {
            if (mainline.TryGetValue(cur, out position) || firstOnMainline.TryGetValue(cur, out position))
            {
                break;
            }

            // A cycle (possible only with v1–2 event IDs) never meets the mainline.
            if (path.Contains(cur))
            {
                position = Infinity;
                break;
            }

            path.Add(cur);
            position = Infinity;
            cur = PowerLevelsAuthEvent(graph, cur);
        }

        foreach (var node in path)
        {
            firstOnMainline[node] = position;
        }

        return position;
    }

    private static int PowerLevelsAuthEvent(AuthGraph graph, int node)
    {
        foreach (var a in graph.AuthOf(node))
        {
            var auth = graph.EventAt(a);
            if (auth.Type == EventTypes.PowerLevels && auth.StateKey == "")
            {
                return a;
            }
        }

        return -1;
    }
}
