using System.Text.Json.Nodes;
using Lethe.Protocol.Events;
using Lethe.Protocol.State;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.State;

/// <summary>The separate steps of state resolution v2: splitting, auth difference, power events, reverse topological power ordering, mainline ordering.</summary>
public class StateResolutionStepsTests
{
    private static JsonObject Topic(string t) => new() { ["topic"] = t };

    private static ExplicitRoom BasicRoom(RoomVersion? version = null)
    {
        var room = new ExplicitRoom(version ?? RoomVersion.V11);
        room.Add("MA", Alice, EventTypes.Member, Alice, ExplicitRoom.Join);
        room.Add("P", Alice, EventTypes.PowerLevels, "", room.Levels((Bob, 50)), "MA");
        room.Add("JR", Alice, EventTypes.JoinRules, "", new JsonObject { ["join_rule"] = "public" }, "MA", "P");
        room.Add("MB", Bob, EventTypes.Member, Bob, ExplicitRoom.Join, "P", "JR");
        room.Add("MC", Charlie, EventTypes.Member, Charlie, ExplicitRoom.Join, "P", "JR");
        return room;
    }

    [Fact]
    public void KeysWithTheSameEventEverywhereAreUnconflicted()
    {
        var a = new Dictionary<StateKey, string> { [new("t", "")] = "$1", [new("u", "")] = "$2", [new("v", "")] = "$4" };
        var b = new Dictionary<StateKey, string> { [new("t", "")] = "$1", [new("u", "")] = "$3" };
        var (unconflicted, conflicted) = StateResolutionV2.Split([a, b]);
        Assert.Equal(new Dictionary<StateKey, string> { [new("t", "")] = "$1" }, unconflicted);
        Assert.Equal(new HashSet<string> { "$2", "$3", "$4" }, conflicted);
    }

    [Fact]
    public async Task TheAuthDifferenceHoldsEventsInSomeButNotAllAuthChains()
    {
        var room = BasicRoom();
        room.Add("P2", Alice, EventTypes.PowerLevels, "", room.Levels((Bob, 50), (Charlie, 50)), "MA", "P");
        room.Add("T", Charlie, EventTypes.Topic, "", Topic("t"), "P2", "MC");
        var graph = await room.GraphAsync("T", "MB", "MC");
        var one = room.State("CREATE", "MA", "JR", "MB", "MC", "T");
        var two = room.State("CREATE", "MA", "JR", "MB", "MC");

        // T cites P2 and MC, which nothing in the second set cites; P and older are cited in both; T itself is in no auth chain.
        Assert.Equal(["MC", "P2"], room.Names(ConflictedSets.AuthDifference(graph, [one, two]), graph).Order().ToArray());
    }

    [Fact]
    public async Task TheAuthDifferenceCountsEverySet()
    {
        var room = BasicRoom();
        room.Add("T1", Bob, EventTypes.Topic, "", Topic("1"), "P", "MB");
        room.Add("T2", Charlie, "m.custom", "", [], "P", "MC");
        var graph = await room.GraphAsync("T1", "T2");
        var withBoth = room.State("CREATE", "T1", "T2");
        var withT1 = room.State("CREATE", "T1");
        var withMb = room.State("CREATE", "MB");

        // MB is in two of the three full auth chains (cited by T1), MC in one (cited by T2); P, JR, MA, CREATE are in all three.
        var difference = room.Names(ConflictedSets.AuthDifference(graph, [withBoth, withT1, withMb]), graph).Order().ToArray();
        Assert.Equal(["MB", "MC"], difference);
    }

    [Fact]
    public async Task TheAuthDifferenceWorksBeyondSixtyFourSets()
    {
        var room = BasicRoom();
        room.Add("T", Bob, EventTypes.Topic, "", Topic("t"), "P", "MB");
        var graph = await room.GraphAsync("T", "MC");
        var sets = new List<IReadOnlyDictionary<StateKey, string>>();
        for (var i = 0; i < 70; i++)
        {
            sets.Add(room.State("CREATE", "MC"));
        }

        sets.Add(room.State("CREATE", "MC", "T"));
        Assert.Equal(["MB"], room.Names(ConflictedSets.AuthDifference(graph, sets), graph));
    }

