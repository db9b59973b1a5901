using System.Buffers;
using System.Text.Json.Nodes;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Events;

/// <summary>The redaction algorithm: what survives of an event once it is redacted, per room version.</summary>
/// <remarks>
/// The rules live in one place (<see cref="KeptMembers"/>, <see cref="KeptContent"/>) and serve two forms: a redacted
/// copy (<see cref="Redact"/>) and the canonical bytes of the redacted event written straight from the original
/// (<see cref="WriteRedacted"/>), which is what signing and reference hashes need on every send, without a deep copy.
/// </remarks>
public static class Redaction
{
    private static readonly HashSet<string> TopLevelV1 =
    [
        "event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures", "depth",
        "prev_events", "prev_state", "auth_events", "origin", "origin_server_ts", "membership",
    ];

    private static readonly HashSet<string> TopLevelV11 =
    [
        "event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures", "depth",
        "prev_events", "auth_events", "origin_server_ts",
    ];

    private static readonly string[] PowerLevelKeys = ["ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"];
    private static readonly string[] PowerLevelKeysV11 = ["ban", "events", "events_default", "invite", "kick", "redact", "state_default", "users", "users_default"];

    /// <summary>Returns a redacted deep copy of <paramref name="ev"/>; the input is not changed.</summary>
    public static JsonObject Redact(JsonObject ev, RoomVersion version)
    {
        var result = new JsonObject();
        foreach (var kv in KeptMembers(ev, version))
        {
            result[kv.Key] = kv.Key == "content" ? kv.Value : kv.Value?.DeepClone();
        }

        return result;
    }

    /// <summary>The content that survives redaction for an event of the given type.</summary>
    public static JsonObject RedactContent(string? type, JsonObject content, RoomVersion version)
    {
        var kept = new JsonObject();
        foreach (var kv in KeptContent(type, content, version))
        {
            // Values are the original's nodes (or, for a third-party invite, a new wrapper around one): copy them.
            kept[kv.Key] = kv.Value?.DeepClone();
        }

        return kept;
    }

    /// <summary>
    /// Writes the canonical JSON of the redacted event, leaving out the top-level members named in
    /// <paramref name="omit"/>: the same bytes as encoding <see cref="Redact"/>'s result with those members removed.
    /// </summary>
    public static void WriteRedacted(IBufferWriter<byte> output, JsonObject ev, RoomVersion version, params ReadOnlySpan<string> omit)
    {
        var members = new List<KeyValuePair<string, JsonNode?>>(ev.Count);
        foreach (var kv in ev)
        {
            if (kv.Key != "content" && Keeps(version, kv.Key) && !omit.Contains(kv.Key))
            {
                members.Add(kv);
            }
        }

        // The redacted content is encoded first and spliced in as raw canonical JSON, so no node is copied or re-parented.
        var content = CanonicalJson.RentBuffer();
        try
        {
            CanonicalJson.WriteMembers(content, KeptContent(TypeOf(ev), ev["content"] as JsonObject, version));
            members.Add(new("content", null));
            CanonicalJson.WriteMembers(output, members, "content", content.WrittenSpan);
        }
        finally
        {
            CanonicalJson.ReturnBuffer(content);
        }
    }

    /// <summary>The top-level members of the redacted event, with the content redacted into a new object, last.</summary>
    private static List<KeyValuePair<string, JsonNode?>> KeptMembers(JsonObject ev, RoomVersion version)
    {
        var members = new List<KeyValuePair<string, JsonNode?>>(ev.Count);
        foreach (var kv in ev)
        {
            if (kv.Key != "content" && Keeps(version, kv.Key))
            {
                members.Add(kv);
            }
        }

        members.Add(new("content", RedactContent(TypeOf(ev), ev["content"] as JsonObject ?? [], version)));
        return members;
    }

    private static bool Keeps(RoomVersion version, string key) =>
        (version.Redaction == RedactionRules.V11 ? TopLevelV11 : TopLevelV1).Contains(key);

    private static string? TypeOf(JsonObject ev) => ev["type"] is JsonValue t && t.TryGetValue<string>(out var ts) ? ts : null;

    /// <summary>
    /// The content members that survive redaction, in the original's order. Values are the original's nodes, except a
    /// v11 third-party invite, whose <c>signed</c> part is wrapped in a new object.
    /// </summary>
    private static List<KeyValuePair<string, JsonNode?>> KeptContent(string? type, JsonObject? content, RoomVersion version)
    {
        var kept = new List<KeyValuePair<string, JsonNode?>>();
        if (content is null)
        {
            return kept;
        }

        var rules = version.Redaction;
        switch (type)
        {
            case EventTypes.Member:
                Copy(content, kept, "membership");
                if (rules >= RedactionRules.V9)
                {
                    Copy(content, kept, "join_authorised_via_users_server");
                }

                if (rules >= RedactionRules.V11 && content["third_party_invite"] is JsonObject tpi && tpi.ContainsKey("signed"))
                {
                    kept.Add(new("third_party_invite", new JsonObject { ["signed"] = tpi["signed"]?.DeepClone() }));
                }

                break;
            case EventTypes.Create:
                if (rules >= RedactionRules.V11)
                {
                    kept.AddRange(content);
                    return kept;
                }

                Copy(content, kept, "creator");
                break;
            case EventTypes.JoinRules:
                Copy(content, kept, "join_rule");
                if (rules >= RedactionRules.V9)
                {
                    Copy(content, kept, "allow");
                }

                break;
            case EventTypes.PowerLevels:
                foreach (var key in rules >= RedactionRules.V11 ? PowerLevelKeysV11 : PowerLevelKeys)
                {
                    Copy(content, kept, key);
                }

                break;
            case EventTypes.Aliases when rules == RedactionRules.V1:
                Copy(content, kept, "aliases");
                break;
            case EventTypes.HistoryVisibility:
                Copy(content, kept, "history_visibility");
                break;
            case EventTypes.Redaction when rules >= RedactionRules.V11:
                Copy(content, kept, "redacts");
                break;
        }

        return kept;
    }

    private static void Copy(JsonObject from, List<KeyValuePair<string, JsonNode?>> to, string key)
    {
        if (from.TryGetPropertyValue(key, out var value))
        {
            to.Add(new(key, value));
        }
    }
}
