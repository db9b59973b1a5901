using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using Lethe.Protocol.State;
using Lethe.Protocol.Tests.Auth;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.State;

/// <summary>
/// A room DAG described by named events and prev edges. Events are built in topological order (ties by name); each gets
/// the state before it by resolving the states after its prev events, and auth events selected from that state.
/// </summary>
internal sealed class DagScenario
{
    private readonly Dictionary<string, Node> _nodes = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private bool _built;

    public DagScenario(RoomVersion version) => Version = version;

    public RoomVersion Version { get; }

    public string RoomId { get; private set; } = "";

    public InMemoryStateEventSource Source { get; } = new();

    /// <summary>Names of events the auth rules rejected against the state before them.</summary>
    public HashSet<string> Rejected { get; } = new(StringComparer.Ordinal);

    /// <summary>The classic start shared by the scenarios: Alice creates a public room; Bob, Charlie and Zara join; START and END are Zara's messages.</summary>
    public static DagScenario Classic(RoomVersion version)
    {
        var dag = new DagScenario(version);
        dag.Event("CREATE", Alice, EventTypes.Create, "", version.ImplicitCreator ? [] : new JsonObject { ["creator"] = Alice });
        dag.Event("IMA", Alice, EventTypes.Member, Alice, Join);
        dag.Event("IPOWER", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100)));
        dag.Event("IJR", Alice, EventTypes.JoinRules, "", new JsonObject { ["join_rule"] = JoinRule.Public });
        dag.Event("IMB", Bob, EventTypes.Member, Bob, Join);
        dag.Event("IMC", Charlie, EventTypes.Member, Charlie, Join);
        dag.Event("IMZ", Zara, EventTypes.Member, Zara, Join);
        dag.Event("START", Zara, "m.room.message", null, []);
        dag.Event("END", Zara, "m.room.message", null, []);
        dag.Edges("START", "IMZ", "IMC", "IMB", "IJR", "IPOWER", "IMA", "CREATE");
        return dag;
    }

    public static JsonObject Join => new() { ["membership"] = Membership.Join };

    /// <summary>Power levels content listing users; v12 leaves creators out, as it must.</summary>
    public JsonObject Levels(params (string User, int Level)[] users)
    {
        var map = new JsonObject();
        foreach (var (user, level) in users)
        {
            if (!(Version.PrivilegedCreators && user == Alice))
            {
                map[user] = level;
            }
        }

        return new JsonObject { ["users"] = map };
    }

    public void Event(string name, string sender, string type, string? stateKey, JsonObject content) =>
        _nodes[name] = new Node(name, sender, type, stateKey, content);

    /// <summary>Adds prev edges along a chain: each event's prev events include the next one.</summary>
    public void Edges(params string[] chain)
    {
        for (var i = 0; i + 1 < chain.Length; i++)
        {
            _nodes[chain[i]].Prev.Add(chain[i + 1]);
        }
    }

    public Pdu this[string name] => _nodes[name].Pdu ?? throw new InvalidOperationException($"{name} is not built yet");

    public async Task<IReadOnlyDictionary<StateKey, string>> StateAfterAsync(string name)
    {
        await BuildAsync();
        return _nodes[name].StateAfter!;
    }

    /// <summary>The state at END restricted to keys that changed since START or that <paramref name="expected"/> names must be exactly <paramref name="expected"/>.</summary>
    public async Task AssertEndStateAsync(params string[] expected)
    {
        var start = await StateAfterAsync("START");
        var end = await StateAfterAsync("END");
        var want = new Dictionary<StateKey, string>();
        foreach (var name in expected)
        {
            want[this[name].StateMapKey] = this[name].EventId;
        }

        var got = new Dictionary<StateKey, string>();
        foreach (var (key, id) in end)
        {
            if (want.ContainsKey(key) || !start.TryGetValue(key, out var before) || before != id)
            {
                got[key] = id;
            }
        }

        Assert.Equal(Describe(want), Describe(got));
    }

    /// <summary>Names events for readable assertion failures.</summary>
    public string NameOf(string eventId)
    {
        foreach (var node in _nodes.Values)
        {
            if (node.Pdu?.EventId == eventId)
            {
                return node.Name;
            }
        }

        return eventId;
    }

    private SortedDictionary<string, string> Describe(Dictionary<StateKey, string> state)
    {
        var sorted = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, id) in state)
        {
            sorted[key.ToString()] = NameOf(id);
        }

        return sorted;
    }

    private async Task BuildAsync()
    {
        if (_built)
        {
            return;
        }

        _built = true;
        foreach (var name in TopologicalOrder())
        {
            await BuildNodeAsync(_nodes[name]);
        }
    }

    private async Task BuildNodeAsync(Node node)
    {
        _order.Add(node.Name);
        var prev = node.Prev.OrderBy(p => p, StringComparer.Ordinal).Select(p => _nodes[p]).ToList();
        IReadOnlyDictionary<StateKey, string> before = prev.Count switch
        {
            0 => new Dictionary<StateKey, string>(),
            1 => prev[0].StateAfter!,
            _ => await StateResolver.Default.ResolveAsync(Version, RoomId, prev.Select(p => p.StateAfter!).ToList(), Source),
        };

        var authIds = AuthEventSelection.SelectEventIds(Version, node.Type, node.Sender, node.StateKey, node.Content, before);
        var depth = prev.Count == 0 ? 1 : prev.Max(p => p.Pdu!.Depth) + 1;
        var roomId = node.Type == EventTypes.Create ? (Version.RoomIdIsCreateEventHash ? null : "!room:example.com") : RoomId;
        var pdu = EventFactory.Build(Version, roomId, node.Sender, node.Type, node.StateKey, node.Content, prev.Select(p => p.Pdu!.EventId), authIds, depth, eventId: Version.EventIdFormat == EventIdFormat.Opaque ? $"${node.Name}:example.com" : null);
        if (node.Type == EventTypes.Create)
        {
            RoomId = pdu.RoomId;
        }

        var beforeEvents = new Dictionary<StateKey, Pdu>();
        foreach (var (key, id) in before)
        {
            beforeEvents[key] = _nodes.Values.First(n => n.Pdu?.EventId == id).Pdu!;
        }

        var rejected = !EventAuthorizer.Default.CheckWithState(pdu, beforeEvents).IsAllowed;
        if (rejected)
        {
            Rejected.Add(node.Name);
        }

        node.Pdu = pdu;
        Source.Add(pdu, rejected);
        node.StateAfter = StateMaps.After(before, pdu, rejected);
    }

    private List<string> TopologicalOrder()
    {
        var waiting = _nodes.Values.ToDictionary(n => n.Name, n => n.Prev.Count, StringComparer.Ordinal);
        var ready = new SortedSet<string>(waiting.Where(kv => kv.Value == 0).Select(kv => kv.Key), StringComparer.Ordinal);
        var order = new List<string>();
        while (ready.Count > 0)
        {
            var next = ready.Min!;
            ready.Remove(next);
            order.Add(next);
            foreach (var node in _nodes.Values.Where(n => n.Prev.Contains(next)))
            {
                if (--waiting[node.Name] == 0)
                {
                    ready.Add(node.Name);
                }
            }
        }

        Assert.Equal(_nodes.Count, order.Count);
        return order;
    }

    private sealed class Node(string name, string sender, string type, string? stateKey, JsonObject content)
    {
        public string Name { get; } = name;

        public string Sender { get; } = sender;

        public string Type { get; } = type;

        public string? StateKey { get; } = stateKey;

        public JsonObject Content { get; } = content;

        public HashSet<string> Prev { get; } = new(StringComparer.Ordinal);

        public Pdu? Pdu { get; set; }

        public IReadOnlyDictionary<StateKey, string>? StateAfter { get; set; }
    }
}
