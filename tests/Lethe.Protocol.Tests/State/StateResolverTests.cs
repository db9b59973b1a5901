using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using Lethe.Protocol.State;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.State;

/// <summary>The resolver's contract: trivial inputs, unknown and foreign events, rejected events, and the state-after helper.</summary>
public class StateResolverTests
{
    private static readonly StateKey TopicKey = new(EventTypes.Topic, "");

    private static JsonObject Topic(string t) => new() { ["topic"] = t };

    public static TheoryData<int> Versions() => [1, 2, 11, 12];

    // In v1 a key only some sets hold is no conflict, so it is never checked.
    public static TheoryData<int> V2Versions() => [2, 11, 12];

    private static ExplicitRoom Room(int version)
    {
        var room = new ExplicitRoom(Expect(version));
        room.Add("MA", Alice, EventTypes.Member, Alice, ExplicitRoom.Join);
        room.Add("P", Alice, EventTypes.PowerLevels, "", room.Levels((Bob, 50)), "MA");
        room.Add("JR", Alice, EventTypes.JoinRules, "", new JsonObject { ["join_rule"] = JoinRule.Public }, "MA", "P");
        room.Add("MB", Bob, EventTypes.Member, Bob, ExplicitRoom.Join, "P", "JR");
        return room;
    }

    private static RoomVersion Expect(int n) => Tests.Auth.Expect.Version(n);

