using System.Text.Json.Nodes;
using Lethe.Protocol.Events;
using Lethe.Protocol.State;
using Lethe.Protocol.Tests.Auth;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.State;

/// <summary>Named events with hand-picked auth events (before v12 the create event is cited too, as those versions require).</summary>
internal sealed class ExplicitRoom
{
    private readonly Dictionary<string, Pdu> _byName = new(StringComparer.Ordinal);

    public ExplicitRoom(RoomVersion version)
    {
        Version = version;
        var content = version.ImplicitCreator ? new JsonObject() : new JsonObject { ["creator"] = Alice };
        Add("CREATE", Alice, EventTypes.Create, "", content);
    }

    public static JsonObject Join => new() { ["membership"] = Membership.Join };

    public RoomVersion Version { get; }

    public InMemoryStateEventSource Source { get; } = new();

    public string RoomId => this["CREATE"].RoomId;

    public Pdu this[string name] => _byName[name];

    /// <summary>Power levels content; Alice gets 100 explicitly except in v12, where she is a creator and may not be listed.</summary>
    public JsonObject Levels(params (string User, int Level)[] users)
    {
        var map = new JsonObject();
        if (!Version.PrivilegedCreators)
        {
            map[Alice] = 100;
        }

        foreach (var (user, level) in users)
        {
            map[user] = level;
        }

        return new JsonObject { ["users"] = map };
    }

    public Pdu Add(string name, string sender, string type, string? stateKey, JsonObject content, params string[] auth) =>
        AddAt(name, null, sender, type, stateKey, content, auth);

    public Pdu AddAt(string name, long? originServerTs, string sender, string type, string? stateKey, JsonObject content, params string[] auth)
    {
        var authIds = auth.Select(a => this[a].EventId).ToList();
        if (type != EventTypes.Create && !Version.RoomIdIsCreateEventHash)
        {
            authIds.Insert(0, this["CREATE"].EventId);
        }

        var roomId = type == EventTypes.Create ? (Version.RoomIdIsCreateEventHash ? null : "!r:example.com") : RoomId;
        var eventId = Version.EventIdFormat == EventIdFormat.Opaque ? $"${name}:example.com" : null;
        var pdu = EventFactory.Build(Version, roomId, sender, type, stateKey, content, [], authIds, 5, originServerTs, eventId);
        _byName[name] = pdu;
        Source.Add(pdu);
        return pdu;
    }

    public IReadOnlyDictionary<StateKey, string> State(params string[] names) =>
        names.ToDictionary(n => this[n].StateMapKey, n => this[n].EventId);

    public Task<Dictionary<StateKey, string>> ResolveAsync(params IReadOnlyDictionary<StateKey, string>[] sets) =>
        StateResolver.Default.ResolveAsync(Version, RoomId, sets, Source).AsTask();

    public string NameOf(string eventId) => _byName.First(kv => kv.Value.EventId == eventId).Key;

    public string At(Dictionary<StateKey, string> state, string type, string key) => NameOf(state[new StateKey(type, key)]);

    public string[] Names(IEnumerable<int> nodes, AuthGraph graph) => nodes.Select(i => NameOf(graph.EventAt(i).EventId)).ToArray();

    public async Task<AuthGraph> GraphAsync(params string[] from)
    {
        var cache = new EventCache(Source, RoomId);
        return await AuthGraph.LoadAsync(cache, from.Select(n => this[n].EventId), CancellationToken.None);
    }
}
