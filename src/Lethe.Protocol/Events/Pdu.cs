using System.Text;
using System.Text.Json.Nodes;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Events;

/// <summary>A room event in federation format (a persistent data unit), validated for its room version. Treat the JSON as immutable.</summary>
/// <remarks>
/// A PDU read back from storage, or compacted for a cache, keeps its content, the fields read often and its canonical
/// bytes, but not the whole JSON tree: a parsed event takes several times its encoded size, and a cache of thousands
/// of events was most of the server's heap. <see cref="Json"/> re-reads such an event's tree from its bytes.
/// </remarks>
public sealed class Pdu
{
    /// <summary>Largest event allowed, in bytes of canonical JSON including signatures.</summary>
    public const int MaxEventBytes = 65536;

    /// <summary>Most <c>prev_events</c> an event may cite.</summary>
    public const int MaxPrevEvents = 20;

    /// <summary>Most <c>auth_events</c> an event may cite.</summary>
    public const int MaxAuthEvents = 10;

    /// <summary>The whole event, when this PDU keeps it; null for a compact one (see the remarks).</summary>
    private readonly JsonObject? _json;

    /// <summary>The canonical encoding of the event when known (always, for a compact PDU); null: encode on demand.</summary>
    private readonly byte[]? _canonical;

    /// <summary>Wraps a parsed event. Unless <paramref name="keepTree"/>, the tree is the caller's to give away: its content is detached and kept, the rest dropped.</summary>
    private Pdu(JsonObject json, RoomVersion version, string eventId, string roomId, byte[]? canonical, bool keepTree)
    {
        _canonical = canonical;
        _json = keepTree ? json : null;
        RoomVersion = version;
        EventId = eventId;
        RoomId = roomId;
        Type = GetString(json, "type")!;
        Sender = GetString(json, "sender")!;
        StateKey = json.ContainsKey("state_key") ? GetString(json, "state_key") : null;
        Content = (JsonObject)json["content"]!;
        OriginServerTs = json.GetInt64("origin_server_ts")!.Value;
        Depth = json.GetInt64("depth")!.Value;
        PrevEvents = ReadEventRefs(json["prev_events"] as JsonArray, version);
        AuthEvents = ReadEventRefs(json["auth_events"] as JsonArray, version);
        Redacts = version.RedactsInContent ? GetString(Content, "redacts") : GetString(json, "redacts");
        if (!keepTree)
        {
            // Otherwise the content's parent link would keep the whole tree alive.
            json.Remove("content");
        }
    }

    /// <summary>A compact copy of <paramref name="full"/>: the same fields and bytes, a copy of its content, no tree.</summary>
    private Pdu(Pdu full)
    {
        _canonical = full.ToCanonicalBytes();
        RoomVersion = full.RoomVersion;
        EventId = full.EventId;
        RoomId = full.RoomId;
        Type = full.Type;
        Sender = full.Sender;
        StateKey = full.StateKey;
        Content = (JsonObject)full.Content.DeepClone();
        OriginServerTs = full.OriginServerTs;
        Depth = full.Depth;
        PrevEvents = full.PrevEvents;
        AuthEvents = full.AuthEvents;
        Redacts = full.Redacts;
    }

    /// <summary>
    /// The whole event as it travels over federation (no <c>event_id</c> from room version 3 on). For a compact PDU
    /// this is parsed anew from its bytes on each access: keep the result when it is needed more than once.
    /// </summary>
    public JsonObject Json => _json ?? CanonicalJson.ParseObject(_canonical!);

    /// <summary>The room version whose rules this event follows.</summary>
    public RoomVersion RoomVersion { get; }

    /// <summary>The event ID.</summary>
    public string EventId { get; }

    /// <summary>The room ID (for a v12 create event, the one derived from its own ID).</summary>
    public string RoomId { get; }

    /// <summary>The event type.</summary>
    public string Type { get; }

    /// <summary>The sending user.</summary>
    public string Sender { get; }

    /// <summary>The state key, or null for a non-state event.</summary>
    public string? StateKey { get; }

    /// <summary>True when the event is a state event.</summary>
    public bool IsState => StateKey is not null;

    /// <summary>The event content.</summary>
    public JsonObject Content { get; }

    /// <summary>The sending server's timestamp in milliseconds since the epoch.</summary>
    public long OriginServerTs { get; }

