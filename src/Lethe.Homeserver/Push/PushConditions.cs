using System.Text.Json;
using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;

namespace Lethe.Homeserver.Push;

/// <summary>The local user a rule is evaluated for: ID, localpart and display name in the room.</summary>
public readonly record struct PushUser(string UserId, string Localpart, string? DisplayName)
{
    /// <summary>The localpart in lower case (body matching is case-insensitive).</summary>
    public string LowerLocalpart { get; } = Localpart.ToLowerInvariant();

    /// <summary>The display name in lower case; null when unset or blank.</summary>
    public string? LowerDisplayName { get; } = string.IsNullOrWhiteSpace(DisplayName) ? null : DisplayName.ToLowerInvariant();
}

/// <summary>
/// One event as push rules see it, shared by every user it is evaluated for: property lookups, the body, the
/// mentioned user IDs and the room facts (member count, power levels) are computed once, and the user-independent
/// part of each server-default rule is remembered after its first evaluation.
/// </summary>
public sealed class PushEvent
{
    private readonly Dictionary<string, JsonNode?> _lookups = new(StringComparer.Ordinal);
    private readonly Func<PowerLevels?> _levels;
    private PowerLevels? _powerLevels;
    private bool _levelsLoaded;

    /// <summary>Wraps an event with the room's joined member count and a way to read its power levels.</summary>
    public PushEvent(Pdu pdu, int memberCount, Func<PowerLevels?> levels)
    {
        Pdu = pdu;
        MemberCount = memberCount;
        _levels = levels;
        Body = pdu.Content["body"] is JsonValue v && v.TryGetValue<string>(out var b) ? b : null;
        LowerBody = Body?.ToLowerInvariant();
        if (pdu.Content["m.mentions"] is { } mentions)
        {
            HasMentions = true;
            if (mentions is JsonObject m && m["user_ids"] is JsonArray ids)
            {
                foreach (var id in ids)
                {
                    if (id is JsonValue s && s.TryGetValue<string>(out var userId))
                    {
                        (MentionedUsers ??= new HashSet<string>(StringComparer.Ordinal)).Add(userId);
                    }
                }
            }
        }
    }

    /// <summary>The event.</summary>
    public Pdu Pdu { get; }

    /// <summary>Joined members of the room (before the event).</summary>
    public int MemberCount { get; }

    /// <summary><c>content.body</c> when a string.</summary>
    public string? Body { get; }

    /// <summary><see cref="Body"/> in lower case, for the per-member word searches.</summary>
    public string? LowerBody { get; }

    /// <summary>Whether the content has <c>m.mentions</c> (intentional mentions): then the legacy body-matching rules do not apply.</summary>
    public bool HasMentions { get; }

    /// <summary>User IDs in <c>m.mentions.user_ids</c>.</summary>
    public HashSet<string>? MentionedUsers { get; }

    /// <summary>Per server-default rule: 0 unknown, 1 its user-independent conditions hold, 2 they do not.</summary>
    internal byte[] DefaultMemo { get; } = new byte[DefaultPushRules.Count];

    /// <summary>The room's power levels, read once.</summary>
    public PowerLevels? PowerLevels
    {
        get
        {
            if (!_levelsLoaded)
            {
                _powerLevels = _levels();
                _levelsLoaded = true;
            }

            return _powerLevels;
        }
    }

    /// <summary>The value at a dot-separated property path (already split), or null when absent.</summary>
    public JsonNode? Lookup(string key, string[] path)
    {
        if (_lookups.TryGetValue(key, out var cached))
        {
            return cached;
        }

        JsonNode? node = path[0] switch
        {
            "type" => Pdu.Type,
            "sender" => Pdu.Sender,
            "room_id" => Pdu.RoomId,
            "state_key" => Pdu.StateKey,
            "content" => Pdu.Content,
            _ => Pdu.Json[path[0]],
        };
        for (var i = 1; i < path.Length && node is not null; i++)
        {
            node = node is JsonObject o ? o[path[i]] : null;
        }

        _lookups[key] = node;
        return node;
    }

