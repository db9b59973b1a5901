using System.Text.Json.Nodes;

namespace Lethe.Homeserver.Push;

/// <summary>
/// The server-default push rules, in priority order within each kind, as in the spec (v1.10 and later) plus the legacy
/// body-matching rules (<c>.m.rule.contains_display_name</c>, <c>.m.rule.contains_user_name</c>, <c>.m.rule.roomnotif</c>)
/// that clients still expect and that stand aside when an event carries <c>m.mentions</c>.
/// </summary>
public static class DefaultPushRules
{
    /// <summary>Stands for the user's own Matrix ID in rule definitions.</summary>
    public const string UserIdPlaceholder = "[the user's Matrix ID]";

    /// <summary>Stands for the user's localpart in rule definitions.</summary>
    public const string LocalpartPlaceholder = "[the local part of the user's Matrix ID]";

    /// <summary>The rules with their kind, definition JSON (with placeholders) and compiled form.</summary>
    public static IReadOnlyList<DefaultRule> All { get; } = Build();

    /// <summary>How many there are.</summary>
    public static int Count => All.Count;

    /// <summary>The rule with that ID, or null.</summary>
    public static DefaultRule? Find(string ruleId)
    {
        foreach (var r in All)
        {
            if (r.RuleId == ruleId)
            {
                return r;
            }
        }

        return null;
    }

    /// <summary>Rule IDs whose conditions read the body the pre-m.mentions way.</summary>
    public static bool IsLegacyMentionRule(string ruleId) => ruleId is ".m.rule.contains_display_name" or ".m.rule.contains_user_name" or ".m.rule.roomnotif";

    private static List<DefaultRule> Build()
    {
        var list = new List<DefaultRule>();
        // Arrays of nodes, not JsonArray collection expressions: those call JsonArray.Add<T>, which the native build lacks.
        void Add(string kind, string id, JsonNode?[] conditions, JsonNode?[] actions, bool enabled = true, string? pattern = null) =>
            list.Add(new DefaultRule(list.Count, kind, id, new JsonArray(conditions), new JsonArray(actions), enabled, pattern));
        static JsonObject Match(string key, string pattern) => new() { ["kind"] = "event_match", ["key"] = key, ["pattern"] = pattern };
        static JsonObject Sound(string value) => new() { ["set_tweak"] = "sound", ["value"] = value };
        static JsonObject Highlight() => new() { ["set_tweak"] = "highlight" };
        static JsonObject HighlightFalse() => new() { ["set_tweak"] = "highlight", ["value"] = false };

        Add("override", ".m.rule.master", [], [], enabled: false);
        Add("override", ".m.rule.suppress_notices", [Match("content.msgtype", "m.notice")], []);
        Add("override", ".m.rule.invite_for_me",
            [Match("type", "m.room.member"), Match("content.membership", "invite"), Match("state_key", UserIdPlaceholder)],
            ["notify", Sound("default"), HighlightFalse()]);
        Add("override", ".m.rule.member_event", [Match("type", "m.room.member")], []);
        Add("override", ".m.rule.is_user_mention",
            [new JsonObject { ["kind"] = "event_property_contains", ["key"] = @"content.m\.mentions.user_ids", ["value"] = UserIdPlaceholder }],
            ["notify", Sound("default"), Highlight()]);
        Add("override", ".m.rule.contains_display_name", [new JsonObject { ["kind"] = "contains_display_name" }], ["notify", Sound("default"), Highlight()]);
        Add("override", ".m.rule.is_room_mention",
            [new JsonObject { ["kind"] = "event_property_is", ["key"] = @"content.m\.mentions.room", ["value"] = true },
             new JsonObject { ["kind"] = "sender_notification_permission", ["key"] = "room" }],
            ["notify", Highlight()]);
        Add("override", ".m.rule.roomnotif",
            [new JsonObject { ["kind"] = "sender_notification_permission", ["key"] = "room" }, Match("content.body", "@room")],
            ["notify", Highlight()]);
        Add("override", ".m.rule.tombstone", [Match("type", "m.room.tombstone"), Match("state_key", "")], ["notify", Highlight()]);
        Add("override", ".m.rule.reaction", [Match("type", "m.reaction")], []);
        Add("override", ".m.rule.room.server_acl", [Match("type", "m.room.server_acl"), Match("state_key", "")], []);
        Add("override", ".m.rule.suppress_edits",
            [new JsonObject { ["kind"] = "event_property_is", ["key"] = @"content.m\.relates_to.rel_type", ["value"] = "m.replace" }], []);
        Add("content", ".m.rule.contains_user_name", [], ["notify", Sound("default"), Highlight()], pattern: LocalpartPlaceholder);
        Add("underride", ".m.rule.call", [Match("type", "m.call.invite")], ["notify", Sound("ring"), HighlightFalse()]);
        Add("underride", ".m.rule.encrypted_room_one_to_one",
            [new JsonObject { ["kind"] = "room_member_count", ["is"] = "2" }, Match("type", "m.room.encrypted")],
            ["notify", Sound("default"), HighlightFalse()]);
        Add("underride", ".m.rule.room_one_to_one",
            [new JsonObject { ["kind"] = "room_member_count", ["is"] = "2" }, Match("type", "m.room.message")],
            ["notify", Sound("default"), HighlightFalse()]);
        Add("underride", ".m.rule.message", [Match("type", "m.room.message")], ["notify", HighlightFalse()]);
        Add("underride", ".m.rule.encrypted", [Match("type", "m.room.encrypted")], ["notify", HighlightFalse()]);
        return list;
    }
}

