using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using Lethe.Protocol.Tests.Auth;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.State;

/// <summary>Classic forks resolved with state resolution v2, in every room version that uses it (2–11) and, where the scenario allows, v12.</summary>
public class StateResolutionV2ScenarioTests
{
    public static TheoryData<int> V2Versions() => [2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

    public static TheoryData<int> V2AndV21Versions() => [2, 6, 11, 12];

    private static JsonObject Topic(string t) => new() { ["topic"] = t };

    [Theory]
    [MemberData(nameof(V2AndV21Versions))]
    public async Task ABanBeatsAConcurrentPowerLevelsChangeByTheBannedUser(int version)
    {
        // Alice promotes Bob, then bans him; on a fork Bob restates the power levels. The ban must win.
        var dag = DagScenario.Classic(Expect.Version(version));
        dag.Event("PA", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("MA", Alice, EventTypes.Member, Alice, DagScenario.Join);
        dag.Event("MB", Alice, EventTypes.Member, Bob, new JsonObject { ["membership"] = Membership.Ban });
        dag.Event("PB", Bob, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Edges("END", "MB", "MA", "PA", "START");
        dag.Edges("END", "PB", "PA");
        await dag.AssertEndStateAsync("PA", "MA", "MB");
    }

    [Theory]
    [MemberData(nameof(V2AndV21Versions))]
    public async Task AJoinRacingAJoinRuleChangeIsRejected(int version)
    {
        // Evelyn joins on a fork while Alice makes the room private: her join must not survive.
        var dag = DagScenario.Classic(Expect.Version(version));
        dag.Event("JR", Alice, EventTypes.JoinRules, "", new JsonObject { ["join_rule"] = JoinRule.Private });
        dag.Event("ME", Eve, EventTypes.Member, Eve, DagScenario.Join);
        dag.Edges("END", "JR", "START");
        dag.Edges("END", "ME", "START");
        await dag.AssertEndStateAsync("JR");
    }

    [Theory]
    [MemberData(nameof(V2Versions))]
    public async Task PowerLevelsChangesChainedOffAForkAreKept(int version)
    {
        // Bob (granted 50 by PA) promotes Charlie, who then demotes himself; the other fork only has PA.
        var dag = DagScenario.Classic(Expect.Version(version));
        dag.Event("PA", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("PB", Bob, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50), (Charlie, 50)));
        dag.Event("PC", Charlie, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50), (Charlie, 0)));
        dag.Edges("END", "PC", "PB", "PA", "START");
        dag.Edges("END", "PA");
        await dag.AssertEndStateAsync("PC");
    }

    [Theory]
    [MemberData(nameof(V2Versions))]
    public async Task ATopicSetUnderRevokedPowerIsDropped(int version)
    {
        // Alice demotes Bob (PA2) while Bob, still a moderator on his fork, restates levels and sets a topic.
        var dag = DagScenario.Classic(Expect.Version(version));
        dag.Event("T1", Alice, EventTypes.Topic, "", Topic("1"));
        dag.Event("PA1", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("T2", Alice, EventTypes.Topic, "", Topic("2"));
        dag.Event("PA2", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 0)));
        dag.Event("PB", Bob, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("T3", Bob, EventTypes.Topic, "", Topic("3"));
        dag.Edges("END", "PA2", "T2", "PA1", "T1", "START");
        dag.Edges("END", "T3", "PB", "PA1");
        await dag.AssertEndStateAsync("PA2", "T2");
    }

