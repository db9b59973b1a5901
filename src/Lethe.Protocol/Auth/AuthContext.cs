using Lethe.Protocol.Events;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Auth;

/// <summary>One authorisation check in progress: the event, the state it is checked against, and what that state implies.</summary>
internal sealed class AuthContext
{
    private PowerLevels? _levels;

    /// <summary>Starts a check of <paramref name="pdu"/> against <paramref name="state"/>, whose create event is <paramref name="create"/>.</summary>
    public AuthContext(Pdu pdu, IReadOnlyDictionary<StateKey, Pdu> state, Pdu create)
    {
        Pdu = pdu;
        State = state;
        Create = create;
        Version = pdu.RoomVersion;
        Rules = RuleNumbers.For(pdu.RoomVersion);
        Creators = RoomCreators.FromCreateEvent(create);
    }

    /// <summary>The event being checked.</summary>
    public Pdu Pdu { get; }

    /// <summary>The state it is checked against.</summary>
    public IReadOnlyDictionary<StateKey, Pdu> State { get; }

    /// <summary>The room's create event.</summary>
    public Pdu Create { get; }

    /// <summary>The room version of the event.</summary>
    public RoomVersion Version { get; }

    /// <summary>Rule labels for the room version.</summary>
    public RuleNumbers Rules { get; }

    /// <summary>The room's creators.</summary>
    public RoomCreators Creators { get; }

    /// <summary>The power levels in the state.</summary>
    public PowerLevels Levels => _levels ??= PowerLevels.FromContent(Get(EventTypes.PowerLevels, "")?.Content, Version, Creators);

    /// <summary>The state event under (type, key), if any.</summary>
    public Pdu? Get(string type, string key) => State.TryGetValue(new StateKey(type, key), out var e) ? e : null;

    /// <summary>A user's membership in the state, or null when they have no member event.</summary>
    public string? MembershipOf(string userId) => Get(EventTypes.Member, userId)?.Membership;

    /// <summary>The join rule in the state; a room without one behaves as <c>invite</c>, and a non-string rule matches nothing.</summary>
    public string JoinRuleValue()
    {
        var joinRules = Get(EventTypes.JoinRules, "");
        if (joinRules is null || !joinRules.Content.ContainsKey("join_rule"))
        {
            return JoinRule.Invite;
        }

        return joinRules.Content.GetString("join_rule") ?? "";
    }

    /// <summary>The server part of a user ID, or null when it is not one.</summary>
    public static string? ServerOf(string userId) => UserId.TryParse(userId, out var id) ? id.Server.Value : null;

    /// <summary>A rejection citing <paramref name="rule"/>.</summary>
    public static AuthDecision Reject(string rule, string reason) => AuthDecision.Reject(rule, reason);

    /// <summary>An allow citing <paramref name="rule"/>.</summary>
    public static AuthDecision Allow(string rule, string reason) => AuthDecision.Allow(rule, reason);
}
