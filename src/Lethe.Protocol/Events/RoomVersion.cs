namespace Lethe.Protocol.Events;

/// <summary>How event IDs are formed in a room version.</summary>
public enum EventIdFormat
{
    /// <summary>v1–v2: <c>$opaque:server</c>, chosen by the sending server and carried in the event.</summary>
    Opaque,

    /// <summary>v3: the reference hash in standard unpadded Base64.</summary>
    Base64Hash,

    /// <summary>v4+: the reference hash in URL-safe unpadded Base64.</summary>
    UrlSafeBase64Hash,
}

/// <summary>Which redaction algorithm a room version uses (named after the version that introduced it).</summary>
public enum RedactionRules
{
    /// <summary>v1–v5: the original rules (keeps <c>m.room.aliases</c>' aliases).</summary>
    V1,

    /// <summary>v6–v8: <c>m.room.aliases</c> no longer special.</summary>
    V6,

    /// <summary>v9–v10: keeps <c>join_authorised_via_users_server</c> and join rule <c>allow</c>.</summary>
    V9,

    /// <summary>v11+: the rewritten rules of MSC2176/MSC3821/MSC3989.</summary>
    V11,
}

/// <summary>Which state resolution algorithm a room version uses.</summary>
public enum StateResolutionAlgorithm
{
    /// <summary>v1 only.</summary>
    V1,

    /// <summary>v2–v11.</summary>
    V2,

    /// <summary>v12: v2 starting from empty state, with the conflicted state subgraph.</summary>
    V2_1,
}

/// <summary>The rules that vary between room versions. One immutable instance per version; look them up with <see cref="TryGet"/>.</summary>
public sealed class RoomVersion
{
    private static readonly Dictionary<string, RoomVersion> ByIdentifier = new(StringComparer.Ordinal);

    /// <summary>Room version 1.</summary>
    public static readonly RoomVersion V1 = Register(new("1")
    {
        EventIdFormat = EventIdFormat.Opaque,
        StateResolution = StateResolutionAlgorithm.V1,
        Redaction = RedactionRules.V1,
        SpecialCaseAliasesAuth = true,
    });

    /// <summary>Room version 2.</summary>
    public static readonly RoomVersion V2 = Register(V1.With("2", v => v.StateResolution = StateResolutionAlgorithm.V2));

    /// <summary>Room version 3.</summary>
    public static readonly RoomVersion V3 = Register(V2.With("3", v => v.EventIdFormat = EventIdFormat.Base64Hash));

    /// <summary>Room version 4.</summary>
    public static readonly RoomVersion V4 = Register(V3.With("4", v => v.EventIdFormat = EventIdFormat.UrlSafeBase64Hash));

    /// <summary>Room version 5.</summary>
    public static readonly RoomVersion V5 = Register(V4.With("5", v => v.EnforceKeyValidity = true));

    /// <summary>Room version 6.</summary>
    public static readonly RoomVersion V6 = Register(V5.With("6", v =>
    {
        v.Redaction = RedactionRules.V6;
        v.SpecialCaseAliasesAuth = false;
        v.StrictCanonicalJson = true;
        v.LimitNotificationsPowerLevels = true;
    }));

    /// <summary>Room version 7.</summary>
    public static readonly RoomVersion V7 = Register(V6.With("7", v => v.Knocking = true));

    /// <summary>Room version 8.</summary>
    public static readonly RoomVersion V8 = Register(V7.With("8", v => v.RestrictedJoins = true));

    /// <summary>Room version 9.</summary>
    public static readonly RoomVersion V9 = Register(V8.With("9", v => v.Redaction = RedactionRules.V9));

    /// <summary>Room version 10.</summary>
    public static readonly RoomVersion V10 = Register(V9.With("10", v =>
    {
        v.KnockRestrictedJoinRule = true;
        v.IntegerPowerLevels = true;
    }));

