using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Events;

namespace Lethe.Protocol.Tests.Auth;

/// <summary>Users the auth and state tests share. Alice and Bob live on example.com, the others elsewhere.</summary>
internal static class Users
{
    public const string Alice = "@alice:example.com";
    public const string Bob = "@bob:example.com";
    public const string Charlie = "@charlie:other.org";
    public const string Dave = "@dave:other.org";
    public const string Eve = "@eve:evil.net";
    public const string Zara = "@zara:example.com";
}

/// <summary>Builds validly hashed and signed PDUs for any room version, signing with one key per server.</summary>
internal static class EventFactory
{
    private static readonly ConcurrentDictionary<string, SigningKey> Keys = new(StringComparer.Ordinal);
    private static long _counter;
    private static long _clock = 1_700_000_000_000;

    /// <summary>The signing key of a server.</summary>
    public static SigningKey KeyOf(string server) => Keys.GetOrAdd(server, _ => SigningKey.Generate());

    /// <summary>The server part of a user ID.</summary>
    public static string ServerOf(string userId) => userId[(userId.IndexOf(':', StringComparison.Ordinal) + 1)..];

    /// <summary>A fresh timestamp, later than any handed out before.</summary>
    public static long NextTimestamp() => Interlocked.Increment(ref _clock);

    /// <summary>Builds a PDU; signs it as the sender's server and any <paramref name="alsoSignedBy"/> servers.</summary>
    public static Pdu Build(
        RoomVersion version,
        string? roomId,
        string sender,
        string type,
        string? stateKey,
        JsonObject content,
        IEnumerable<string> prevEvents,
        IEnumerable<string> authEvents,
        long depth,
        long? originServerTs = null,
        string? eventId = null,
        string? redacts = null,
        IEnumerable<string>? alsoSignedBy = null)
    {
        // Callers reuse content objects; a node can only have one parent.
        content = (JsonObject)content.DeepClone();
        var json = new JsonObject
        {
            ["sender"] = sender,
            ["type"] = type,
            ["content"] = content,
            ["origin_server_ts"] = originServerTs ?? NextTimestamp(),
            ["depth"] = depth,
            ["prev_events"] = Refs(prevEvents, version),
            ["auth_events"] = Refs(authEvents, version),
        };
        if (roomId is not null)
        {
            json["room_id"] = roomId;
        }

        if (stateKey is not null)
        {
            json["state_key"] = stateKey;
        }

        if (version.EventIdFormat == EventIdFormat.Opaque)
        {
            json["event_id"] = eventId ?? $"${Interlocked.Increment(ref _counter)}:{ServerOf(sender)}";
        }

        if (redacts is not null)
        {
            if (version.RedactsInContent)
            {
                content["redacts"] = redacts;
            }
            else
            {
                json["redacts"] = redacts;
            }
        }

        var server = ServerOf(sender);
        EventHashing.HashAndSign(json, version, server, KeyOf(server));
        foreach (var other in alsoSignedBy ?? [])
        {
            EventHashing.HashAndSign(json, version, other, KeyOf(other));
        }

        return Pdu.FromJson(json, version);
    }

    private static JsonArray Refs(IEnumerable<string> ids, RoomVersion version)
    {
        var arr = new JsonArray();
        foreach (var id in ids)
        {
            arr.Add(version.EventIdFormat == EventIdFormat.Opaque
                ? new JsonArray(id, new JsonObject { ["sha256"] = "AAAA" })
                : JsonValue.Create(id));
        }

        return arr;
    }
}

/// <summary>A linear room under construction: each new event follows the last one and cites auth events selected from the current state.</summary>
internal sealed class TestRoom
{
    private Pdu _last;

    /// <summary>Creates a room with just its create event, sent by <paramref name="creator"/>.</summary>
    public TestRoom(RoomVersion version, string creator = Users.Alice, JsonObject? createContent = null)
    {
        Version = version;
        createContent ??= [];
        if (!version.ImplicitCreator && !createContent.ContainsKey("creator"))
        {
            createContent["creator"] = creator;
        }

        createContent["room_version"] ??= version.Identifier;
        var roomId = version.RoomIdIsCreateEventHash ? null : $"!room{NextRoom()}:{EventFactory.ServerOf(creator)}";
        Create = EventFactory.Build(version, roomId, creator, EventTypes.Create, "", createContent, [], [], 1);
        RoomId = Create.RoomId;
        _last = Create;
        State[Create.StateMapKey] = Create;
    }

    private static int _rooms;

    /// <summary>The room version.</summary>
    public RoomVersion Version { get; }

    /// <summary>The create event.</summary>
    public Pdu Create { get; }

    /// <summary>The room ID.</summary>
    public string RoomId { get; }

    /// <summary>The current state.</summary>
    public Dictionary<StateKey, Pdu> State { get; } = [];

    /// <summary>Every event built so far, rejected or not.</summary>
    public List<Pdu> Events { get; } = [];

