using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using Lethe.Protocol.State;
using Lethe.Protocol.Tests.Auth;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.State;

/// <summary>
/// State resolution v2.1 (room version 12) against v2 (room version 11) on the two state resets MSC4297 describes:
/// events citing stale auth events (fixed by the conflicted state subgraph) and bogus unconflicted state
/// (fixed by starting the power events pass from an empty state).
/// </summary>
public class StateResolutionV21Tests
{
    private static JsonObject Join => new() { ["membership"] = Membership.Join };

    // Alice's level is explicit before v12; from v12 she is a creator and must not be listed.
    private static JsonObject Levels(RoomVersion v, params (string User, int Level)[] users)
    {
        var map = new JsonObject();
        if (!v.PrivilegedCreators)
        {
            map[Alice] = 100;
        }

        foreach (var (user, level) in users)
        {
            map[user] = level;
        }

        return new JsonObject { ["users"] = map };
    }

    private static ExplicitRoom StaleAuthEventsRoom(RoomVersion version)
    {
        var room = new ExplicitRoom(version);
        room.Add("MA", Alice, EventTypes.Member, Alice, Join);
        room.Add("P1", Alice, EventTypes.PowerLevels, "", Levels(version), "MA");
        room.Add("JR", Alice, EventTypes.JoinRules, "", new JsonObject { ["join_rule"] = JoinRule.Public }, "MA", "P1");
        room.Add("MB", Bob, EventTypes.Member, Bob, Join, "P1", "JR");
        room.Add("MC", Charlie, EventTypes.Member, Charlie, Join, "P1", "JR");
        room.Add("P2", Alice, EventTypes.PowerLevels, "", Levels(version, (Bob, 50)), "MA", "P1");
        room.Add("P3", Bob, EventTypes.PowerLevels, "", Levels(version, (Bob, 50), (Charlie, 50)), "MB", "P2");
        room.Add("ME1", Eve, EventTypes.Member, Eve, Join, "P3", "JR");

        // Eve renames herself citing the old power levels directly while P3 is still in her auth chain.
        room.Add("ME2", Eve, EventTypes.Member, Eve, Join, "P1", "JR", "ME1");
        room.Add("MZ", Zara, EventTypes.Member, Zara, Join, "P3", "JR");
        return room;
    }

    [Fact]
    public async Task V21ReplaysTheConflictedSubgraphSoStaleAuthEventsCannotResetPowerLevels()
    {
        var room = StaleAuthEventsRoom(RoomVersion.V12);
        var dodgy = room.State("CREATE", "MA", "MB", "MC", "ME2", "P1", "JR");
        var sensible = room.State("CREATE", "MA", "MB", "MC", "MZ", "P3", "JR");
        var resolved = await room.ResolveAsync(dodgy, sensible);
        Assert.Equal(room.State("CREATE", "MA", "MB", "MC", "ME1", "MZ", "P3", "JR"), resolved);
    }

    [Fact]
    public async Task V2ResetsPowerLevelsWhenAnEventCitesStaleAuthEvents()
    {
        var room = StaleAuthEventsRoom(RoomVersion.V11);
        var dodgy = room.State("CREATE", "MA", "MB", "MC", "ME2", "P1", "JR");
        var sensible = room.State("CREATE", "MA", "MB", "MC", "MZ", "P3", "JR");
        var resolved = await room.ResolveAsync(dodgy, sensible);
        Assert.Equal("P1", room.At(resolved, EventTypes.PowerLevels, ""));
        Assert.Equal("ME2", room.At(resolved, EventTypes.Member, Eve));
    }

    [Fact]
    public async Task TheConflictedSubgraphHoldsThePathsBetweenConflictedEvents()
    {
        var room = StaleAuthEventsRoom(RoomVersion.V12);
        var cache = new EventCache(room.Source, room.RoomId);
        var graph = await AuthGraph.LoadAsync(cache, [room["ME2"].EventId, room["MZ"].EventId, room["P1"].EventId], CancellationToken.None);
        var conflicted = new[] { "ME2", "MZ", "P1", "P3" }.Select(n => graph.IndexOf(room[n].EventId)).ToList();
        var subgraph = ConflictedSets.Subgraph(graph, conflicted).Select(i => graph.EventAt(i).EventId).ToHashSet();

        // ME1 lies on ME2 → ME1 → P3; P2, MB and JR lie on P3 → … → P1. MA only leads out of the set, MC is not reachable.
        var expected = new[] { "ME2", "MZ", "P1", "P3", "ME1", "P2", "MB", "JR" }.Select(n => room[n].EventId).ToHashSet();
        Assert.Equal(expected, subgraph);
    }

    private static ExplicitRoom BogusUnconflictedStateRoom(RoomVersion version)
    {
        var room = new ExplicitRoom(version);
        room.Add("MA1", Alice, EventTypes.Member, Alice, Join);
        room.Add("P", Alice, EventTypes.PowerLevels, "", Levels(version, (Bob, 100)), "MA1");
        room.Add("JR1", Alice, EventTypes.JoinRules, "", new JsonObject { ["join_rule"] = JoinRule.Public }, "MA1", "P");
        room.Add("MB", Bob, EventTypes.Member, Bob, Join, "P", "JR1");
        room.Add("JR2", Alice, EventTypes.JoinRules, "", new JsonObject { ["join_rule"] = JoinRule.Invite }, "MA1", "P");
        room.Add("MA2", Alice, EventTypes.Member, Alice, new JsonObject { ["membership"] = Membership.Leave }, "P", "MA1");
        return room;
    }

    [Fact]
    public async Task V21StartsFromAnEmptyStateSoJoinRulesSurviveTheirSenderLeaving()
    {
        var room = BogusUnconflictedStateRoom(RoomVersion.V12);
        var correct = room.State("CREATE", "MA2", "MB", "P", "JR2");
        var incorrect = room.State("CREATE", "MA2", "MB", "P", "JR1");
        var resolved = await room.ResolveAsync(correct, incorrect);
        Assert.Equal(correct, resolved);
    }

    [Fact]
    public async Task V2LosesTheJoinRulesWhenTheirSenderHasLeft()
    {
        var room = BogusUnconflictedStateRoom(RoomVersion.V11);
        var correct = room.State("CREATE", "MA2", "MB", "P", "JR2");
        var incorrect = room.State("CREATE", "MA2", "MB", "P", "JR1");
        var resolved = await room.ResolveAsync(correct, incorrect);
        Assert.False(resolved.ContainsKey(new StateKey(EventTypes.JoinRules, "")));
    }

    [Fact]
    public async Task V12ChecksUseTheCreateEventNamedByTheRoomId()
    {
        // No v12 event cites the create event, yet the creator's power comes from it.
        var room = new ExplicitRoom(RoomVersion.V12);
        room.Add("MA", Alice, EventTypes.Member, Alice, Join);
        room.Add("P", Alice, EventTypes.PowerLevels, "", Levels(RoomVersion.V12), "MA");
        room.Add("T1", Alice, EventTypes.Topic, "", new JsonObject { ["topic"] = "1" }, "MA", "P");
        room.Add("T2", Alice, EventTypes.Topic, "", new JsonObject { ["topic"] = "2" }, "MA", "P");
        var resolved = await room.ResolveAsync(room.State("CREATE", "MA", "P", "T1"), room.State("CREATE", "MA", "P", "T2"));
        Assert.Equal("T2", room.At(resolved, EventTypes.Topic, ""));
    }
}
