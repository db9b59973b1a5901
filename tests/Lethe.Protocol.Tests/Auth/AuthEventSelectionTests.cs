using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.Auth;

public class AuthEventSelectionTests
{
    private static readonly StateKey Create = new(EventTypes.Create, "");
    private static readonly StateKey PowerLevels = new(EventTypes.PowerLevels, "");
    private static readonly StateKey JoinRules = new(EventTypes.JoinRules, "");

    private static StateKey MemberOf(string user) => new(EventTypes.Member, user);

    private static JsonObject Membership(string membership) => new() { ["membership"] = membership };

    [Fact]
    public void CreateEventsCiteNothing()
    {
        Assert.Empty(AuthEventSelection.Select(RoomVersion.V11, EventTypes.Create, Alice, "", []));
    }

    [Fact]
    public void MessagesCiteCreatePowerLevelsAndTheSendersMembership()
    {
        Assert.Equal([Create, PowerLevels, MemberOf(Bob)], AuthEventSelection.Select(RoomVersion.V11, "m.room.message", Bob, null, []));
    }

    [Fact]
    public void V12NeverCitesTheCreateEvent()
    {
        Assert.Equal([PowerLevels, MemberOf(Bob)], AuthEventSelection.Select(RoomVersion.V12, "m.room.topic", Bob, "", []));
    }

    [Theory]
    [InlineData("join", true)]
    [InlineData("invite", true)]
    [InlineData("knock", true)]
    [InlineData("leave", false)]
    [InlineData("ban", false)]
    public void JoinRulesAreCitedForJoinInviteAndKnock(string membership, bool citesJoinRules)
    {
        var keys = AuthEventSelection.Select(RoomVersion.V11, EventTypes.Member, Alice, Bob, Membership(membership));
        Assert.Contains(MemberOf(Bob), keys);
        Assert.Equal(citesJoinRules, keys.Contains(JoinRules));
    }

    [Fact]
    public void TheSendersOwnMembershipIsCitedOnce()
    {
        var keys = AuthEventSelection.Select(RoomVersion.V11, EventTypes.Member, Bob, Bob, Membership("join"));
        Assert.Equal([Create, PowerLevels, MemberOf(Bob), JoinRules], keys);
    }

    [Fact]
    public void ThirdPartyInvitesCiteTheInviteWithTheToken()
    {
        var content = Membership("invite");
        content["third_party_invite"] = new JsonObject { ["signed"] = new JsonObject { ["token"] = "abc", ["mxid"] = Bob } };
        Assert.Contains(new StateKey(EventTypes.ThirdPartyInvite, "abc"), AuthEventSelection.Select(RoomVersion.V11, EventTypes.Member, Alice, Bob, content));
    }

    [Theory]
    [InlineData(7, false)]
    [InlineData(8, true)]
    [InlineData(12, true)]
    public void RestrictedJoinsCiteTheAuthorisingUserFromV8(int version, bool cited)
    {
        RoomVersion.TryGet(version.ToString(System.Globalization.CultureInfo.InvariantCulture), out var v);
        var content = Membership("join");
        content["join_authorised_via_users_server"] = Charlie;
        Assert.Equal(cited, AuthEventSelection.Select(v!, EventTypes.Member, Bob, Bob, content).Contains(MemberOf(Charlie)));
    }

    [Fact]
    public void TheAuthorisingUserIsOnlyCitedForJoins()
    {
        var content = Membership("leave");
        content["join_authorised_via_users_server"] = Charlie;
        Assert.DoesNotContain(MemberOf(Charlie), AuthEventSelection.Select(RoomVersion.V11, EventTypes.Member, Bob, Bob, content));
    }

    [Fact]
    public void SelectEventIdsTakesWhatTheStateHoldsInSelectionOrder()
    {
        var state = new Dictionary<StateKey, string> { [MemberOf(Bob)] = "$m", [Create] = "$c", [JoinRules] = "$j" };
        Assert.Equal(["$c", "$m", "$j"], AuthEventSelection.SelectEventIds(RoomVersion.V11, EventTypes.Member, Bob, Bob, Membership("join"), state));
    }
}