    /// <summary>The usual start: create, creator joins, power levels, public join rules.</summary>
    public static TestRoom Standard(RoomVersion version, string creator = Users.Alice, JsonObject? powerLevels = null, JsonObject? createContent = null)
    {
        var room = new TestRoom(version, creator, createContent);
        room.Add(creator, EventTypes.Member, creator, Member(Membership.Join));
        room.Add(creator, EventTypes.PowerLevels, "", powerLevels ?? room.DefaultPowerLevels(creator));
        room.Add(creator, EventTypes.JoinRules, "", new JsonObject { ["join_rule"] = JoinRule.Public });
        return room;
    }

    /// <summary>Power levels naming the creator at 100, except in v12 where creators may not be listed.</summary>
    public JsonObject DefaultPowerLevels(string creator) =>
        Version.PrivilegedCreators ? new JsonObject { ["users"] = new JsonObject() } : new JsonObject { ["users"] = new JsonObject { [creator] = 100 } };

    /// <summary>Member event content with a membership.</summary>
    public static JsonObject Member(string membership) => new() { ["membership"] = membership };

    /// <summary>Builds the next event (not yet applied): prev is the last event, auth events come from the current state.</summary>
    public Pdu Build(string sender, string type, string? stateKey, JsonObject content, IEnumerable<string>? authEvents = null, IEnumerable<string>? prevEvents = null, string? redacts = null, IEnumerable<string>? alsoSignedBy = null, string? eventId = null)
    {
        var selected = new List<string>();
        if (authEvents is null)
        {
            foreach (var key in AuthEventSelection.Select(Version, type, sender, stateKey, content))
            {
                if (State.TryGetValue(key, out var e))
                {
                    selected.Add(e.EventId);
                }
            }
        }

        return EventFactory.Build(Version, RoomId, sender, type, stateKey, content, prevEvents ?? [_last.EventId], authEvents ?? selected, _last.Depth + 1, redacts: redacts, alsoSignedBy: alsoSignedBy, eventId: eventId);
    }

    /// <summary>Builds the next event, asserts the auth rules allow it against the current state, and applies it.</summary>
    public Pdu Add(string sender, string type, string? stateKey, JsonObject content, IEnumerable<string>? alsoSignedBy = null)
    {
        var pdu = Build(sender, type, stateKey, content, alsoSignedBy: alsoSignedBy);
        var decision = Check(pdu);
        Assert.True(decision.IsAllowed, $"test setup: {pdu} should be allowed but was {decision}");
        return Apply(pdu);
    }

    /// <summary>Makes <paramref name="pdu"/> the latest event and, if it is a state event, part of the state.</summary>
    public Pdu Apply(Pdu pdu)
    {
        Events.Add(pdu);
        _last = pdu;
        if (pdu.IsState)
        {
            State[pdu.StateMapKey] = pdu;
        }

        return pdu;
    }

    /// <summary>Checks <paramref name="pdu"/> against the current state with the default authorizer.</summary>
    public AuthDecision Check(Pdu pdu) => EventAuthorizer.Default.CheckWithState(pdu, State);

    /// <summary>Checks <paramref name="pdu"/> against its own auth events, all taken as accepted.</summary>
    public AuthDecision CheckWithAuthEvents(Pdu pdu)
    {
        var all = new Dictionary<string, Pdu>(StringComparer.Ordinal);
        foreach (var e in Events)
        {
            all[e.EventId] = e;
        }

        all[Create.EventId] = Create;
        var records = new List<EventRecord>();
        foreach (var id in pdu.AuthEvents)
        {
            if (all.TryGetValue(id, out var e))
            {
                records.Add(new EventRecord(e));
            }
        }

        return EventAuthorizer.Default.CheckWithAuthEvents(pdu, records, new EventRecord(Create));
    }

    /// <summary>Joins <paramref name="user"/> (the room must let them).</summary>
    public Pdu Join(string user) => Add(user, EventTypes.Member, user, Member(Membership.Join));

    /// <summary>Sets the membership of <paramref name="target"/> as <paramref name="sender"/>.</summary>
    public Pdu SetMembership(string sender, string target, string membership) => Add(sender, EventTypes.Member, target, Member(membership));

    /// <summary>Replaces the power levels as <paramref name="sender"/>.</summary>
    public Pdu SetPowerLevels(string sender, JsonObject content) => Add(sender, EventTypes.PowerLevels, "", content);

    /// <summary>Replaces the join rule as <paramref name="sender"/>.</summary>
    public Pdu SetJoinRule(string sender, string rule) => Add(sender, EventTypes.JoinRules, "", new JsonObject { ["join_rule"] = rule });

    private static int NextRoom() => Interlocked.Increment(ref _rooms);
}

/// <summary>Assertions on auth decisions that show the whole decision when they fail.</summary>
internal static class Expect
{
    public static void Allowed(AuthDecision decision, string rule) =>
        Assert.True(decision.IsAllowed && decision.Rule == rule, $"expected allowed by rule {rule}, got {decision}");

    public static void Rejected(AuthDecision decision, string rule) =>
        Assert.True(decision.IsRejected && decision.Rule == rule, $"expected rejected by rule {rule}, got {decision}");

    public static RoomVersion Version(int n) =>
        RoomVersion.TryGet(n.ToString(System.Globalization.CultureInfo.InvariantCulture), out var v) ? v : throw new ArgumentOutOfRangeException(nameof(n));
}
