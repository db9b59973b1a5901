using Lethe.Protocol.Events;

namespace Lethe.Protocol.State;

/// <summary>The graph of <c>auth_events</c> edges over every event reachable from a set of starting events, indexed densely for fast passes.</summary>
internal sealed class AuthGraph
{
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
    private readonly List<Pdu> _events = [];
    private int[][] _auth = [];

    private AuthGraph()
    {
    }

    /// <summary>Number of known events in the graph.</summary>
    public int Count => _events.Count;

    /// <summary>Loads the starting events and all their auth ancestors, one batch per generation.</summary>
    public static async ValueTask<AuthGraph> LoadAsync(EventCache cache, IEnumerable<string> start, CancellationToken ct)
    {
        var graph = new AuthGraph();
        var frontier = new HashSet<string>(start, StringComparer.Ordinal);
        while (frontier.Count > 0)
        {
            await cache.LoadAsync(frontier, ct);
            var next = new HashSet<string>(StringComparer.Ordinal);
            foreach (var id in frontier)
            {
                if (graph._index.ContainsKey(id) || cache.Get(id) is not { } pdu)
                {
                    continue;
                }

                graph._index[id] = graph._events.Count;
                graph._events.Add(pdu);
                foreach (var authId in pdu.AuthEvents)
                {
                    if (!graph._index.ContainsKey(authId))
                    {
                        next.Add(authId);
                    }
                }
            }

            frontier = next;
        }

        graph.BuildEdges();
        return graph;
    }

    /// <summary>The index of an event, or -1 when it is not in the graph.</summary>
    public int IndexOf(string eventId) => _index.TryGetValue(eventId, out var i) ? i : -1;

    /// <summary>The event at an index.</summary>
    public Pdu EventAt(int index) => _events[index];

    /// <summary>Indices of the (known) auth events of the event at an index.</summary>
    public int[] AuthOf(int index) => _auth[index];

    private void BuildEdges()
    {
        _auth = new int[_events.Count][];
        var buffer = new List<int>();
        for (var i = 0; i < _events.Count; i++)
        {
            buffer.Clear();
            foreach (var authId in _events[i].AuthEvents)
            {
                if (_index.TryGetValue(authId, out var a) && !buffer.Contains(a))
                {
                    buffer.Add(a);
                }
            }

            _auth[i] = [.. buffer];
        }
    }
}
