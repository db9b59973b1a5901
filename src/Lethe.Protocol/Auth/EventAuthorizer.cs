using System.Text.Json.Nodes;
using Lethe.Protocol.Events;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;
using static Lethe.Protocol.Auth.AuthContext;

namespace Lethe.Protocol.Auth;

/// <summary>The Matrix authorisation rules for room versions 1–12: decides whether an event is allowed given a set of room state.</summary>
/// <remarks>
/// Signatures and hashes are the caller's job; only the <c>join_authorised_via_users_server</c> rule needs one answered, through <see cref="IEventSignatureCheck"/>.
/// Comments number rules as room version 12 does; <see cref="AuthDecision.Rule"/> uses the checked event's own room version numbering.
/// </remarks>
public sealed class EventAuthorizer
{
    private static readonly StateKey CreateKey = new(EventTypes.Create, "");

    private readonly IEventSignatureCheck _signatures;

    /// <summary>Creates an authorizer that asks <paramref name="signatures"/> whether a restricted join was signed by its authorising server.</summary>
    public EventAuthorizer(IEventSignatureCheck signatures) => _signatures = signatures;

    /// <summary>An authorizer for callers that verify every signature on an event before authorising it.</summary>
    public static EventAuthorizer Default { get; } = new(PresentSignatureCheck.Instance);

    /// <summary>Checks an event against its own <c>auth_events</c> (check 4 of "checks performed on receipt of a PDU"): every rule, with the auth events as the state.</summary>
    /// <param name="pdu">The event to check.</param>
    /// <param name="authEvents">The events <paramref name="pdu"/> cites in <c>auth_events</c>, with their rejection status; extra entries are ignored.</param>
    /// <param name="roomCreateEvent">Room version 12 only: the create event named by the room ID (null when unknown).</param>
    /// <exception cref="ArgumentException">An event cited in <c>auth_events</c> is missing from <paramref name="authEvents"/>.</exception>
    public AuthDecision CheckWithAuthEvents(Pdu pdu, IReadOnlyCollection<EventRecord> authEvents, EventRecord? roomCreateEvent = null)
    {
        var rules = RuleNumbers.For(pdu.RoomVersion);

        // 1
        if (pdu.Type == EventTypes.Create)
        {
            return CheckCreate(pdu, rules);
        }

        var state = new Dictionary<StateKey, Pdu>();

        // 2 (v12): the room ID names an accepted create event.
        if (pdu.RoomVersion.RoomIdIsCreateEventHash)
        {
            if (roomCreateEvent is not { } create || !IsRoomCreateEvent(pdu, create.Event))
            {
                return Reject(rules.RoomIdIsCreate, "the room ID does not name a known create event");
            }

            if (create.IsRejected)
            {
                return Reject(rules.RoomIdIsCreate, "the room's create event was rejected");
            }

            state[CreateKey] = create.Event;
        }

        // 3
        var listed = CheckAuthEventList(pdu, authEvents, rules, state);
        return listed ?? CheckStateDependent(pdu, state, rules);
    }

    /// <summary>Checks an event against a room state: the state before it (check 5), the current state (check 6, soft failure) or a partial state during state resolution.</summary>
    /// <remarks>Skips the rules about the event's own <c>auth_events</c> list, which <see cref="CheckWithAuthEvents"/> covers. In v12 the state must hold the room's create event.</remarks>
    public AuthDecision CheckWithState(Pdu pdu, IReadOnlyDictionary<StateKey, Pdu> state)
    {
        var rules = RuleNumbers.For(pdu.RoomVersion);

        // 1
        if (pdu.Type == EventTypes.Create)
        {
            return CheckCreate(pdu, rules);
        }

        // 2 (v12)
        if (pdu.RoomVersion.RoomIdIsCreateEventHash && (!state.TryGetValue(CreateKey, out var create) || !IsRoomCreateEvent(pdu, create)))
        {
            return Reject(rules.RoomIdIsCreate, "the state holds no create event matching the room ID");
        }

        return CheckStateDependent(pdu, state, rules);
    }