    /// <summary>The event's depth in the room DAG.</summary>
    public long Depth { get; }

    /// <summary>IDs of the events this one follows.</summary>
    public IReadOnlyList<string> PrevEvents { get; }

    /// <summary>IDs of the events that authorise this one.</summary>
    public IReadOnlyList<string> AuthEvents { get; }

    /// <summary>For redactions, the ID of the redacted event.</summary>
    public string? Redacts { get; }

    /// <summary>The <c>membership</c> of an <c>m.room.member</c> event, otherwise null.</summary>
    public string? Membership => Type == EventTypes.Member ? GetString(Content, "membership") : null;

    /// <summary>The state map key of a state event.</summary>
    public StateKey StateMapKey => new(Type, StateKey ?? throw new InvalidOperationException("Not a state event"));

    /// <summary>Validates and wraps an event received or built in federation format.</summary>
    /// <exception cref="EventFormatException">The event is malformed for its room version; the message names the field.</exception>
    public static Pdu FromJson(JsonObject json, RoomVersion version) => FromJson(json, version, referenceHash: null);

    /// <summary>
    /// As <see cref="FromJson(JsonObject, RoomVersion)"/> for an event this server has just signed, taking the
    /// reference hash <see cref="EventHashing.HashAndSign"/> returned for exactly this JSON instead of encoding the
    /// redacted event once more.
    /// </summary>
    /// <exception cref="EventFormatException">The event is malformed for its room version; the message names the field.</exception>
    public static Pdu FromJson(JsonObject json, RoomVersion version, byte[]? referenceHash)
    {
        RequireString(json, "type", 255);
        var sender = RequireString(json, "sender", 255);
        if (!UserId.TryParse(sender, out _))
        {
            throw new EventFormatException("sender is not a valid user ID");
        }

        if (json.ContainsKey("state_key"))
        {
            RequireString(json, "state_key", 255);
        }

        if (json["content"] is not JsonObject)
        {
            throw new EventFormatException("content must be an object");
        }

        RequireInteger(json, "origin_server_ts");
        var depth = RequireInteger(json, "depth");
        if (depth < 0)
        {
            throw new EventFormatException("depth must not be negative");
        }

        CheckEventRefs(json, "prev_events", version, MaxPrevEvents);
        CheckEventRefs(json, "auth_events", version, MaxAuthEvents);
        if (json["hashes"] is not JsonObject hashes || hashes["sha256"] is not JsonValue)
        {
            throw new EventFormatException("hashes.sha256 is required");
        }

        if (json["signatures"] is not JsonObject)
        {
            throw new EventFormatException("signatures must be an object");
        }

        byte[] canonical;
        try
        {
            canonical = CanonicalJson.Encode(json);
        }
        catch (CanonicalJsonException e)
        {
            throw new EventFormatException(e.Message);
        }

        if (canonical.Length > MaxEventBytes)
        {
            throw new EventFormatException($"event is {canonical.Length} bytes; the limit is {MaxEventBytes}");
        }

        var type = GetString(json, "type");
        string eventId = referenceHash is null ? EventHashing.ComputeEventId(json, version) : EventHashing.EventIdFromReferenceHash(json, version, referenceHash);
        if (!Identifiers.EventId.TryParse(eventId, out _))
        {
            throw new EventFormatException("event_id is not a valid event ID");
        }

        string roomId;
        if (version.RoomIdIsCreateEventHash && type == EventTypes.Create && json["state_key"] is JsonValue)
        {
            if (json.ContainsKey("room_id"))
            {
                throw new EventFormatException("a create event has no room_id in this room version");
            }

            roomId = "!" + eventId[1..];
        }
        else
        {
            roomId = RequireString(json, "room_id", 255);
            if (!Identifiers.RoomId.TryParse(roomId, out var parsed))
            {
                throw new EventFormatException("room_id is not a valid room ID");
            }

            if (version.RoomIdIsCreateEventHash == (parsed.Server is not null))
            {
                throw new EventFormatException("room_id has the wrong form for this room version");
            }
        }

        if (version.RedactsInContent && type == EventTypes.Redaction && GetString((JsonObject)json["content"]!, "redacts") is null && json["content"]!["redacts"] is not null)
        {
            throw new EventFormatException("content.redacts must be a string");
        }

        // The canonical bytes are kept: they are what the write path stores, so the event is encoded in full only once.
        return new Pdu(json, version, eventId, roomId, canonical, keepTree: true);
    }