    [Theory]
    [InlineData(EventTypes.PowerLevels, "", null, true)]
    [InlineData(EventTypes.JoinRules, "", null, true)]
    [InlineData(EventTypes.Create, "", null, true)]
    [InlineData(EventTypes.PowerLevels, "x", null, false)]
    [InlineData(EventTypes.Topic, "", null, false)]
    [InlineData(EventTypes.Member, Bob, "ban", true)]
    [InlineData(EventTypes.Member, Bob, "leave", true)]
    [InlineData(EventTypes.Member, Alice, "leave", false)]
    [InlineData(EventTypes.Member, Bob, "invite", false)]
    public void PowerEventsAreTheOnesThatCanTakePowerAway(string type, string stateKey, string? membership, bool isPower)
    {
        var room = BasicRoom();
        var content = membership is null ? new JsonObject() : new JsonObject { ["membership"] = membership };
        Assert.Equal(isPower, PowerOrdering.IsPowerEvent(room.Add("E", Alice, type, stateKey, content, "P", "MA")));
    }

    private static async Task<string[]> PowerSortAsync(ExplicitRoom room, params string[] names)
    {
        var graph = await room.GraphAsync(names);
        var nodes = names.Select(n => graph.IndexOf(room[n].EventId)).ToList();
        return room.Names(PowerOrdering.Sort(graph, [.. nodes], nodes, room.Version, null), graph);
    }

    [Fact]
    public async Task PowerOrderingPutsMorePowerfulSendersFirst()
    {
        var room = BasicRoom();
        room.AddAt("BOB", 1, Bob, EventTypes.JoinRules, "", [], "P", "MB");
        room.AddAt("ALICE", 2, Alice, EventTypes.JoinRules, "", [], "P", "MA");
        Assert.Equal(["ALICE", "BOB"], await PowerSortAsync(room, "BOB", "ALICE"));
    }

    [Fact]
    public async Task PowerOrderingBreaksPowerTiesByTimestamp()
    {
        var room = BasicRoom();
        room.AddAt("LATE", 20, Alice, EventTypes.JoinRules, "", [], "P", "MA");
        room.AddAt("EARLY", 10, Alice, EventTypes.JoinRules, "", [], "P", "MA");
        Assert.Equal(["EARLY", "LATE"], await PowerSortAsync(room, "LATE", "EARLY"));
    }

    [Fact]
    public async Task PowerOrderingBreaksFullTiesByEventId()
    {
        var room = BasicRoom();
        var x = room.AddAt("X", 10, Alice, EventTypes.JoinRules, "", new JsonObject { ["n"] = 1 }, "P", "MA");
        var y = room.AddAt("Y", 10, Alice, EventTypes.JoinRules, "", new JsonObject { ["n"] = 2 }, "P", "MA");
        var expected = string.CompareOrdinal(x.EventId, y.EventId) < 0 ? new[] { "X", "Y" } : ["Y", "X"];
        Assert.Equal(expected, await PowerSortAsync(room, "X", "Y"));
    }

    [Fact]
    public async Task PowerOrderingPutsAuthEventsBeforeTheEventsCitingThem()
    {
        // Alice's event cites Bob's; however powerful Alice is, Bob's comes first.
        var room = BasicRoom();
        room.AddAt("BOB", 5, Bob, EventTypes.JoinRules, "", [], "P", "MB");
        room.AddAt("ALICE", 1, Alice, EventTypes.PowerLevels, "", room.Levels(), "P", "MA", "BOB");
        Assert.Equal(["BOB", "ALICE"], await PowerSortAsync(room, "ALICE", "BOB"));
    }

    [Fact]
    public async Task SenderPowerComesFromTheEventsOwnAuthEvents()
    {
        // Bob is 50 under P but 0 under P0; the event citing P0 ranks him at 0.
        var room = BasicRoom();
        room.Add("P0", Alice, EventTypes.PowerLevels, "", room.Levels(), "MA", "P");
        room.Add("E1", Bob, EventTypes.JoinRules, "", [], "P", "MB");
        room.Add("E2", Bob, EventTypes.JoinRules, "", [], "P0", "MB");
        var graph = await room.GraphAsync("E1", "E2");
        Assert.Equal(50, PowerOrdering.SenderLevel(graph, graph.IndexOf(room["E1"].EventId), room.Version, null));
        Assert.Equal(0, PowerOrdering.SenderLevel(graph, graph.IndexOf(room["E2"].EventId), room.Version, null));
    }

