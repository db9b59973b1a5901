using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Identifiers;

namespace Lethe.Homeserver.Push;

/// <summary>
/// One user's push rules: their own rules per kind (most important first) and their changes to server-default rules
/// (enabled, actions). Stored as the materialised <c>m.push_rules</c> account data the client sees; read back by
/// keeping only what the user changed, so a newer server's default rules apply to everyone.
/// </summary>
public sealed class PushRuleSet
{
    /// <summary>Rule kinds in evaluation order.</summary>
    public static readonly string[] Kinds = ["override", "content", "room", "sender", "underride"];

    private readonly Dictionary<string, List<JsonObject>> _custom = Kinds.ToDictionary(k => k, _ => new List<JsonObject>(), StringComparer.Ordinal);
    private readonly Dictionary<string, (bool Enabled, JsonArray Actions)> _defaults = new(StringComparer.Ordinal);

    private PushRuleSet(string userId)
    {
        UserId = userId;
        Localpart = Lethe.Protocol.Identifiers.UserId.TryParse(userId, out var parsed) ? parsed.Localpart : userId.TrimStart('@').Split(':')[0];
    }

    /// <summary>Whose rules.</summary>
    public string UserId { get; }

    /// <summary>The user's localpart.</summary>
    public string Localpart { get; }

    /// <summary>True when nothing differs from the server defaults.</summary>
    public bool IsDefault => _defaults.Count == 0 && _custom.Values.All(l => l.Count == 0);

    /// <summary>The server defaults alone.</summary>
    public static PushRuleSet Defaults(string userId) => new(userId);

    /// <summary>Reads stored <c>m.push_rules</c> content; anything unreadable falls back to the defaults.</summary>
    public static PushRuleSet FromStored(string userId, JsonObject? stored)
    {
        var set = new PushRuleSet(userId);
        if (stored?["global"] is not JsonObject global)
        {
            return set;
        }

        foreach (var kind in Kinds)
        {
            if (global[kind] is not JsonArray rules)
            {
                continue;
            }

            foreach (var r in rules)
            {
                if (r is not JsonObject rule || rule["rule_id"] is not JsonValue idValue || !idValue.TryGetValue<string>(out var ruleId))
                {
                    continue;
                }

                var enabled = rule["enabled"] is not JsonValue ev || !ev.TryGetValue<bool>(out var e) || e;
                var actions = rule["actions"] as JsonArray ?? [];
                if (ruleId.StartsWith('.'))
                {
                    if (DefaultPushRules.Find(ruleId) is { } d && d.Kind == kind && (enabled != d.Enabled || actions.ToJsonString() != d.Actions.ToJsonString()))
                    {
                        set._defaults[ruleId] = (enabled, (JsonArray)actions.DeepClone());
                    }
                }
                else
                {
                    try
                    {
                        set._custom[kind].Add(Normalise(kind, ruleId, rule, enabled));
                    }
                    catch (MatrixException)
                    {
                        // A rule that would be refused today is dropped rather than breaking every evaluation.
                    }
                }
            }
        }

        return set;
    }

    /// <summary>The full ruleset as clients see it: <c>{"global": {...}}</c>.</summary>
    public JsonObject ToAccountData() => new() { ["global"] = Global() };

    /// <summary>The global ruleset: master first, then user rules before server defaults in each kind.</summary>
    public JsonObject Global()
    {
        var global = new JsonObject();
        foreach (var kind in Kinds)
        {
            var array = new JsonArray();
            foreach (var rule in Ordered(kind))
            {
                array.Add((JsonNode)rule);
            }

            global[kind] = array;
        }

        return global;
    }

    /// <summary>The rules of one kind in priority order, as JSON.</summary>
    public IEnumerable<JsonObject> Ordered(string kind)
    {
        if (kind == "override" && DefaultJson(".m.rule.master") is { } master)
        {
            yield return master;
        }

        foreach (var rule in _custom[kind])
        {
            yield return (JsonObject)rule.DeepClone();
        }

        foreach (var d in DefaultPushRules.All)
        {
            if (d.Kind == kind && d.RuleId != ".m.rule.master")
            {
                yield return DefaultJson(d.RuleId)!;
            }
        }
    }

    private JsonObject? DefaultJson(string ruleId)
    {
        var d = DefaultPushRules.Find(ruleId)!;
        var (enabled, actions) = _defaults.TryGetValue(ruleId, out var changed) ? changed : (d.Enabled, d.Actions);
        return d.ToJson(UserId, Localpart, enabled, actions);
    }

