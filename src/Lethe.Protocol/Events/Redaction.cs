using System.Text.Json.Nodes;

namespace Lethe.Protocol.Events;

/// <summary>The redaction algorithm: what survives of an event once it is redacted, per room version.</summary>
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
        var keep = version.Redaction == RedactionRules.V11 ? TopLevelV11 : TopLevelV1;
        var result = new JsonObject();
        foreach (var kv in ev)
        {
            if (keep.Contains(kv.Key) && kv.Key != "content")
            {
                result[kv.Key] = kv.Value?.DeepClone();
            }
        }

        var type = ev["type"] is JsonValue t && t.TryGetValue<string>(out var ts) ? ts : null;
        var content = ev["content"] as JsonObject;
        result["content"] = content is null ? new JsonObject() : RedactContent(type, content, version);
        return result;
    }

    /// <summary>The content that survives redaction for an event of the given type.</summary>
    public static JsonObject RedactContent(string? type, JsonObject content, RoomVersion version)
    {
        var rules = version.Redaction;
        var kept = new JsonObject();
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
                    kept["third_party_invite"] = new JsonObject { ["signed"] = tpi["signed"]?.DeepClone() };
                }

                break;
            case EventTypes.Create:
                if (rules >= RedactionRules.V11)
                {
                    return (JsonObject)content.DeepClone();
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

    private static void Copy(JsonObject from, JsonObject to, string key)
    {
        if (from.TryGetPropertyValue(key, out var value))
        {
            to[key] = value?.DeepClone();
        }
    }
}