    [Theory]
    [MemberData(nameof(V2AndV21Versions))]
    public async Task ATopicResetsWhenItsSenderIsBannedOnTheSameFork(int version)
    {
        // Bob sets a topic then is banned; the other fork still has T1. The ban invalidates T2, so T1 comes back.
        var dag = DagScenario.Classic(Expect.Version(version));
        dag.Event("T1", Alice, EventTypes.Topic, "", Topic("1"));
        dag.Event("PA", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("T2", Bob, EventTypes.Topic, "", Topic("2"));
        dag.Event("MB", Alice, EventTypes.Member, Bob, new JsonObject { ["membership"] = Membership.Ban });
        dag.Edges("END", "MB", "T2", "PA", "T1", "START");
        dag.Edges("END", "T1");
        await dag.AssertEndStateAsync("T1", "MB", "PA");
    }

    [Theory]
    [MemberData(nameof(V2Versions))]
    public async Task TheLatestAuthorisedTopicWins(int version)
    {
        var dag = DagScenario.Classic(Expect.Version(version));
        dag.Event("T1", Alice, EventTypes.Topic, "", Topic("1"));
        dag.Event("PA1", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("T2", Alice, EventTypes.Topic, "", Topic("2"));
        dag.Event("PA2", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 0)));
        dag.Event("PB", Bob, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("T3", Bob, EventTypes.Topic, "", Topic("3"));
        dag.Event("MZ1", Zara, "m.room.message", null, []);
        dag.Event("T4", Alice, EventTypes.Topic, "", Topic("4"));
        dag.Edges("END", "T4", "MZ1", "PA2", "T2", "PA1", "T1", "START");
        dag.Edges("END", "MZ1", "T3", "PB", "PA1");
        await dag.AssertEndStateAsync("T4", "PA2");
    }

    [Theory]
    [MemberData(nameof(V2Versions))]
    public async Task MainlineOrderingBeatsTimestamps(int version)
    {
        // T4 is sent after T3 but hangs off an older power levels event; the mainline puts T3 last, so T3 wins.
        var dag = DagScenario.Classic(Expect.Version(version));
        dag.Event("T1", Alice, EventTypes.Topic, "", Topic("1"));
        dag.Event("PA1", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("T2", Alice, EventTypes.Topic, "", Topic("2"));
        var pa2 = dag.Levels((Alice, 100), (Bob, 50));
        pa2["events"] = new JsonObject { [EventTypes.PowerLevels] = 100 };
        dag.Event("PA2", Alice, EventTypes.PowerLevels, "", pa2);
        dag.Event("PB", Bob, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50)));
        dag.Event("T3", Bob, EventTypes.Topic, "", Topic("3"));
        dag.Event("T4", Alice, EventTypes.Topic, "", Topic("4"));
        dag.Edges("END", "T3", "PA2", "T2", "PA1", "T1", "START");
        dag.Edges("END", "T4", "PB", "PA1");
        await dag.AssertEndStateAsync("T3", "PA2");
    }

    [Theory]
    [MemberData(nameof(V2AndV21Versions))]
    public async Task ConcurrentJoinsAreBothKept(int version)
    {
        var dag = DagScenario.Classic(Expect.Version(version));
        dag.Event("MD", Dave, EventTypes.Member, Dave, DagScenario.Join);
        dag.Event("ME", Eve, EventTypes.Member, Eve, DagScenario.Join);
        dag.Edges("END", "MD", "START");
        dag.Edges("END", "ME", "START");
        await dag.AssertEndStateAsync("MD", "ME");
    }

    [Theory]
    [MemberData(nameof(V2AndV21Versions))]
    public async Task AKickBeatsAConcurrentMessageOfTheKickedUsersState(int version)
    {
        // Zara sets her own profile state while Alice kicks her: the kick makes her state event unauthorised.
        var dag = DagScenario.Classic(Expect.Version(version));
        dag.Event("PZ", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Zara, 50)));
        dag.Event("SZ", Zara, "m.custom.profile", Zara, []);
        dag.Event("KZ", Alice, EventTypes.Member, Zara, new JsonObject { ["membership"] = Membership.Leave });
        dag.Edges("END", "KZ", "PZ", "START");
        dag.Edges("END", "SZ", "PZ");
        await dag.AssertEndStateAsync("PZ", "KZ");
    }

    [Theory]
    [MemberData(nameof(V2AndV21Versions))]
    public async Task AdminVersusModeratorPowerStrugglesFavourTheAdmin(int version)
    {
        // Bob (50) tries to demote Charlie (50) and is rejected; concurrently Alice demotes Bob. Alice's change stands.
        var dag = DagScenario.Classic(Expect.Version(version));
        dag.Event("PA", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50), (Charlie, 40)));
        dag.Event("PB", Bob, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 50), (Charlie, 0)));
        dag.Event("PA2", Alice, EventTypes.PowerLevels, "", dag.Levels((Alice, 100), (Bob, 0), (Charlie, 40)));
        dag.Edges("END", "PB", "PA", "START");
        dag.Edges("END", "PA2", "PA");
        await dag.AssertEndStateAsync("PA2");
    }
}