    // 1: m.room.create.
    private static AuthDecision CheckCreate(Pdu pdu, RuleNumbers rules)
    {
        var version = pdu.RoomVersion;

        // 1.1
        if (pdu.PrevEvents.Count > 0)
        {
            return Reject(rules.Create + ".1", "create event has prev_events");
        }

        // 1.2: v12 derives the room ID, so the event must not carry one; before, its domain must be the sender's.
        if (version.RoomIdIsCreateEventHash)
        {
            if (pdu.Json.ContainsKey("room_id"))
            {
                return Reject(rules.Create + ".2", "create event has a room_id");
            }
        }
        else if (!RoomId.TryParse(pdu.RoomId, out var roomId) || roomId.Server?.Value != ServerOf(pdu.Sender))
        {
            return Reject(rules.Create + ".2", "room_id domain does not match the sender's");
        }

        // 1.3
        if (pdu.Content.ContainsKey("room_version") && !RoomVersion.TryGet(pdu.Content.GetString("room_version"), out _))
        {
            return Reject(rules.Create + ".3", "content.room_version is not a recognised version");
        }

        // 1.4 (v1–10): content.creator is required.
        if (!version.ImplicitCreator && !pdu.Content.ContainsKey("creator"))
        {
            return Reject(rules.Create + ".4", "content has no creator");
        }

        // 1.4 (v12): additional_creators is an array of user IDs.
        if (version.PrivilegedCreators && pdu.Content.ContainsKey("additional_creators") && !AreUserIds(pdu.Content["additional_creators"]))
        {
            return Reject(rules.Create + ".4", "additional_creators is not an array of valid user IDs");
        }

        // 1.5
        return Allow(rules.CreateAllow, "create event is well formed");
    }

    // 3: the auth_events list itself. Returns null when it passes, filling the state the rest of the rules read.
    private static AuthDecision? CheckAuthEventList(Pdu pdu, IReadOnlyCollection<EventRecord> supplied, RuleNumbers rules, Dictionary<StateKey, Pdu> state)
    {
        var byId = new Dictionary<string, EventRecord>(supplied.Count, StringComparer.Ordinal);
        foreach (var record in supplied)
        {
            byId[record.Event.EventId] = record;
        }

        var cited = new List<EventRecord>(pdu.AuthEvents.Count);
        foreach (var id in pdu.AuthEvents)
        {
            cited.Add(byId.TryGetValue(id, out var record)
                ? record
                : throw new ArgumentException($"auth event {id} of {pdu.EventId} was not supplied", nameof(supplied)));
        }

        // 3.1
        var seen = new HashSet<StateKey>();
        foreach (var record in cited)
        {
            if (record.Event.StateKey is not null && !seen.Add(record.Event.StateMapKey))
            {
                return Reject(rules.AuthEvents + ".1", $"auth_events holds two {record.Event.StateMapKey} events");
            }
        }

        // 3.2: only the keys the selection algorithm names (in v12 that excludes the create event).
        var expected = AuthEventSelection.Select(pdu);
        foreach (var record in cited)
        {
            if (record.Event.StateKey is null || !Contains(expected, record.Event.StateMapKey))
            {
                return Reject(rules.AuthEvents + ".2", $"auth event {record.Event.EventId} ({record.Event.Type}) is not one the selection algorithm picks");
            }
        }

        // 3.3
        foreach (var record in cited)
        {
            if (record.IsRejected)
            {
                return Reject(rules.AuthEvents + ".3", $"auth event {record.Event.EventId} was rejected");
            }
        }

        // 3.4 (v1–11)
        if (!pdu.RoomVersion.RoomIdIsCreateEventHash && !seen.Contains(CreateKey))
        {
            return Reject(rules.AuthEvents + ".4", "auth_events holds no m.room.create event");
        }

        // 3.5
        foreach (var record in cited)
        {
            if (record.Event.RoomId != pdu.RoomId)
            {
                return Reject(rules.AuthEvents + ".5", $"auth event {record.Event.EventId} belongs to another room");
            }
        }

        foreach (var record in cited)
        {
            state[record.Event.StateMapKey] = record.Event;
        }

        return null;
    }

