using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.Auth;

/// <summary>Member rule, membership join (5.2 in v1–5, 4.2 in v6–7, 4.3 in v8–11, 5.3 in v12).</summary>
public class JoinRulesTests
{
    private const string AuthoriserKey = "join_authorised_via_users_server";

    private static JsonObject Join(string? authoriser = null)
    {
        var content = TestRoom.Member(Membership.Join);
        if (authoriser is not null)
        {
            content[AuthoriserKey] = authoriser;
        }

        return content;
    }

    // Charlie joins while the room is still public, so he can authorise joins afterwards.
    private static TestRoom RoomWithRule(int version, string rule, JsonObject? powerLevels = null)
    {
        var room = TestRoom.Standard(Expect.Version(version), Alice, powerLevels);
        room.Join(Charlie);
        room.SetJoinRule(Alice, rule);
        return room;
    }

    [Theory]
    [InlineData(1, "5.2.1")]
    [InlineData(6, "4.2.1")]
    [InlineData(11, "4.3.1")]
    [InlineData(12, "5.3.1")]
    public void TheCreatorMayJoinRightAfterTheCreateEvent(int version, string rule)
    {
        var room = new TestRoom(Expect.Version(version), Alice);
        Expect.Allowed(room.Check(room.Build(Alice, EventTypes.Member, Alice, Join())), rule);
    }