    /// <summary>A string property (null when absent or not a string).</summary>
    public string? LookupString(string key, string[] path) =>
        Lookup(key, path) is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
}

/// <summary>A compiled push condition.</summary>
public abstract class PushCondition
{
    /// <summary>Whether the outcome depends on the user (then it is never remembered across users).</summary>
    public virtual bool UserDependent => false;

    /// <summary>Whether the condition holds for the event and user.</summary>
    public abstract bool Matches(PushEvent e, in PushUser user);

    /// <summary>Splits a dot-separated property path, where <c>\.</c> is a literal dot and <c>\\</c> a backslash.</summary>
    public static string[] SplitPath(string key)
    {
        var parts = new List<string>();
        var current = new System.Text.StringBuilder();
        for (var i = 0; i < key.Length; i++)
        {
            var c = key[i];
            if (c == '\\' && i + 1 < key.Length && key[i + 1] is '.' or '\\')
            {
                current.Append(key[++i]);
            }
            else if (c == '.')
            {
                parts.Add(current.ToString());
                current.Clear();
            }
            else
            {
                current.Append(c);
            }
        }

        parts.Add(current.ToString());
        return [.. parts];
    }

    /// <summary>Compiles one condition object (already validated); unknown kinds compile to a condition that never matches.</summary>
    public static PushCondition Compile(JsonObject c, string userId, string localpart)
    {
        var kind = c["kind"]?.GetValue<string>();
        switch (kind)
        {
            case "event_match":
            {
                var key = c["key"]!.GetValue<string>();
                var pattern = c["pattern"]!.GetValue<string>();
                return new EventMatch(key, key == "content.body" ? Glob.Words(pattern) : Glob.Whole(pattern));
            }

            case "event_property_is":
                return new PropertyIs(c["key"]!.GetValue<string>(), c["value"]?.DeepClone(), contains: false);
            case "event_property_contains":
                return new PropertyIs(c["key"]!.GetValue<string>(), c["value"]?.DeepClone(), contains: true);
            case "contains_display_name":
                return new ContainsDisplayName();
            case "room_member_count":
                return RoomMemberCount.TryParse(c["is"]!.GetValue<string>(), out var count) ? count : new Never();
            case "sender_notification_permission":
                return new SenderPermission(c["key"]!.GetValue<string>());
            default:
                return new Never();
        }
    }

    /// <summary>Matches a property against a glob.</summary>
    public sealed class EventMatch(string key, Glob glob) : PushCondition
    {
        private readonly string[] _path = SplitPath(key);

        /// <inheritdoc />
        public override bool Matches(PushEvent e, in PushUser user) => e.LookupString(key, _path) is { } value && glob.IsMatch(value);
    }

    /// <summary>A property equals the user's ID (<c>.m.rule.invite_for_me</c>'s state_key).</summary>
    public sealed class PropertyIsUserId(string key) : PushCondition
    {
        private readonly string[] _path = SplitPath(key);

        /// <inheritdoc />
        public override bool UserDependent => true;

        /// <inheritdoc />
        public override bool Matches(PushEvent e, in PushUser user) => e.LookupString(key, _path) == user.UserId;
    }

    /// <summary><c>content.body</c> contains the user's localpart as a word (<c>.m.rule.contains_user_name</c>).</summary>
    public sealed class BodyContainsLocalpart : PushCondition
    {
        /// <inheritdoc />
        public override bool UserDependent => true;

        /// <inheritdoc />
        public override bool Matches(PushEvent e, in PushUser user) => e.LowerBody is { } body && Glob.ContainsLowerWord(body, user.LowerLocalpart);
    }

    /// <summary>The user is in <c>content.m.mentions.user_ids</c> (<c>.m.rule.is_user_mention</c>).</summary>
    public sealed class MentionsUser : PushCondition
    {
        /// <inheritdoc />
        public override bool UserDependent => true;

        /// <inheritdoc />
        public override bool Matches(PushEvent e, in PushUser user) => e.MentionedUsers?.Contains(user.UserId) == true;
    }

