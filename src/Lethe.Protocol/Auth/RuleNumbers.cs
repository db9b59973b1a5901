using System.Collections.Concurrent;
using System.Globalization;
using Lethe.Protocol.Events;

namespace Lethe.Protocol.Auth;

/// <summary>The authorisation rule numbers as each room version's spec page prints them, so decisions can cite the rule a reader will find.</summary>
/// <remarks>
/// Numbering shifts between versions: v1–5 have the <c>m.room.aliases</c> rule (4), v1–2 the redaction rule, v7 adds knock,
/// v8 the <c>join_authorised_via_users_server</c> signature rule, v10 the power level type rules and v12 the room ID rule (2)
/// and the creators rule.
/// </remarks>
internal sealed class RuleNumbers
{
    private static readonly ConcurrentDictionary<string, RuleNumbers> Cache = new(StringComparer.Ordinal);

    private RuleNumbers(RoomVersion v)
    {
        var shift = v.RoomIdIsCreateEventHash ? 1 : 0;
        var aliases = v.SpecialCaseAliasesAuth ? 1 : 0;
        var member = 4 + shift + aliases;
        Create = "1";
        RoomIdIsCreate = "2";
        AuthEvents = N(2 + shift);
        Federate = N(3 + shift);
        Aliases = "4";
        Member = N(member);
        SenderJoined = N(member + 1);
        ThirdPartyInvite = N(member + 2);
        RequiredLevel = N(member + 3);
        UserStateKey = N(member + 4);
        PowerLevels = N(member + 5);
        Redaction = N(member + 6);
        Otherwise = N(member + 6 + (v.EventIdFormat == EventIdFormat.Opaque ? 1 : 0));

        CreateAllow = Create + "." + N(v.RoomIdIsCreateEventHash ? 5 : v.ImplicitCreator ? 4 : 5);

        var r = v.RestrictedJoins ? 1 : 0;
        MemberSignature = Member + ".2";
        Join = Member + "." + N(2 + r);
        Invite = Member + "." + N(3 + r);
        Leave = Member + "." + N(4 + r);
        Ban = Member + "." + N(5 + r);
        Knock = Member + "." + N(6 + r);
        UnknownMembership = Member + "." + N((v.Knocking ? 7 : 6) + r);
        JoinRestricted = Join + ".5";
        JoinPublic = Join + "." + N(5 + r);
        JoinOtherwise = Join + "." + N(6 + r);

        var i = v.IntegerPowerLevels ? 2 : 0;
        var c = v.PrivilegedCreators ? 1 : 0;
        PlIntegerFields = PowerLevels + ".1";
        PlMapFields = PowerLevels + ".2";
        PlUsers = PowerLevels + "." + N(1 + i);
        PlCreators = PowerLevels + ".4";
        PlNoPrevious = PowerLevels + "." + N(2 + i + c);
        PlFieldChanges = PowerLevels + "." + N(3 + i + c);
        PlMapRemoved = PowerLevels + "." + N(4 + i + c);
        PlMapAdded = PowerLevels + "." + N(5 + i + c);
        PlUsersChanged = PowerLevels + "." + N(6 + i + c);
        PlUsersAdded = PowerLevels + "." + N(7 + i + c);
        PlAllow = PowerLevels + "." + N(8 + i + c);
    }

    public string Create { get; }

    public string CreateAllow { get; }

    public string RoomIdIsCreate { get; }

    public string AuthEvents { get; }

    public string Federate { get; }

    public string Aliases { get; }

    public string Member { get; }

    public string MemberSignature { get; }

    public string Join { get; }

    public string JoinRestricted { get; }

    public string JoinPublic { get; }

    public string JoinOtherwise { get; }

    public string Invite { get; }

    public string Leave { get; }

    public string Ban { get; }

    public string Knock { get; }

    public string UnknownMembership { get; }

    public string SenderJoined { get; }

    public string ThirdPartyInvite { get; }

    public string RequiredLevel { get; }

    public string UserStateKey { get; }

    public string PowerLevels { get; }

    public string PlIntegerFields { get; }

    public string PlMapFields { get; }

    public string PlUsers { get; }

    public string PlCreators { get; }

    public string PlNoPrevious { get; }

    public string PlFieldChanges { get; }

    public string PlMapRemoved { get; }

    public string PlMapAdded { get; }

    public string PlUsersChanged { get; }

    public string PlUsersAdded { get; }

    public string PlAllow { get; }

    public string Redaction { get; }

    public string Otherwise { get; }

    public static RuleNumbers For(RoomVersion version) => Cache.GetOrAdd(version.Identifier, _ => new RuleNumbers(version));

    private static string N(int n) => n.ToString(CultureInfo.InvariantCulture);
}