    /// <summary>One rule as JSON, or null when there is none of that kind and ID.</summary>
    public JsonObject? Get(string kind, string ruleId)
    {
        if (ruleId.StartsWith('.'))
        {
            return DefaultPushRules.Find(ruleId) is { } d && d.Kind == kind ? DefaultJson(ruleId) : null;
        }

        return _custom[kind].Find(r => r["rule_id"]!.GetValue<string>() == ruleId)?.DeepClone() as JsonObject;
    }

    /// <summary>Adds or replaces a user rule (body already checked by <see cref="Normalise"/>), placed before/after another user rule of the kind.</summary>
    public void Put(string kind, string ruleId, JsonObject rule, string? before, string? after)
    {
        var list = _custom[kind];
        var existing = list.FindIndex(r => r["rule_id"]!.GetValue<string>() == ruleId);
        if (existing >= 0)
        {
            // An update keeps the rule's enabled state; position changes only when asked.
            rule["enabled"] = list[existing]["enabled"]!.DeepClone();
            if (before is null && after is null)
            {
                list[existing] = rule;
                return;
            }

            list.RemoveAt(existing);
        }

        int Position(string id, string which)
        {
            if (id.StartsWith('.'))
            {
                throw MatrixException.InvalidParam($"'{which}' cannot name a server-default rule");
            }

            var at = list.FindIndex(r => r["rule_id"]!.GetValue<string>() == id);
            return at >= 0 ? at : throw MatrixException.NotFound($"No {kind} rule '{id}' to place this rule {which}");
        }

        var index = before is not null ? Position(before, "before") : after is not null ? Position(after, "after") + 1 : 0;
        list.Insert(index, rule);
    }

    /// <summary>Removes a user rule; false when there is none.</summary>
    public bool Delete(string kind, string ruleId) => _custom[kind].RemoveAll(r => r["rule_id"]!.GetValue<string>() == ruleId) > 0;

    /// <summary>Sets a rule's enabled flag; false when there is no such rule.</summary>
    public bool SetEnabled(string kind, string ruleId, bool enabled)
    {
        if (ruleId.StartsWith('.'))
        {
            if (DefaultPushRules.Find(ruleId) is not { } d || d.Kind != kind)
            {
                return false;
            }

            var actions = _defaults.TryGetValue(ruleId, out var changed) ? changed.Actions : d.Actions;
            SetDefault(d, enabled, actions);
            return true;
        }

        var rule = _custom[kind].Find(r => r["rule_id"]!.GetValue<string>() == ruleId);
        if (rule is null)
        {
            return false;
        }

        rule["enabled"] = enabled;
        return true;
    }

    /// <summary>Sets a rule's actions (already checked); false when there is no such rule.</summary>
    public bool SetActions(string kind, string ruleId, JsonArray actions)
    {
        if (ruleId.StartsWith('.'))
        {
            if (DefaultPushRules.Find(ruleId) is not { } d || d.Kind != kind)
            {
                return false;
            }

            var enabled = _defaults.TryGetValue(ruleId, out var changed) ? changed.Enabled : d.Enabled;
            SetDefault(d, enabled, actions);
            return true;
        }

        var rule = _custom[kind].Find(r => r["rule_id"]!.GetValue<string>() == ruleId);
        if (rule is null)
        {
            return false;
        }

        rule["actions"] = actions;
        return true;
    }

    private void SetDefault(DefaultRule d, bool enabled, JsonArray actions)
    {
        if (enabled == d.Enabled && actions.ToJsonString() == d.Actions.ToJsonString())
        {
            _defaults.Remove(d.RuleId);
        }
        else
        {
            _defaults[d.RuleId] = (enabled, (JsonArray)actions.DeepClone());
        }
    }

    /// <summary>
    /// After a room upgrade: the user's room rule for the old room, and override/underride rules that match the old
    /// room's ID, are copied for the new room (as Synapse does), so a muted room stays muted. False when nothing applied.
    /// </summary>
    public bool CopyRoomRules(string oldRoomId, string newRoomId)
    {
        var changed = false;
        foreach (var kind in Kinds)
        {
            var list = _custom[kind];
            for (var i = list.Count - 1; i >= 0; i--)
            {
                var rule = list[i];
                var ruleId = rule["rule_id"]!.GetValue<string>();
                var copy = (JsonObject)rule.DeepClone();
                var matches = false;
                if (kind == "room")
                {
                    matches = ruleId == oldRoomId;
                }
                else if (kind is "override" or "underride" && copy["conditions"] is JsonArray conditions)
                {
                    foreach (var c in conditions)
                    {
                        if (c is JsonObject o && o["kind"]?.GetValue<string>() == "event_match" && o["key"]?.GetValue<string>() == "room_id"
                            && o["pattern"]?.GetValue<string>() == oldRoomId)
                        {
                            o["pattern"] = newRoomId;
                            matches = true;
                        }
                    }
                }

                var newId = ruleId.Replace(oldRoomId, newRoomId, StringComparison.Ordinal);
                if (!matches || newId == ruleId || list.Exists(r => r["rule_id"]!.GetValue<string>() == newId))
                {
                    continue;
                }

                copy["rule_id"] = newId;
                list.Insert(i, copy);
                changed = true;
            }
        }

        return changed;
    }

