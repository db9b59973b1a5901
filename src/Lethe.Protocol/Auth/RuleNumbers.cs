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

    /// <summary>Rule 1: m.room.create.</summary>
    public string Create { get; }

    /// <summary>The create rule's final "otherwise, allow".</summary>
    public string CreateAllow { get; }

    /// <summary>v12 rule 2: the room ID names an accepted create event.</summary>
    public string RoomIdIsCreate { get; }

    /// <summary>The rule about the event's own auth_events (2, or 3 in v12).</summary>
    public string AuthEvents { get; }

    /// <summary>The m.federate rule.</summary>
    public string Federate { get; }

    /// <summary>v1–5 rule 4: m.room.aliases.</summary>
    public string Aliases { get; }

    /// <summary>The m.room.member rule.</summary>
    public string Member { get; }

    /// <summary>v8+: join_authorised_via_users_server must have signed.</summary>
    public string MemberSignature { get; }

    /// <summary>Membership join.</summary>
    public string Join { get; }

    /// <summary>v8+: restricted (v10+: knock_restricted) joins.</summary>
    public string JoinRestricted { get; }

    /// <summary>Joins to a public room.</summary>
    public string JoinPublic { get; }

    /// <summary>Joins no join rule admits.</summary>
    public string JoinOtherwise { get; }

    /// <summary>Membership invite.</summary>
    public string Invite { get; }

    /// <summary>Membership leave.</summary>
    public string Leave { get; }

    /// <summary>Membership ban.</summary>
    public string Ban { get; }

    /// <summary>v7+: membership knock.</summary>
    public string Knock { get; }

    /// <summary>Any other membership.</summary>
    public string UnknownMembership { get; }

    /// <summary>The sender must be joined.</summary>
    public string SenderJoined { get; }

    /// <summary>m.room.third_party_invite needs the invite level.</summary>
    public string ThirdPartyInvite { get; }

    /// <summary>The event type's required power level.</summary>
    public string RequiredLevel { get; }

    /// <summary>State keys naming another user.</summary>
    public string UserStateKey { get; }

    /// <summary>The m.room.power_levels rule.</summary>
    public string PowerLevels { get; }

    /// <summary>v10+: integer fields must be integers.</summary>
    public string PlIntegerFields { get; }

    /// <summary>v10+: events and notifications must hold integers.</summary>
    public string PlMapFields { get; }

    /// <summary>users must map user IDs to levels.</summary>
    public string PlUsers { get; }

    /// <summary>v12: creators may not appear in users.</summary>
    public string PlCreators { get; }

    /// <summary>The first power levels event is allowed.</summary>
    public string PlNoPrevious { get; }

    /// <summary>Changes to the integer fields.</summary>
    public string PlFieldChanges { get; }

    /// <summary>events/notifications entries changed or removed.</summary>
    public string PlMapRemoved { get; }

    /// <summary>events/notifications entries added or changed.</summary>
    public string PlMapAdded { get; }

    /// <summary>users entries changed or removed.</summary>
    public string PlUsersChanged { get; }

    /// <summary>users entries added or changed.</summary>
    public string PlUsersAdded { get; }

    /// <summary>The power levels rule's final "otherwise, allow".</summary>
    public string PlAllow { get; }

    /// <summary>v1–2: the redaction rule.</summary>
    public string Redaction { get; }

    /// <summary>The final "otherwise, allow".</summary>
    public string Otherwise { get; }

    /// <summary>The numbering of a room version (cached).</summary>
    public static RuleNumbers For(RoomVersion version) => Cache.GetOrAdd(version.Identifier, _ => new RuleNumbers(version));

    private static string N(int n) => n.ToString(CultureInfo.InvariantCulture);
}
