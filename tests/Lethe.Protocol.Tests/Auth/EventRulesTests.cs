using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.Auth;

/// <summary>The rules every non-member event meets: m.federate, m.room.aliases (v1–5), sender membership, required level, user-owned state keys, v1–2 redactions.</summary>
public class EventRulesTests
{
    private static readonly JsonObject Text = new() { ["body"] = "hi", ["msgtype"] = "m.text" };

    [Theory]
    [InlineData(1, "3")]
    [InlineData(11, "3")]
    [InlineData(12, "4")]
    public void UnfederatedRoomsRejectOtherServers(int version, string rule)
    {
        var room = TestRoom.Standard(Expect.Version(version), Alice, createContent: new JsonObject { ["m.federate"] = false });
        Expect.Rejected(room.Check(room.Build(Charlie, EventTypes.Member, Charlie, TestRoom.Member(Membership.Join))), rule);
    }

    [Fact]
    public void UnfederatedRoomsAcceptTheCreatorsServer()
    {
        var room = TestRoom.Standard(RoomVersion.V11, Alice, createContent: new JsonObject { ["m.federate"] = false });
        Expect.Allowed(room.Check(room.Build(Bob, EventTypes.Member, Bob, TestRoom.Member(Membership.Join))), "4.3.6");
    }

    [Fact]
    public void FederatedRoomsAcceptOtherServers()
    {
        var room = TestRoom.Standard(RoomVersion.V11, Alice, createContent: new JsonObject { ["m.federate"] = true });
        Expect.Allowed(room.Check(room.Build(Charlie, EventTypes.Member, Charlie, TestRoom.Member(Membership.Join))), "4.3.6");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    public void BeforeV6AServerMaySetItsOwnAliasesWithoutBeingInTheRoom(int version)
    {
        var room = TestRoom.Standard(Expect.Version(version));
        var aliases = room.Build(Charlie, EventTypes.Aliases, "other.org", new JsonObject { ["aliases"] = new JsonArray("#a:other.org") });
        Expect.Allowed(room.Check(aliases), "4.3");
    }

    [Fact]
    public void BeforeV6AliasesForAnotherServerAreRejected()
    {
        var room = TestRoom.Standard(RoomVersion.V5);
        Expect.Rejected(room.Check(room.Build(Alice, EventTypes.Aliases, "other.org", [])), "4.2");
    }

    [Fact]
    public void BeforeV6AliasesWithoutAStateKeyAreRejected()
    {
        var room = TestRoom.Standard(RoomVersion.V5);
        Expect.Rejected(room.Check(room.Build(Alice, EventTypes.Aliases, null, [])), "4.1");
    }

    [Fact]
    public void FromV6AliasesAreOrdinaryStateEvents()
    {
        var room = TestRoom.Standard(RoomVersion.V6);
        Expect.Rejected(room.Check(room.Build(Charlie, EventTypes.Aliases, "other.org", [])), "5");
        Expect.Allowed(room.Check(room.Build(Alice, EventTypes.Aliases, "other.org", [])), "10");
    }

    [Theory]
    [InlineData(1, "6")]
    [InlineData(6, "5")]
    [InlineData(12, "6")]
    public void NonMembersCannotSendEvents(int version, string rule)
    {
        var room = TestRoom.Standard(Expect.Version(version));
        Expect.Rejected(room.Check(room.Build(Bob, "m.room.message", null, Text)), rule);
    }

    [Fact]
    public void InvitedUsersCannotSendEvents()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        room.SetMembership(Alice, Bob, Membership.Invite);
        Expect.Rejected(room.Check(room.Build(Bob, "m.room.message", null, Text)), "5");
    }

    [Theory]
    [InlineData(1, "12")]
    [InlineData(3, "11")]
    [InlineData(6, "10")]
    [InlineData(12, "11")]
    public void MembersMaySendMessages(int version, string rule)
    {
        var room = TestRoom.Standard(Expect.Version(version));
        room.Join(Bob);
        Expect.Allowed(room.Check(room.Build(Bob, "m.room.message", null, Text)), rule);
    }