    /// <summary>Room version 11.</summary>
    public static readonly RoomVersion V11 = Register(V10.With("11", v =>
    {
        v.Redaction = RedactionRules.V11;
        v.ImplicitCreator = true;
    }));

    /// <summary>Room version 12.</summary>
    public static readonly RoomVersion V12 = Register(V11.With("12", v =>
    {
        v.StateResolution = StateResolutionAlgorithm.V2_1;
        v.RoomIdIsCreateEventHash = true;
        v.PrivilegedCreators = true;
    }));

    private RoomVersion(string identifier) => Identifier = identifier;

    /// <summary>The version string used in <c>m.room.create</c> and APIs, e.g. <c>"11"</c>.</summary>
    public string Identifier { get; private set; }

    /// <summary>How event IDs are formed.</summary>
    public EventIdFormat EventIdFormat { get; private set; }

    /// <summary>Which state resolution algorithm applies.</summary>
    public StateResolutionAlgorithm StateResolution { get; private set; }

    /// <summary>Which redaction algorithm applies.</summary>
    public RedactionRules Redaction { get; private set; }

    /// <summary>v1–v5: <c>m.room.aliases</c> has its own auth rule (sender's domain must match state key).</summary>
    public bool SpecialCaseAliasesAuth { get; private set; }

    /// <summary>v5+: signatures must be made with keys valid at the event's <c>origin_server_ts</c>.</summary>
    public bool EnforceKeyValidity { get; private set; }

    /// <summary>v6+: events must be strictly canonical JSON (integer range, no floats).</summary>
    public bool StrictCanonicalJson { get; private set; }

    /// <summary>v6+: changes to the <c>notifications</c> power levels are checked like <c>events</c>.</summary>
    public bool LimitNotificationsPowerLevels { get; private set; }

    /// <summary>v7+: the <c>knock</c> membership and join rule.</summary>
    public bool Knocking { get; private set; }

    /// <summary>v8+: the <c>restricted</c> join rule and <c>join_authorised_via_users_server</c>.</summary>
    public bool RestrictedJoins { get; private set; }

    /// <summary>v10+: the <c>knock_restricted</c> join rule.</summary>
    public bool KnockRestrictedJoinRule { get; private set; }

    /// <summary>v10+: power level values must be JSON integers (no numeric strings).</summary>
    public bool IntegerPowerLevels { get; private set; }

    /// <summary>v11+: the room creator is the create event's <c>sender</c>; <c>content.creator</c> is not used.</summary>
    public bool ImplicitCreator { get; private set; }

    /// <summary>v11+: <c>redacts</c> lives in <c>content</c> rather than at the top level.</summary>
    public bool RedactsInContent => Redaction >= RedactionRules.V11;

    /// <summary>v12: the room ID is the create event's reference hash; the create event has no <c>room_id</c> and is not an auth event.</summary>
    public bool RoomIdIsCreateEventHash { get; private set; }

    /// <summary>v12: creators (create sender plus <c>additional_creators</c>) have infinite power.</summary>
    public bool PrivilegedCreators { get; private set; }

    /// <summary>Every version this server supports, oldest first.</summary>
    public static IReadOnlyCollection<RoomVersion> All => ByIdentifier.Values;

    /// <summary>The version new rooms get unless the client or config asks otherwise.</summary>
    public static RoomVersion Default => V11;

    /// <summary>Looks a version up by its identifier.</summary>
    public static bool TryGet(string? identifier, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out RoomVersion? version)
    {
        version = null;
        return identifier is not null && ByIdentifier.TryGetValue(identifier, out version);
    }

    /// <inheritdoc />
    public override string ToString() => Identifier;

    private RoomVersion With(string identifier, Action<RoomVersion> change)
    {
        var copy = (RoomVersion)MemberwiseClone();
        copy.Identifier = identifier;
        change(copy);
        return copy;
    }

    private static RoomVersion Register(RoomVersion version)
    {
        ByIdentifier.Add(version.Identifier, version);
        return version;
    }
}
