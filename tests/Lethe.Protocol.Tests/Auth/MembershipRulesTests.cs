using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using static Lethe.Protocol.Tests.Auth.Users;
using M = Lethe.Protocol.Events.Membership;

namespace Lethe.Protocol.Tests.Auth;

/// <summary>Member rules other than join: invite, leave, ban, knock and malformed memberships (v11 numbering 4.x unless stated).</summary>
public class MembershipRulesTests
{
    private static JsonObject Levels(params (string User, int Level)[] users)
    {
        var map = new JsonObject();
        foreach (var (user, level) in users)
        {
            map[user] = level;
        }

        return new JsonObject { ["users"] = map };
    }

    private static TestRoom Room(int version = 11, JsonObject? levels = null) => TestRoom.Standard(Expect.Version(version), Alice, levels);

    private static Pdu MemberEvent(TestRoom room, string sender, string target, string membership) =>
        room.Build(sender, EventTypes.Member, target, TestRoom.Member(membership));

    [Fact]
    public void AMemberEventWithoutMembershipIsRejected()
    {
        var room = Room();
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Member, Bob, new JsonObject { ["displayname"] = "B" })), "4.1");
    }

    [Fact]
    public void ANonStringMembershipIsRejected()
    {
        var room = Room();
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.Member, Bob, new JsonObject { ["membership"] = 1 })), "4.1");
    }

    [Theory]
    [InlineData(1, "5.6")]
    [InlineData(7, "4.7")]
    [InlineData(11, "4.8")]
    [InlineData(12, "5.8")]
    public void AnUnknownMembershipIsRejected(int version, string rule)
    {
        var room = Room(version);
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Bob, "lurk")), rule);
    }

    [Fact]
    public void MembersMayInvite()
    {
        var room = Room();
        Expect.Allowed(room.Check(MemberEvent(room, Alice, Bob, M.Invite)), "4.4.4");
    }

    [Fact]
    public void NonMembersCannotInvite()
    {
        var room = Room();
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Charlie, M.Invite)), "4.4.2");
    }

    [Theory]
    [InlineData(M.Join)]
    [InlineData(M.Ban)]
    public void JoinedOrBannedUsersCannotBeInvited(string current)
    {
        var room = Room();
        if (current == M.Join)
        {
            room.Join(Bob);
        }
        else
        {
            room.SetMembership(Alice, Bob, M.Ban);
        }

        Expect.Rejected(room.Check(MemberEvent(room, Alice, Bob, M.Invite)), "4.4.3");
    }

    [Fact]
    public void InvitingNeedsTheInviteLevel()
    {
        var levels = Levels((Alice, 100));
        levels["invite"] = 10;
        var room = Room(levels: levels);
        room.Join(Bob);
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Charlie, M.Invite)), "4.4.5");
    }

    [Theory]
    [InlineData(M.Join)]
    [InlineData(M.Invite)]
    public void JoinedAndInvitedUsersMayLeave(string current)
    {
        var room = Room();
        if (current == M.Join)
        {
            room.Join(Bob);
        }
        else
        {
            room.SetMembership(Alice, Bob, M.Invite);
        }

        Expect.Allowed(room.Check(MemberEvent(room, Bob, Bob, M.Leave)), "4.5.1");
    }

    [Fact]
    public void UsersWithNoMembershipCannotLeave()
    {
        var room = Room();
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Bob, M.Leave)), "4.5.1");
    }

    [Fact]
    public void BannedUsersCannotUnbanThemselves()
    {
        var room = Room();
        room.SetMembership(Alice, Bob, M.Ban);
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Bob, M.Leave)), "4.5.1");
    }

    [Fact]
    public void FromV7KnockingUsersMayRetractTheirKnock()
    {
        var room = Room(7);
        room.SetJoinRule(Alice, JoinRule.Knock);
        room.SetMembership(Bob, Bob, M.Knock);
        Expect.Allowed(room.Check(MemberEvent(room, Bob, Bob, M.Leave)), "4.4.1");
    }

    [Fact]
    public void ModeratorsMayKickLesserMembers()
    {
        var room = Room(levels: Levels((Alice, 100)));
        room.Join(Bob);
        Expect.Allowed(room.Check(MemberEvent(room, Alice, Bob, M.Leave)), "4.5.4");
    }

    [Fact]
    public void NonMembersCannotKick()
    {
        var room = Room(levels: Levels((Alice, 100), (Charlie, 100)));
        room.Join(Bob);
        Expect.Rejected(room.Check(MemberEvent(room, Charlie, Bob, M.Leave)), "4.5.2");
    }

    [Fact]
    public void KickingNeedsTheKickLevel()
    {
        var room = Room(levels: Levels((Alice, 100), (Bob, 49)));
        room.Join(Bob);
        room.Join(Charlie);
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Charlie, M.Leave)), "4.5.5");
    }

    [Fact]
    public void NobodyCanKickAPeer()
    {
        var room = Room(levels: Levels((Alice, 100), (Bob, 50), (Charlie, 50)));
        room.Join(Bob);
        room.Join(Charlie);
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Charlie, M.Leave)), "4.5.5");
    }

    [Fact]
    public void UnbanningNeedsTheBanLevel()
    {
        var levels = Levels((Alice, 100), (Bob, 30));
        levels["kick"] = 20;
        levels["ban"] = 40;
        var room = Room(levels: levels);
        room.Join(Bob);
        room.SetMembership(Alice, Charlie, M.Ban);
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Charlie, M.Leave)), "4.5.3");
        Expect.Allowed(room.Check(MemberEvent(room, Alice, Charlie, M.Leave)), "4.5.4");
    }

    [Fact]
    public void ModeratorsMayBanLesserUsersEvenBeforeTheyJoin()
    {
        var room = Room();
        Expect.Allowed(room.Check(MemberEvent(room, Alice, Eve, M.Ban)), "4.6.2");
    }

    [Fact]
    public void NonMembersCannotBan()
    {
        var room = Room(levels: Levels((Alice, 100), (Bob, 100)));
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Eve, M.Ban)), "4.6.1");
    }

    [Fact]
    public void BanningNeedsTheBanLevel()
    {
        var room = Room(levels: Levels((Alice, 100), (Bob, 49)));
        room.Join(Bob);
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Eve, M.Ban)), "4.6.3");
    }

    [Fact]
    public void NobodyCanBanAPeerOrSuperior()
    {
        var room = Room(levels: Levels((Alice, 100), (Bob, 100)));
        room.Join(Bob);
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Alice, M.Ban)), "4.6.3");
    }

    [Fact]
    public void V12CreatorsCannotBeBannedEvenByAHundred()
    {
        var room = Room(12, Levels((Bob, 100)));
        room.Join(Bob);
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Alice, M.Ban)), "5.6.3");
        Expect.Allowed(room.Check(MemberEvent(room, Alice, Bob, M.Ban)), "5.6.2");
    }

    [Fact]
    public void V12CreatorsCannotKickEachOther()
    {
        var room = TestRoom.Standard(RoomVersion.V12, Alice, createContent: new JsonObject { ["additional_creators"] = new JsonArray(Bob) });
        room.Join(Bob);
        Expect.Rejected(room.Check(MemberEvent(room, Alice, Bob, M.Leave)), "5.5.5");
    }

    [Fact]
    public void FromV7UsersMayKnockOnAKnockRoom()
    {
        var room = Room(7);
        room.SetJoinRule(Alice, JoinRule.Knock);
        Expect.Allowed(room.Check(MemberEvent(room, Bob, Bob, M.Knock)), "4.6.3");
    }

    [Fact]
    public void BeforeV7KnockIsAnUnknownMembership()
    {
        var room = Room(6);
        room.SetJoinRule(Alice, JoinRule.Knock);
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Bob, M.Knock)), "4.6");
    }

    [Fact]
    public void KnockingNeedsAKnockJoinRule()
    {
        var room = Room();
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Bob, M.Knock)), "4.7.1");
    }

    [Fact]
    public void NobodyCanKnockForSomeoneElse()
    {
        var room = Room();
        room.SetJoinRule(Alice, JoinRule.Knock);
        Expect.Rejected(room.Check(MemberEvent(room, Alice, Bob, M.Knock)), "4.7.2");
    }

    [Theory]
    [InlineData(M.Invite)]
    [InlineData(M.Ban)]
    [InlineData(M.Join)]
    public void InvitedBannedOrJoinedUsersCannotKnock(string current)
    {
        var room = Room();
        room.SetJoinRule(Alice, JoinRule.Knock);
        if (current == M.Join)
        {
            room.SetMembership(Alice, Bob, M.Invite);
        }

        room.SetMembership(current == M.Join ? Bob : Alice, Bob, current);
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Bob, M.Knock)), "4.7.4");
    }

    [Fact]
    public void FromV10UsersMayKnockOnAKnockRestrictedRoom()
    {
        var room = Room(10);
        room.SetJoinRule(Alice, JoinRule.KnockRestricted);
        Expect.Allowed(room.Check(MemberEvent(room, Bob, Bob, M.Knock)), "4.7.3");
    }

    [Fact]
    public void BeforeV10KnockRestrictedDoesNotAllowKnocking()
    {
        var room = Room(9);
        room.SetJoinRule(Alice, JoinRule.KnockRestricted);
        Expect.Rejected(room.Check(MemberEvent(room, Bob, Bob, M.Knock)), "4.7.1");
    }
}