    [Fact]
    public async Task NoStateSetsResolveToAnEmptyState()
    {
        Assert.Empty(await StateResolver.Default.ResolveAsync(RoomVersion.V11, "!r:example.com", [], new InMemoryStateEventSource()));
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task OneStateSetComesBackAsACopy(int version)
    {
        var set = new Dictionary<StateKey, string> { [TopicKey] = "$t" };
        var resolved = await StateResolver.Default.ResolveAsync(Expect(version), "!r:example.com", [set], new InMemoryStateEventSource());
        Assert.Equal(set, resolved);
        Assert.NotSame(set, resolved);
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task IdenticalStateSetsNeedNoEvents(int version)
    {
        var set = new Dictionary<StateKey, string> { [TopicKey] = "$t", [new StateKey(EventTypes.Name, "")] = "$n" };
        var resolved = await StateResolver.Default.ResolveAsync(Expect(version), "!r:example.com", [set, new Dictionary<StateKey, string>(set)], new InMemoryStateEventSource());
        Assert.Equal(set, resolved);
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task EventsTheSourceDoesNotKnowTakeNoPart(int version)
    {
        var room = Room(version);
        var one = new Dictionary<StateKey, string>(room.State("CREATE", "MA", "P", "JR")) { [TopicKey] = "$unknown1:example.com" };
        var two = new Dictionary<StateKey, string>(room.State("CREATE", "MA", "P", "JR")) { [TopicKey] = "$unknown2:example.com" };
        var resolved = await room.ResolveAsync(one, two);
        Assert.False(resolved.ContainsKey(TopicKey));
        Assert.Equal(room.State("CREATE", "MA", "P", "JR"), resolved);
    }

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task EventsOfAnotherRoomTakeNoPart(int version)
    {
        var room = Room(version);
        var other = Room(version);
        other.Add("T", Alice, EventTypes.Topic, "", Topic("elsewhere"), "P", "MA");
        room.Source.Add(other["T"]);
        room.Add("T", Alice, EventTypes.Topic, "", Topic("here"), "P", "MA");
        var one = new Dictionary<StateKey, string>(room.State("CREATE", "MA", "P", "JR")) { [TopicKey] = other["T"].EventId };
        var two = room.State("CREATE", "MA", "P", "JR", "T");
        var resolved = await room.ResolveAsync(one, two);
        Assert.Equal(room["T"].EventId, resolved[TopicKey]);
    }

    [Theory]
    [MemberData(nameof(V2Versions))]
    public async Task AConflictedEventTheRulesRejectIsLeftOut(int version)
    {
        var room = Room(version);
        room.Add("T", Charlie, EventTypes.Topic, "", Topic("intruder"), "P");
        var resolved = await room.ResolveAsync(room.State("CREATE", "MA", "P", "JR", "MB", "T"), room.State("CREATE", "MA", "P", "JR", "MB"));
        Assert.False(resolved.ContainsKey(TopicKey));
    }

    [Fact]
    public async Task RejectedAuthEventsLendNoPower()
    {
        // T's only evidence of Bob's power is PB. Accepted, PB lets T in; rejected, it does not.
        foreach (var rejected in new[] { false, true })
        {
            var room = Room(12);
            room.Add("P0", Alice, EventTypes.PowerLevels, "", room.Levels(), "MA", "P");
            room.Add("PB", Alice, EventTypes.PowerLevels, "", room.Levels((Bob, 50)), "MA", "P0");
            room.Source.Add(room["PB"], rejected);
            room.Add("T", Bob, EventTypes.Topic, "", Topic("t"), "PB", "MB");
            var resolved = await room.ResolveAsync(room.State("CREATE", "MA", "P0", "JR", "MB", "T"), room.State("CREATE", "MA", "P0", "JR", "MB"));
            Assert.Equal(!rejected, resolved.ContainsKey(TopicKey));
        }
    }

    [Fact]
    public async Task ARejectedConflictedEventThatNowPassesIsAdmitted()
    {
        // The spec treats events rejected against the state at them like any other during resolution.
        var room = Room(11);
        room.Add("T", Bob, EventTypes.Topic, "", Topic("t"), "P", "MB");
        room.Source.Add(room["T"], isRejected: true);
        var resolved = await room.ResolveAsync(room.State("CREATE", "MA", "P", "JR", "MB", "T"), room.State("CREATE", "MA", "P", "JR", "MB"));
        Assert.Equal(room["T"].EventId, resolved[TopicKey]);
    }

    [Fact]
    public void TheStateAfterAStateEventHoldsIt()
    {
        var room = Room(11);
        var topic = room.Add("T", Alice, EventTypes.Topic, "", Topic("t"), "P", "MA");
        var before = room.State("CREATE", "MA");
        var after = StateMaps.After(before, topic);
        Assert.Equal(topic.EventId, after[TopicKey]);
        Assert.Equal(3, after.Count);
        Assert.Equal(2, before.Count);
    }

    [Fact]
    public void TheStateAfterAStateEventReplacesItsKey()
    {
        var room = Room(11);
        var first = room.Add("T1", Alice, EventTypes.Topic, "", Topic("1"), "P", "MA");
        var second = room.Add("T2", Alice, EventTypes.Topic, "", Topic("2"), "P", "MA");
        Assert.Equal(second.EventId, StateMaps.After(StateMaps.After(room.State("CREATE"), first), second)[TopicKey]);
    }

    [Fact]
    public void MessagesAndRejectedEventsLeaveTheStateAlone()
    {
        var room = Room(11);
        var message = room.Add("M", Alice, "m.room.message", null, [], "P", "MA");
        var topic = room.Add("T", Alice, EventTypes.Topic, "", Topic("t"), "P", "MA");
        var before = room.State("CREATE", "MA");
        Assert.Equal(before, StateMaps.After(before, message));
        Assert.Equal(before, StateMaps.After(before, topic, isRejected: true));
    }

    [Fact]
    public async Task TheInMemorySourceFallsBackForEventsItLacks()
    {
        var room = Room(11);
        var layered = new InMemoryStateEventSource(room.Source);
        var extra = room.Add("T", Alice, EventTypes.Topic, "", Topic("t"), "P", "MA");
        layered.Add(extra, isRejected: true);
        var found = await layered.GetEventsAsync([room["MA"].EventId, extra.EventId, "$nope"], CancellationToken.None);
        Assert.Equal(2, found.Count);
        Assert.True(found[extra.EventId].IsRejected);
        Assert.False(found[room["MA"].EventId].IsRejected);
    }
}