    /// <summary>event_property_is / event_property_contains: exact match of a scalar, or membership in an array.</summary>
    public sealed class PropertyIs(string key, JsonNode? value, bool contains) : PushCondition
    {
        private readonly string[] _path = SplitPath(key);

        /// <inheritdoc />
        public override bool Matches(PushEvent e, in PushUser user)
        {
            var found = e.Lookup(key, _path);
            if (!contains)
            {
                return IsScalar(found) && ScalarEquals(found, value);
            }

            if (found is not JsonArray array)
            {
                return false;
            }

            foreach (var item in array)
            {
                if (IsScalar(item) && ScalarEquals(item, value))
                {
                    return true;
                }
            }

            return false;
        }

        private static bool IsScalar(JsonNode? n) => n is null || (n is JsonValue v && v.GetValueKind() is JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null);

        private static bool ScalarEquals(JsonNode? a, JsonNode? b)
        {
            var ka = a?.GetValueKind() ?? JsonValueKind.Null;
            var kb = b?.GetValueKind() ?? JsonValueKind.Null;
            if (ka != kb)
            {
                return false;
            }

            return ka switch
            {
                JsonValueKind.Null or JsonValueKind.True or JsonValueKind.False => true,
                JsonValueKind.String => a!.GetValue<string>() == b!.GetValue<string>(),
                // Canonical JSON integers have one spelling, so comparing the text compares the numbers.
                JsonValueKind.Number => a!.ToJsonString() == b!.ToJsonString(),
                _ => false,
            };
        }
    }

    /// <summary>The body contains the user's display name in the room, as a word.</summary>
    public sealed class ContainsDisplayName : PushCondition
    {
        /// <inheritdoc />
        public override bool UserDependent => true;

        /// <inheritdoc />
        public override bool Matches(PushEvent e, in PushUser user) =>
            e.LowerBody is { } body && user.LowerDisplayName is { } name && Glob.ContainsLowerWord(body, name);
    }

    /// <summary>The room's joined member count compared with a number.</summary>
    public sealed class RoomMemberCount(string op, long n) : PushCondition
    {
        /// <summary>Parses <c>is</c>: a decimal integer optionally prefixed by ==, &lt;, &gt;, &gt;= or &lt;=.</summary>
        public static bool TryParse(string text, out RoomMemberCount condition)
        {
            condition = null!;
            var op = text.StartsWith("==", StringComparison.Ordinal) ? "==" : text.StartsWith(">=", StringComparison.Ordinal) ? ">="
                : text.StartsWith("<=", StringComparison.Ordinal) ? "<=" : text.StartsWith('<') ? "<" : text.StartsWith('>') ? ">" : "";
            var digits = text[op.Length..];
            if (digits.Length == 0 || digits.Length > 15 || !digits.All(char.IsAsciiDigit))
            {
                return false;
            }

            condition = new RoomMemberCount(op.Length == 0 ? "==" : op, long.Parse(digits, System.Globalization.CultureInfo.InvariantCulture));
            return true;
        }

        /// <inheritdoc />
        public override bool Matches(PushEvent e, in PushUser user) => op switch
        {
            "==" => e.MemberCount == n,
            "<" => e.MemberCount < n,
            ">" => e.MemberCount > n,
            ">=" => e.MemberCount >= n,
            _ => e.MemberCount <= n,
        };
    }

    /// <summary>The sender's power level reaches the room's <c>notifications</c> level for the key.</summary>
    public sealed class SenderPermission(string key) : PushCondition
    {
        /// <inheritdoc />
        public override bool Matches(PushEvent e, in PushUser user) =>
            e.PowerLevels is { } levels && levels.GetUserLevel(e.Pdu.Sender) >= levels.GetNotificationLevel(key);
    }

    /// <summary>An unrecognised condition: never matches (the spec's rule for unknown kinds).</summary>
    public sealed class Never : PushCondition
    {
        /// <inheritdoc />
        public override bool Matches(PushEvent e, in PushUser user) => false;
    }
}