    /// <summary>Compiles the rules for evaluation.</summary>
    public CompiledPushRules Compile()
    {
        var entries = new List<CompiledPushRules.Entry>();
        foreach (var kind in Kinds)
        {
            if (kind == "override")
            {
                entries.Add(DefaultEntry(DefaultPushRules.Find(".m.rule.master")!));
            }

            foreach (var rule in _custom[kind])
            {
                var enabled = rule["enabled"]?.GetValue<bool>() ?? true;
                var actions = new PushActions((JsonArray)rule["actions"]!);
                var ruleId = rule["rule_id"]!.GetValue<string>();
                PushCondition[] conditions = kind switch
                {
                    "room" => [new PushCondition.EventMatch("room_id", Glob.Whole(ruleId))],
                    "sender" => [new PushCondition.EventMatch("sender", Glob.Whole(ruleId))],
                    "content" => [new PushCondition.EventMatch("content.body", Glob.Words(rule["pattern"]!.GetValue<string>()))],
                    _ => ((JsonArray?)rule["conditions"] ?? []).Select(c => PushCondition.Compile((JsonObject)c!, UserId, Localpart)).ToArray(),
                };
                entries.Add(new CompiledPushRules.Entry(null, conditions, enabled, actions));
            }

            foreach (var d in DefaultPushRules.All)
            {
                if (d.Kind == kind && d.RuleId != ".m.rule.master")
                {
                    entries.Add(DefaultEntry(d));
                }
            }
        }

        return new CompiledPushRules([.. entries], IsDefault);
    }

    private CompiledPushRules.Entry DefaultEntry(DefaultRule d)
    {
        var (enabled, actions) = _defaults.TryGetValue(d.RuleId, out var changed) ? changed : (d.Enabled, d.Actions);
        return new CompiledPushRules.Entry(d, d.Dependent, enabled, ReferenceEquals(actions, d.Actions) ? DefaultActions(d) : new PushActions(actions));
    }

    private static readonly Dictionary<string, PushActions> SharedDefaultActions =
        DefaultPushRules.All.ToDictionary(d => d.RuleId, d => new PushActions(d.Actions), StringComparer.Ordinal);

    private static PushActions DefaultActions(DefaultRule d) => SharedDefaultActions[d.RuleId];

    /// <summary>
    /// Checks a PUT body for a user rule of <paramref name="kind"/> and returns the rule as it will be stored.
    /// </summary>
    /// <exception cref="MatrixException">M_INVALID_PARAM or M_BAD_JSON naming what is wrong.</exception>
    public static JsonObject Normalise(string kind, string ruleId, JsonObject body, bool enabled = true)
    {
        if (ruleId.Length == 0 || ruleId.StartsWith('.') || ruleId.Contains('/') || ruleId.Contains('\\'))
        {
            throw MatrixException.InvalidParam("Rule IDs must not be empty, start with '.' or contain '/' or '\\'");
        }

        if (System.Text.Encoding.UTF8.GetByteCount(ruleId) > 255)
        {
            throw MatrixException.InvalidParam("Rule IDs are limited to 255 bytes");
        }

        if (kind == "room" && !Lethe.Protocol.Identifiers.RoomId.TryParse(ruleId, out _))
        {
            throw MatrixException.InvalidParam("A room rule's ID must be a room ID");
        }

        if (kind == "sender" && !Lethe.Protocol.Identifiers.UserId.TryParse(ruleId, out _))
        {
            throw MatrixException.InvalidParam("A sender rule's ID must be a user ID");
        }

        var rule = new JsonObject { ["rule_id"] = ruleId, ["default"] = false, ["enabled"] = enabled, ["actions"] = CheckActions(body["actions"]) };
        if (kind == "content")
        {
            if (body["pattern"] is not JsonValue p || !p.TryGetValue<string>(out var pattern))
            {
                throw MatrixException.BadJson("Content rules need a string 'pattern'");
            }

            rule["pattern"] = pattern;
        }

        if (kind is "override" or "underride")
        {
            var conditions = body["conditions"] switch
            {
                null => [],
                JsonArray a => a,
                _ => throw MatrixException.BadJson("'conditions' must be an array"),
            };
            var checkedConditions = new JsonArray();
            foreach (var c in conditions)
            {
                checkedConditions.Add((JsonNode)CheckCondition(c));
            }

            rule["conditions"] = checkedConditions;
        }

        return rule;
    }