    /// <summary>
    /// A compact PDU for the canonical bytes of an event this server validated before it stored it (or of the
    /// redacted form of one), under its known ID: no format checks, no encoding, no hashing. Reading events back is
    /// far more frequent than storing them, and repeating the checks would find nothing new: the stored bytes are
    /// the ones that passed them. The array is kept (as <see cref="ToCanonicalBytes"/>); do not modify it.
    /// </summary>
    /// <exception cref="CanonicalJsonException">The bytes are not a JSON object.</exception>
    public static Pdu FromStoredBytes(byte[] canonical, RoomVersion version, string eventId)
    {
        var json = CanonicalJson.ParseObject(canonical);
        var roomId = version.RoomIdIsCreateEventHash && GetString(json, "type") == EventTypes.Create && json["state_key"] is JsonValue
            ? "!" + eventId[1..]
            : GetString(json, "room_id") ?? throw new EventFormatException("room_id must be a string");
        return new Pdu(json, version, eventId, roomId, canonical, keepTree: false);
    }

    /// <summary>This event in the compact form caches keep (see the remarks on <see cref="Pdu"/>); itself when already compact.</summary>
    public Pdu Compact() => _json is null ? this : new Pdu(this);

    /// <summary>The event in the client-server format: federation-only fields removed, <c>event_id</c> present.</summary>
    public JsonObject ToClientFormat()
    {
        var obj = new JsonObject
        {
            ["content"] = Content.DeepClone(),
            ["event_id"] = EventId,
            ["origin_server_ts"] = OriginServerTs,
            ["room_id"] = RoomId,
            ["sender"] = Sender,
            ["type"] = Type,
        };
        if (StateKey is not null)
        {
            obj["state_key"] = StateKey;
        }

        if (Redacts is not null)
        {
            obj["redacts"] = Redacts;
        }

        return obj;
    }

    /// <summary>Canonical JSON bytes of the federation form: what is stored and sent. The array may be shared: do not modify it.</summary>
    public byte[] ToCanonicalBytes() => _canonical ?? CanonicalJson.Encode(Json);

    /// <inheritdoc />
    public override string ToString() => $"{EventId} ({Type}{(StateKey is null ? "" : ", " + StateKey)})";

    private static string? GetString(JsonObject obj, string key) => obj.GetString(key);

    private static string RequireString(JsonObject json, string key, int maxBytes)
    {
        var s = GetString(json, key) ?? throw new EventFormatException($"{key} must be a string");
        if (Encoding.UTF8.GetByteCount(s) > maxBytes)
        {
            throw new EventFormatException($"{key} is longer than {maxBytes} bytes");
        }

        return s;
    }

    private static long RequireInteger(JsonObject json, string key)
    {
        return json[key].TryGetInt64(out var l) ? l : throw new EventFormatException($"{key} must be an integer");
    }

    private static void CheckEventRefs(JsonObject json, string key, RoomVersion version, int max)
    {
        if (json[key] is not JsonArray arr)
        {
            throw new EventFormatException($"{key} must be an array");
        }

        if (arr.Count > max)
        {
            throw new EventFormatException($"{key} has more than {max} entries");
        }

        foreach (var item in arr)
        {
            var id = version.EventIdFormat == EventIdFormat.Opaque
                ? item is JsonArray pair && pair.Count == 2 ? pair[0].AsString() : null
                : item.AsString();
            if (id is null || !Identifiers.EventId.TryParse(id, out _))
            {
                throw new EventFormatException($"{key} holds an entry that is not an event reference");
            }
        }
    }

    private static string[] ReadEventRefs(JsonArray? arr, RoomVersion version)
    {
        if (arr is null)
        {
            return [];
        }

        var ids = new string[arr.Count];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = version.EventIdFormat == EventIdFormat.Opaque
                ? ((JsonArray)arr[i]!)[0].AsString()!
                : arr[i].AsString()!;
        }

        return ids;
    }
}

/// <summary>A key in a room's state map: event type and state key.</summary>
public readonly record struct StateKey(string Type, string Key)
{
    /// <inheritdoc />
    public override string ToString() => $"({Type}, {Key})";
}