    [Fact]
    public void StateEventsNeedStateDefault()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        room.Join(Bob);
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Topic, "", new JsonObject { ["topic"] = "t" })), "7");
    }

    [Fact]
    public void EventsLevelsOverrideTheDefaults()
    {
        var levels = new JsonObject { ["users"] = new JsonObject { [Alice] = 100 }, ["events"] = new JsonObject { [EventTypes.Topic] = 0, ["m.room.message"] = 10 } };
        var room = TestRoom.Standard(RoomVersion.V11, Alice, levels);
        room.Join(Bob);
        Expect.Allowed(room.Check(room.Build(Bob, EventTypes.Topic, "", new JsonObject { ["topic"] = "t" })), "10");
        Expect.Rejected(room.Check(room.Build(Bob, "m.room.message", null, Text)), "7");
    }

    [Fact]
    public void EventsDefaultGovernsMessages()
    {
        var levels = new JsonObject { ["users"] = new JsonObject { [Alice] = 100 }, ["events_default"] = 1 };
        var room = TestRoom.Standard(RoomVersion.V11, Alice, levels);
        room.Join(Bob);
        Expect.Rejected(room.Check(room.Build(Bob, "m.room.message", null, Text)), "7");
    }

    [Fact]
    public void WithoutPowerLevelsOnlyTheCreatorMaySendState()
    {
        var room = new TestRoom(RoomVersion.V11);
        room.Join(Alice);
        room.SetJoinRule(Alice, JoinRule.Public);
        room.Join(Bob);
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Name, "", new JsonObject { ["name"] = "n" })), "7");
        Expect.Allowed(room.Check(room.Build(Alice, EventTypes.Name, "", new JsonObject { ["name"] = "n" })), "10");
    }

    [Fact]
    public void StateKeysNamingAnotherUserAreRejected()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        Expect.Rejected(room.Check(room.Build(Alice, "m.custom", Bob, [])), "8");
    }

    [Fact]
    public void StateKeysThatOnlyStartWithTheSendersIdAreRejected()
    {
        // Owned state suffixes (MSC3757) are not part of any room version here: the key must equal the sender.
        var room = TestRoom.Standard(RoomVersion.V12);
        Expect.Rejected(room.Check(room.Build(Alice, "m.custom", Alice + "_device", [])), "9");
    }

    [Fact]
    public void StateKeysNamingTheSenderAreAllowed()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        Expect.Allowed(room.Check(room.Build(Alice, "m.custom", Alice, [])), "10");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void V1RedactionsNeedTheRedactLevel(int version)
    {
        var room = TestRoom.Standard(Expect.Version(version));
        room.Join(Charlie);
        var target = room.Add(Alice, "m.room.message", null, Text);
        Expect.Rejected(room.Check(room.Build(Charlie, EventTypes.Redaction, null, [], redacts: target.EventId)), "11.3");
        Expect.Allowed(room.Check(room.Build(Alice, EventTypes.Redaction, null, [], redacts: target.EventId)), "11.1");
    }

    [Fact]
    public void V1RedactionsOfEventsFromTheSameServerAreAllowed()
    {
        var room = TestRoom.Standard(RoomVersion.V1);
        room.Join(Charlie);
        var target = room.Add(Charlie, "m.room.message", null, Text);
        Expect.Allowed(room.Check(room.Build(Charlie, EventTypes.Redaction, null, [], redacts: target.EventId)), "11.2");
    }

    [Fact]
    public void FromV3TheRedactLevelIsNotAnAuthRule()
    {
        var room = TestRoom.Standard(RoomVersion.V3);
        room.Join(Charlie);
        var target = room.Add(Alice, "m.room.message", null, Text);
        Expect.Allowed(room.Check(room.Build(Charlie, EventTypes.Redaction, null, [], redacts: target.EventId)), "11");
    }

    [Fact]
    public void RedactionsFollowTheirEventsLevel()
    {
        var levels = new JsonObject { ["users"] = new JsonObject { [Alice] = 100 }, ["events"] = new JsonObject { [EventTypes.Redaction] = 20 } };
        var room = TestRoom.Standard(RoomVersion.V11, Alice, levels);
        room.Join(Charlie);
        var target = room.Add(Charlie, "m.room.message", null, Text);
        Expect.Rejected(room.Check(room.Build(Charlie, EventTypes.Redaction, null, [], redacts: target.EventId)), "7");
    }

    [Fact]
    public void AStateWithoutACreateEventRejectsEverything()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        var state = new Dictionary<StateKey, Pdu>(room.State);
        state.Remove(new StateKey(EventTypes.Create, ""));
        Expect.Rejected(EventAuthorizer.Default.CheckWithState(room.Build(Alice, "m.room.message", null, Text), state), "2.4");
    }

    [Fact]
    public void DecisionsReadWell()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        var decision = room.Check(room.Build(Bob, "m.room.message", null, Text));
        Assert.Equal("rejected by rule 5: sender is not joined", decision.ToString());
    }
}