    [Fact]
    public async Task WithoutPowerLevelsTheCreatorRanksAt100()
    {
        var room = BasicRoom();
        var graph = await room.GraphAsync("P");
        Assert.Equal(100, PowerOrdering.SenderLevel(graph, graph.IndexOf(room["P"].EventId), room.Version, null));
    }

    [Fact]
    public async Task V12CreatorsRankAboveEveryone()
    {
        var room = BasicRoom(RoomVersion.V12);
        var graph = await room.GraphAsync("JR");
        Assert.Equal(long.MaxValue, PowerOrdering.SenderLevel(graph, graph.IndexOf(room["JR"].EventId), room.Version, room["CREATE"]));
    }

    private static async Task<string[]> MainlineSortAsync(ExplicitRoom room, string powerLevels, params string[] names)
    {
        var graph = await room.GraphAsync([.. names, powerLevels]);
        var nodes = names.Select(n => graph.IndexOf(room[n].EventId)).ToList();
        return room.Names(MainlineOrdering.Sort(graph, nodes, room[powerLevels].EventId), graph);
    }

    [Fact]
    public async Task MainlineOrderingPutsEventsOfOlderPowerLevelsFirst()
    {
        var room = BasicRoom();
        room.Add("P2", Alice, EventTypes.PowerLevels, "", room.Levels((Bob, 50)), "MA", "P");
        room.AddAt("NEW", 1, Alice, EventTypes.Topic, "", Topic("new"), "P2", "MA");
        room.AddAt("OLD", 2, Alice, EventTypes.Topic, "", Topic("old"), "P", "MA");
        Assert.Equal(["OLD", "NEW"], await MainlineSortAsync(room, "P2", "NEW", "OLD"));
    }

    [Fact]
    public async Task MainlineOrderingPutsEventsWithoutPowerLevelsFirstOfAll()
    {
        var room = BasicRoom();
        room.AddAt("WITH", 1, Alice, EventTypes.Topic, "", Topic("a"), "P", "MA");
        room.AddAt("WITHOUT", 2, Alice, EventTypes.Topic, "", Topic("b"), "MA");
        Assert.Equal(["WITHOUT", "WITH"], await MainlineSortAsync(room, "P", "WITH", "WITHOUT"));
    }

    [Fact]
    public async Task MainlineOrderingFollowsPowerLevelsOffTheMainline()
    {
        // PX forks off P; an event citing PX meets the mainline at P, like one citing P directly.
        var room = BasicRoom();
        room.Add("P2", Alice, EventTypes.PowerLevels, "", room.Levels((Bob, 50)), "MA", "P");
        room.Add("PX", Alice, EventTypes.PowerLevels, "", room.Levels((Charlie, 50)), "MA", "P");
        room.AddAt("VIA_PX", 3, Alice, EventTypes.Topic, "", Topic("x"), "PX", "MA");
        room.AddAt("VIA_P", 2, Alice, EventTypes.Topic, "", Topic("p"), "P", "MA");
        room.AddAt("VIA_P2", 1, Alice, EventTypes.Topic, "", Topic("p2"), "P2", "MA");
        Assert.Equal(["VIA_P", "VIA_PX", "VIA_P2"], await MainlineSortAsync(room, "P2", "VIA_P2", "VIA_PX", "VIA_P"));
    }

    [Fact]
    public async Task MainlineOrderingBreaksTiesByTimestamp()
    {
        var room = BasicRoom();
        room.AddAt("B", 20, Alice, EventTypes.Topic, "", Topic("b"), "P", "MA");
        room.AddAt("A", 10, Alice, EventTypes.Topic, "", Topic("a"), "P", "MA");
        Assert.Equal(["A", "B"], await MainlineSortAsync(room, "P", "B", "A"));
    }
}
