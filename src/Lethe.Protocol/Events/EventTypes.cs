namespace Lethe.Protocol.Events;

/// <summary>Event type names the server itself interprets.</summary>
public static class EventTypes
{
    /// <summary><c>m.room.create</c></summary>
    public const string Create = "m.room.create";

    /// <summary><c>m.room.member</c></summary>
    public const string Member = "m.room.member";

    /// <summary><c>m.room.power_levels</c></summary>
    public const string PowerLevels = "m.room.power_levels";

    /// <summary><c>m.room.join_rules</c></summary>
    public const string JoinRules = "m.room.join_rules";

    /// <summary><c>m.room.history_visibility</c></summary>
    public const string HistoryVisibility = "m.room.history_visibility";

    /// <summary><c>m.room.third_party_invite</c></summary>
    public const string ThirdPartyInvite = "m.room.third_party_invite";

    /// <summary><c>m.room.aliases</c> (historical; special in room versions 1–5)</summary>
    public const string Aliases = "m.room.aliases";

    /// <summary><c>m.room.redaction</c></summary>
    public const string Redaction = "m.room.redaction";

    /// <summary><c>m.room.name</c></summary>
    public const string Name = "m.room.name";

    /// <summary><c>m.room.topic</c></summary>
    public const string Topic = "m.room.topic";

    /// <summary><c>m.room.canonical_alias</c></summary>
    public const string CanonicalAlias = "m.room.canonical_alias";

    /// <summary><c>m.room.guest_access</c></summary>
    public const string GuestAccess = "m.room.guest_access";

    /// <summary><c>m.room.encryption</c></summary>
    public const string Encryption = "m.room.encryption";

    /// <summary><c>m.room.tombstone</c></summary>
    public const string Tombstone = "m.room.tombstone";

    /// <summary><c>m.room.server_acl</c></summary>
    public const string ServerAcl = "m.room.server_acl";

    /// <summary><c>m.room.retention</c> (MSC1763)</summary>
    public const string Retention = "m.room.retention";

    /// <summary><c>m.room.message</c></summary>
    public const string Message = "m.room.message";
}

/// <summary>Membership values of <c>m.room.member</c>.</summary>
public static class Membership
{
    /// <summary><c>join</c></summary>
    public const string Join = "join";

    /// <summary><c>invite</c></summary>
    public const string Invite = "invite";

    /// <summary><c>leave</c></summary>
    public const string Leave = "leave";

    /// <summary><c>ban</c></summary>
    public const string Ban = "ban";

    /// <summary><c>knock</c></summary>
    public const string Knock = "knock";
}
