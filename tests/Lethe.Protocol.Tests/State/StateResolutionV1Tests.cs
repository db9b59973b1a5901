using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.State;

/// <summary>Room version 1's original state resolution algorithm.</summary>
public class StateResolutionV1Tests
{
    private static JsonObject Topic(string t) => new() { ["topic"] = t };

    private static JsonObject Ban => new() { ["membership"] = Membership.Ban };

    [Fact]
    public async Task AKeyOnlyOneForkHasIsNotAConflictSoARacingJoinSurvives()
    {
        // The flaw v2 fixed: Eve's join is not checked against the new join rules.
        var dag = DagScenario.Classic(RoomVersion.V1);
        dag.Event("JR", Alice, EventTypes.JoinRules, "", new JsonObject { ["join_rule"] = JoinRule.Invite });
        dag.Event("ME", Eve, EventTypes.Member, Eve, DagScenario.Join);
        dag.Edges("END", "JR", "START");
        dag.Edges("END", "ME", "START");
        await dag.AssertEndStateAsync("JR", "ME");
    }

    [Fact]
    public async Task TheSameRaceIsResolvedAgainstTheJoinInV2()
    {
        var dag = DagScenario.Classic(RoomVersion.V2);
        dag.Event("JR", Alice, EventTypes.JoinRules, "", new JsonObject { ["join_rule"] = JoinRule.Invite });
        dag.Event("ME", Eve, EventTypes.Member, Eve, DagScenario.Join);
        dag.Edges("END", "JR", "START");
        dag.Edges("END", "ME", "START");
        await dag.AssertEndStateAsync("JR");
    }

    [Fact]
    public async Task ADeeperPowerLevelsEventTheShallowerOneAllowsWins()
    {
        var dag = DagScenario.Classic(RoomVersion.V1);
        dag.Event("PA", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("PB", Bob, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50), (Charlie, 50)));
        dag.Event("PC", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50), (Zara, 10)));
        dag.Edges("END", "PB", "PA", "START");
        dag.Edges("END", "PC", "START");
        await dag.AssertEndStateAsync("PB");
    }

    [Fact]
    public async Task AShallowerPowerLevelsEventCanStopADeeperOne()
    {
        // Under PC Bob has no power, so his deeper PB cannot follow it.
        var dag = DagScenario.Classic(RoomVersion.V1);
        dag.Event("PA", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("PB", Bob, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50), (Charlie, 50)));
        dag.Event("PC", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 0)));
        dag.Edges("END", "PB", "PA", "START");
        dag.Edges("END", "PC", "START");
        await dag.AssertEndStateAsync("PC");
    }

    [Fact]
    public async Task TheDeepestAuthorisedTopicWins()
    {
        var dag = DagScenario.Classic(RoomVersion.V1);
        dag.Event("T0", Alice, EventTypes.Topic, "", Topic("0"));
        dag.Event("PA", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("TB", Bob, EventTypes.Topic, "", Topic("b"));
        dag.Event("MZ", Zara, "m.room.message", null, []);
        dag.Edges("START", "T0");
        dag.Edges("T0", "IMZ");
        dag.Edges("END", "TB", "PA", "START");
        dag.Edges("END", "MZ", "START");
        await dag.AssertEndStateAsync("PA", "TB");
    }

    [Fact]
    public async Task ADeeperTopicWhoseSenderLostPowerGivesWayToAnOlderOne()
    {
        var dag = DagScenario.Classic(RoomVersion.V1);
        dag.Event("T0", Alice, EventTypes.Topic, "", Topic("0"));
        dag.Event("PA", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("TB", Bob, EventTypes.Topic, "", Topic("b"));
        dag.Event("MZ", Zara, "m.room.message", null, []);
        dag.Event("PA2", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 0)));
        dag.Edges("START", "T0");
        dag.Edges("T0", "IMZ");
        dag.Edges("END", "TB", "PA", "START");
        dag.Edges("END", "PA2", "MZ", "PA");
        await dag.AssertEndStateAsync("PA2", "T0");
    }

    [Fact]
    public async Task WhenNoCandidatePassesTheShallowestIsKept()
    {
        // Both topics are Bob's, and the resolved power levels leave him powerless.
        var dag = DagScenario.Classic(RoomVersion.V1);
        dag.Event("PA", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("T0", Bob, EventTypes.Topic, "", Topic("0"));
        dag.Event("TB", Bob, EventTypes.Topic, "", Topic("b"));
        dag.Event("PA2", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 0)));
        dag.Event("MZ", Zara, "m.room.message", null, []);
        dag.Edges("END", "TB", "MZ", "T0", "PA", "START");
        dag.Edges("END", "PA2", "T0");
        await dag.AssertEndStateAsync("PA2", "T0");
    }

    [Fact]
    public async Task ABanAppliedOnTopOfAConcurrentJoinWins()
    {
        var dag = DagScenario.Classic(RoomVersion.V1);
        var profile = DagScenario.Join;
        profile["displayname"] = "Z";
        dag.Event("MZ2", Zara, EventTypes.Member, Zara, profile);
        dag.Event("MSG", Alice, "m.room.message", null, []);
        dag.Event("BZ", Alice, EventTypes.Member, Zara, Ban);
        dag.Edges("END", "MZ2", "START");
        dag.Edges("END", "BZ", "MSG", "START");
        await dag.AssertEndStateAsync("BZ");
    }
}