    /// <summary>Checks an actions array.</summary>
    public static JsonArray CheckActions(JsonNode? node)
    {
        if (node is null)
        {
            throw MatrixException.BadJson("Missing 'actions'");
        }

        if (node is not JsonArray actions)
        {
            throw MatrixException.BadJson("'actions' must be an array");
        }

        foreach (var a in actions)
        {
            switch (a)
            {
                case JsonValue v when v.TryGetValue<string>(out var s):
                    if (s is not ("notify" or "dont_notify" or "coalesce"))
                    {
                        throw MatrixException.InvalidParam($"Unknown action '{s}'");
                    }

                    break;
                case JsonObject o when o["set_tweak"] is JsonValue t && t.TryGetValue<string>(out _):
                    break;
                case JsonObject:
                    throw MatrixException.InvalidParam("An action object must have a string 'set_tweak'");
                default:
                    throw MatrixException.BadJson("Actions must be strings or objects");
            }
        }

        return (JsonArray)actions.DeepClone();
    }

    private static JsonObject CheckCondition(JsonNode? node)
    {
        if (node is not JsonObject c)
        {
            throw MatrixException.BadJson("Each condition must be an object");
        }

        if (c["kind"] is not JsonValue k || !k.TryGetValue<string>(out var kind))
        {
            throw MatrixException.BadJson("Each condition needs a string 'kind'");
        }

        string RequiredString(string key) =>
            c[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw MatrixException.BadJson($"A {kind} condition needs a string '{key}'");

        switch (kind)
        {
            case "event_match":
                RequiredString("key");
                RequiredString("pattern");
                break;
            case "event_property_is" or "event_property_contains":
                RequiredString("key");
                if (!c.TryGetPropertyValue("value", out var value))
                {
                    throw MatrixException.BadJson($"A {kind} condition needs a 'value'");
                }

                if (value is JsonObject or JsonArray)
                {
                    throw MatrixException.InvalidParam("'value' must be a string, integer, boolean or null");
                }

                break;
            case "room_member_count":
                if (!PushCondition.RoomMemberCount.TryParse(RequiredString("is"), out _))
                {
                    throw MatrixException.InvalidParam("'is' must be a number optionally prefixed by ==, <, >, >= or <=");
                }

                break;
            case "sender_notification_permission":
                RequiredString("key");
                break;
        }

        return (JsonObject)c.DeepClone();
    }
}

/// <summary>A user's rules compiled for evaluation, in priority order.</summary>
public sealed class CompiledPushRules(CompiledPushRules.Entry[] entries, bool isDefault)
{
    /// <summary>One rule: the server-default it is (if any), its user-dependent (or, for user rules, all) conditions, enabled, actions.</summary>
    public sealed record Entry(DefaultRule? Default, PushCondition[] Conditions, bool Enabled, PushActions Actions);

    /// <summary>True for the unchanged server defaults.</summary>
    public bool IsDefault { get; } = isDefault;

    /// <summary>The actions of the first matching rule, or <see cref="PushActions.None"/>.</summary>
    public PushActions Evaluate(PushEvent e, in PushUser user)
    {
        foreach (var entry in entries)
        {
            if (!entry.Enabled)
            {
                continue;
            }

            if (entry.Default is { } d)
            {
                if (d.Legacy && e.HasMentions)
                {
                    continue;
                }

                // The user-independent conditions of a default rule are the same for everyone: evaluate them once per event.
                var memo = e.DefaultMemo[d.Index];
                if (memo == 0)
                {
                    memo = 1;
                    foreach (var c in d.Independent)
                    {
                        if (!c.Matches(e, user))
                        {
                            memo = 2;
                            break;
                        }
                    }

                    e.DefaultMemo[d.Index] = memo;
                }

                if (memo == 2)
                {
                    continue;
                }
            }

            var matched = true;
            foreach (var c in entry.Conditions)
            {
                if (!c.Matches(e, user))
                {
                    matched = false;
                    break;
                }
            }

            if (matched)
            {
                return entry.Actions;
            }
        }

        return PushActions.None;
    }
}