    [Fact]
    public void BeforeV11TheFirstJoinBelongsToContentCreator()
    {
        var room = new TestRoom(RoomVersion.V10, Alice, new JsonObject { ["creator"] = Bob });
        Expect.Allowed(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), "4.3.1");
        Expect.Rejected(room.Check(room.Build(Alice, EventTypes.Member, Alice, Join())), "4.3.7");
    }

    [Fact]
    public void FromV11TheFirstJoinBelongsToTheCreateSender()
    {
        var room = new TestRoom(RoomVersion.V11, Alice, new JsonObject { ["creator"] = Bob });
        Expect.Allowed(room.Check(room.Build(Alice, EventTypes.Member, Alice, Join())), "4.3.1");
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), "4.3.7");
    }

    [Fact]
    public void TheCreatorsJoinIsOnlySpecialWhenTheCreateEventIsTheOnlyPrevEvent()
    {
        var room = new TestRoom(RoomVersion.V11, Alice);
        var join = room.Build(Alice, EventTypes.Member, Alice, Join(), prevEvents: [room.Create.EventId, "$elsewhere"]);
        Expect.Rejected(room.Check(join), "4.3.7");
    }

    [Fact]
    public void NobodyCanJoinForSomeoneElse()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        Expect.Rejected(room.Check(room.Build(Alice, EventTypes.Member, Bob, Join())), "4.3.2");
    }

    [Fact]
    public void BannedUsersCannotJoinEvenPublicRooms()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        room.SetMembership(Alice, Bob, Membership.Ban);
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), "4.3.3");
    }

    [Theory]
    [InlineData(1, "5.2.5")]
    [InlineData(7, "4.2.5")]
    [InlineData(8, "4.3.6")]
    [InlineData(12, "5.3.6")]
    public void AnyoneMayJoinAPublicRoom(int version, string rule)
    {
        var room = TestRoom.Standard(Expect.Version(version));
        Expect.Allowed(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), rule);
    }

    [Fact]
    public void InvitedUsersMayJoinAnInviteOnlyRoom()
    {
        var room = RoomWithRule(11, JoinRule.Invite);
        room.SetMembership(Alice, Bob, Membership.Invite);
        Expect.Allowed(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), "4.3.4");
    }

    [Theory]
    [InlineData(1, "5.2.6")]
    [InlineData(7, "4.2.6")]
    [InlineData(11, "4.3.7")]
    public void UninvitedUsersCannotJoinAnInviteOnlyRoom(int version, string rule)
    {
        var room = RoomWithRule(version, JoinRule.Invite);
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), rule);
    }

    [Fact]
    public void JoinedMembersMayRejoinToChangeTheirProfile()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        room.Join(Bob);
        room.SetJoinRule(Alice, JoinRule.Invite);
        var content = Join();
        content["displayname"] = "Bobby";
        Expect.Allowed(room.Check(room.Build(Bob, EventTypes.Member, Bob, content)), "4.3.4");
    }

    [Fact]
    public void ARoomWithoutJoinRulesBehavesAsInviteOnly()
    {
        var room = new TestRoom(RoomVersion.V11);
        room.Join(Alice);
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), "4.3.7");
        room.SetMembership(Alice, Bob, Membership.Invite);
        Expect.Allowed(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), "4.3.4");
    }

    [Fact]
    public void PrivateRoomsAdmitNobody()
    {
        var room = RoomWithRule(11, JoinRule.Private);
        room.SetMembership(Alice, Bob, Membership.Invite);
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), "4.3.7");
    }

    [Fact]
    public void FromV7InvitedUsersMayJoinAKnockRoom()
    {
        var room = RoomWithRule(7, JoinRule.Knock);
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), "4.2.6");
        room.SetMembership(Alice, Bob, Membership.Invite);
        Expect.Allowed(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), "4.2.4");
    }

    [Fact]
    public void BeforeV7AKnockJoinRuleAdmitsNobody()
    {
        var room = RoomWithRule(6, JoinRule.Knock);
        room.SetMembership(Alice, Bob, Membership.Invite);
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), "4.2.6");
    }

    [Fact]
    public void RestrictedRoomsAdmitInvitedUsers()
    {
        var room = RoomWithRule(8, JoinRule.Restricted);
        room.SetMembership(Alice, Bob, Membership.Invite);
        Expect.Allowed(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), "4.3.5.1");
    }

    [Theory]
    [InlineData(8, JoinRule.Restricted, "4.3.5.3")]
    [InlineData(10, JoinRule.KnockRestricted, "4.3.5.3")]
    [InlineData(12, JoinRule.Restricted, "5.3.5.3")]
    public void RestrictedRoomsAdmitJoinsAuthorisedByAMemberWhoMayInvite(int version, string rule, string decidingRule)
    {
        var room = RoomWithRule(version, rule);
        var join = room.Build(Bob, EventTypes.Member, Bob, Join(Charlie), alsoSignedBy: ["other.org"]);
        Expect.Allowed(room.Check(join), decidingRule);
    }

    [Fact]
    public void RestrictedJoinsNeedAnAuthoriser()
    {
        var room = RoomWithRule(8, JoinRule.Restricted);
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), "4.3.5.2");
    }

    [Fact]
    public void RestrictedJoinAuthorisersMustBeJoined()
    {
        var room = RoomWithRule(8, JoinRule.Restricted);
        room.SetMembership(Charlie, Charlie, Membership.Leave);
        var join = room.Build(Bob, EventTypes.Member, Bob, Join(Charlie), alsoSignedBy: ["other.org"]);
        Expect.Rejected(room.Check(join), "4.3.5.2");
    }

    [Fact]
    public void RestrictedJoinAuthorisersMustReachTheInviteLevel()
    {
        var levels = new JsonObject { ["users"] = new JsonObject { [Alice] = 100 }, ["invite"] = 50 };
        var room = RoomWithRule(9, JoinRule.Restricted, levels);
        var join = room.Build(Bob, EventTypes.Member, Bob, Join(Charlie), alsoSignedBy: ["other.org"]);
        Expect.Rejected(room.Check(join), "4.3.5.2");
    }

    [Fact]
    public void RestrictedJoinsMustBeSignedByTheAuthorisersServer()
    {
        var room = RoomWithRule(8, JoinRule.Restricted);
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join(Charlie))), "4.2.1");
    }

    [Fact]
    public void TheAuthorisersSignatureIsRequiredWhateverTheJoinRule()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join(Charlie))), "4.2.1");
    }

    [Fact]
    public void TheSignatureQuestionGoesToTheCallersCheck()
    {
        var room = RoomWithRule(8, JoinRule.Restricted);
        var unsigned = room.Build(Bob, EventTypes.Member, Bob, Join(Charlie));
        var signedByAll = new EventAuthorizer(new FixedSignatureCheck(true));
        Expect.Allowed(signedByAll.CheckWithState(unsigned, room.State), "4.3.5.3");

        var signed = room.Build(Bob, EventTypes.Member, Bob, Join(Charlie), alsoSignedBy: ["other.org"]);
        var signedByNone = new EventAuthorizer(new FixedSignatureCheck(false));
        Expect.Rejected(signedByNone.CheckWithState(signed, room.State), "4.2.1");
    }

    [Fact]
    public void BeforeV8TheAuthoriserKeyMeansNothing()
    {
        var room = TestRoom.Standard(RoomVersion.V7);
        Expect.Allowed(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join(Charlie))), "4.2.5");
    }

    [Fact]
    public void BeforeV8RestrictedRoomsAdmitNobody()
    {
        var room = RoomWithRule(7, JoinRule.Restricted);
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join(Charlie))), "4.2.6");
    }

    [Fact]
    public void BeforeV10KnockRestrictedRoomsAdmitNobody()
    {
        var room = RoomWithRule(9, JoinRule.KnockRestricted);
        var join = room.Build(Bob, EventTypes.Member, Bob, Join(Charlie), alsoSignedBy: ["other.org"]);
        Expect.Rejected(room.Check(join), "4.3.7");
    }

    [Fact]
    public void KnockRestrictedRoomsAdmitInvitedUsers()
    {
        var room = RoomWithRule(10, JoinRule.KnockRestricted);
        room.SetMembership(Alice, Bob, Membership.Invite);
        Expect.Allowed(room.Check(room.Build(Bob, EventTypes.Member, Bob, Join())), "4.3.5.1");
    }

    private sealed class FixedSignatureCheck(bool answer) : IEventSignatureCheck
    {
        public bool IsSignedBy(Pdu pdu, string serverName) => answer;
    }
}