    // 4 onwards: the rules that read room state.
    private AuthDecision CheckStateDependent(Pdu pdu, IReadOnlyDictionary<StateKey, Pdu> state, RuleNumbers rules)
    {
        if (!state.TryGetValue(CreateKey, out var create))
        {
            return Reject(rules.AuthEvents + ".4", "the state holds no m.room.create event");
        }

        var ctx = new AuthContext(pdu, state, create);

        // 4: m.federate false keeps other servers out.
        if (create.Content["m.federate"].TryGetBool(out var federate) && !federate && ServerOf(pdu.Sender) != ServerOf(create.Sender))
        {
            return Reject(rules.Federate, "the room is not federated and the sender is on another server");
        }

        // v1–5 rule 4: m.room.aliases belongs to the server named by its state key.
        if (ctx.Version.SpecialCaseAliasesAuth && pdu.Type == EventTypes.Aliases)
        {
            if (pdu.StateKey is null)
            {
                return Reject(rules.Aliases + ".1", "m.room.aliases has no state_key");
            }

            return pdu.StateKey == ServerOf(pdu.Sender)
                ? Allow(rules.Aliases + ".3", "state_key is the sender's server")
                : Reject(rules.Aliases + ".2", "state_key is not the sender's server");
        }

        // 5
        if (pdu.Type == EventTypes.Member)
        {
            return MembershipRules.Check(ctx, _signatures);
        }

        // 6
        if (ctx.MembershipOf(pdu.Sender) != Membership.Join)
        {
            return Reject(rules.SenderJoined, "sender is not joined");
        }

        var senderLevel = ctx.Levels.GetUserLevel(pdu.Sender);

        // 7
        if (pdu.Type == EventTypes.ThirdPartyInvite)
        {
            return senderLevel >= ctx.Levels.Invite
                ? Allow(rules.ThirdPartyInvite + ".1", "sender reaches the invite level")
                : Reject(rules.ThirdPartyInvite + ".1", "sender is below the invite level");
        }

        // 8
        var required = ctx.Levels.GetRequiredLevel(pdu.Type, pdu.IsState);
        if (required > senderLevel)
        {
            return Reject(rules.RequiredLevel, $"{pdu.Type} needs level {required}; the sender has {senderLevel}");
        }

        // 9
        if (pdu.StateKey is { } stateKey && stateKey.StartsWith('@') && stateKey != pdu.Sender)
        {
            return Reject(rules.UserStateKey, "state_key is another user's ID");
        }

        // 10
        if (pdu.Type == EventTypes.PowerLevels)
        {
            return PowerLevelsRules.Check(ctx, senderLevel);
        }

        // v1–2 rule 11: redactions need the redact level or the same origin as the redacted event.
        if (ctx.Version.EventIdFormat == EventIdFormat.Opaque && pdu.Type == EventTypes.Redaction)
        {
            return CheckV1Redaction(ctx, senderLevel);
        }

        // 11
        return Allow(rules.Otherwise, "no rule rejects the event");
    }

    private static AuthDecision CheckV1Redaction(AuthContext ctx, long senderLevel)
    {
        var rules = ctx.Rules;
        if (senderLevel >= ctx.Levels.Redact)
        {
            return Allow(rules.Redaction + ".1", "sender reaches the redact level");
        }

        if (ctx.Pdu.Redacts is { } redacts && EventIdDomain(redacts) is { } domain && domain == EventIdDomain(ctx.Pdu.EventId))
        {
            return Allow(rules.Redaction + ".2", "the redacted event comes from the redaction's server");
        }

        return Reject(rules.Redaction + ".3", "sender is below the redact level and the redacted event is from another server");
    }

    private static string? EventIdDomain(string eventId)
    {
        var colon = eventId.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? null : eventId[(colon + 1)..];
    }

    private static bool IsRoomCreateEvent(Pdu pdu, Pdu create) =>
        create.Type == EventTypes.Create && create.StateKey == "" && create.EventId.Length == pdu.RoomId.Length
        && string.CompareOrdinal(create.EventId, 1, pdu.RoomId, 1, pdu.RoomId.Length) == 0;

    private static bool AreUserIds(JsonNode? node)
    {
        if (node is not JsonArray array)
        {
            return false;
        }

        foreach (var item in array)
        {
            if (!UserId.TryParse(item.AsString(), out _))
            {
                return false;
            }
        }

        return true;
    }

    private static bool Contains(IReadOnlyList<StateKey> keys, StateKey key)
    {
        for (var i = 0; i < keys.Count; i++)
        {
            if (keys[i] == key)
            {
                return true;
            }
        }

        return false;
    }
}