/// <summary>A server-default rule: its place among the defaults, kind, definition and compiled conditions.</summary>
public sealed class DefaultRule
{
    internal DefaultRule(int index, string kind, string ruleId, JsonArray conditions, JsonArray actions, bool enabled, string? pattern)
    {
        Index = index;
        Kind = kind;
        RuleId = ruleId;
        Conditions = conditions;
        Actions = actions;
        Enabled = enabled;
        Pattern = pattern;
        var independent = new List<PushCondition>();
        var dependent = new List<PushCondition>();
        if (pattern == DefaultPushRules.LocalpartPlaceholder)
        {
            dependent.Add(new PushCondition.BodyContainsLocalpart());
        }

        foreach (var c in conditions)
        {
            var o = (JsonObject)c!;
            PushCondition compiled = o["kind"]!.GetValue<string>() switch
            {
                "event_match" when o["pattern"]!.GetValue<string>() == DefaultPushRules.UserIdPlaceholder => new PushCondition.PropertyIsUserId(o["key"]!.GetValue<string>()),
                "event_property_contains" when o["value"] is JsonValue uv && uv.TryGetValue<string>(out var us) && us == DefaultPushRules.UserIdPlaceholder => new PushCondition.MentionsUser(),
                _ => PushCondition.Compile(o, "", ""),
            };
            (compiled.UserDependent ? dependent : independent).Add(compiled);
        }

        Independent = [.. independent];
        Dependent = [.. dependent];
        Legacy = DefaultPushRules.IsLegacyMentionRule(ruleId);
    }

    /// <summary>Position among the defaults (the memo slot).</summary>
    public int Index { get; }

    /// <summary>override, content or underride.</summary>
    public string Kind { get; }

    /// <summary>The rule ID (starts with a dot).</summary>
    public string RuleId { get; }

    /// <summary>Conditions as in the spec, with placeholders.</summary>
    public JsonArray Conditions { get; }

    /// <summary>Default actions.</summary>
    public JsonArray Actions { get; }

    /// <summary>Enabled by default.</summary>
    public bool Enabled { get; }

    /// <summary>Content rules' pattern (with placeholder).</summary>
    public string? Pattern { get; }

    /// <summary>Conditions whose outcome is the same for every user.</summary>
    public PushCondition[] Independent { get; }

    /// <summary>Conditions that depend on the user.</summary>
    public PushCondition[] Dependent { get; }

    /// <summary>A legacy body-matching mention rule, skipped for events with <c>m.mentions</c>.</summary>
    public bool Legacy { get; }

    /// <summary>The definition for one user (placeholders replaced), as clients see it.</summary>
    public JsonObject ToJson(string userId, string localpart, bool enabled, JsonArray actions)
    {
        var rule = new JsonObject { ["rule_id"] = RuleId, ["default"] = true, ["enabled"] = enabled, ["actions"] = actions.DeepClone() };
        if (Kind is "override" or "underride")
        {
            var conditions = (JsonArray)Conditions.DeepClone();
            foreach (var c in conditions)
            {
                var o = (JsonObject)c!;
                if (o["pattern"]?.GetValue<string>() == DefaultPushRules.UserIdPlaceholder)
                {
                    o["pattern"] = userId;
                }

                if (o["value"] is JsonValue v && v.TryGetValue<string>(out var s) && s == DefaultPushRules.UserIdPlaceholder)
                {
                    o["value"] = userId;
                }
            }

            rule["conditions"] = conditions;
        }

        if (Pattern is not null)
        {
            rule["pattern"] = Pattern == DefaultPushRules.LocalpartPlaceholder ? localpart : Pattern;
        }

        return rule;
    }
}
