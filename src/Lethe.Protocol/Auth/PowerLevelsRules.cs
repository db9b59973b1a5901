using System.Text.Json.Nodes;
using Lethe.Protocol.Events;
using Lethe.Protocol.Identifiers;
using static Lethe.Protocol.Auth.AuthContext;

namespace Lethe.Protocol.Auth;

/// <summary>The <c>m.room.power_levels</c> authorisation rule (10 in v1–5 and v12, 9 in v6–11). Comments use v12's numbering.</summary>
internal static class PowerLevelsRules
{
    private static readonly string[] IntegerFields = ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"];

    /// <summary>Applies the power levels rule to the event in <paramref name="ctx"/>, sent by a user at <paramref name="senderLevel"/>.</summary>
    public static AuthDecision Check(AuthContext ctx, long senderLevel)
    {
        var pdu = ctx.Pdu;
        var rules = ctx.Rules;
        var version = ctx.Version;
        var content = pdu.Content;

        // 10.1–10.3: the content's shape.
        if (FindShapeProblem(content, version) is { } problem)
        {
            return Reject(problem.Kind switch { Shape.IntegerField => rules.PlIntegerFields, Shape.LevelMap => rules.PlMapFields, _ => rules.PlUsers }, problem.Reason);
        }

        // 10.4 (v12): creators' power is fixed; listing them would be meaningless and is forbidden.
        if (version.PrivilegedCreators && content["users"] is JsonObject users)
        {
            foreach (var creator in ctx.Creators.All)
            {
                if (users.ContainsKey(creator))
                {
                    return Reject(rules.PlCreators, $"users lists the creator {creator}");
                }
            }
        }

        // 10.5
        var previous = ctx.Get(EventTypes.PowerLevels, "");
        if (previous is null)
        {
            return Allow(rules.PlNoPrevious, "there is no previous power levels event");
        }

        return CheckChange(previous.Content, content, version, rules, pdu.Sender, senderLevel);
    }

    /// <summary>10.6–10.11: whether <paramref name="sender"/>, at <paramref name="senderLevel"/>, may replace the power levels <paramref name="old"/> with <paramref name="content"/>.</summary>
    internal static AuthDecision CheckChange(JsonObject old, JsonObject content, RoomVersion version, RuleNumbers rules, string sender, long senderLevel)
    {
        // 10.6: a value counts as altered when it is added, removed or changes; absent values are not compared with defaults.
        foreach (var field in IntegerFields)
        {
            var (before, after) = (Read(old, field, version), Read(content, field, version));
            if (before == after)
            {
                continue;
            }

            if (before > senderLevel)
            {
                return Reject(rules.PlFieldChanges + ".1", $"{field} was {before}, above the sender's level {senderLevel}");
            }

            if (after > senderLevel)
            {
                return Reject(rules.PlFieldChanges + ".2", $"{field} would be {after}, above the sender's level {senderLevel}");
            }
        }

        // 10.7 and 10.8 cover events, and from v6 notifications too.
        var oldEvents = old["events"] as JsonObject;
        var newEvents = content["events"] as JsonObject;
        var oldNotifications = version.LimitNotificationsPowerLevels ? old["notifications"] as JsonObject : null;
        var newNotifications = version.LimitNotificationsPowerLevels ? content["notifications"] as JsonObject : null;

        // 10.7
        if (FindChangedOrRemoved(oldEvents, newEvents, version, (_, before) => before > senderLevel) is { } eventType)
        {
            return Reject(rules.PlMapRemoved, $"events.{eventType} was above the sender's level {senderLevel}");
        }

        if (FindChangedOrRemoved(oldNotifications, newNotifications, version, (_, before) => before > senderLevel) is { } notification)
        {
            return Reject(rules.PlMapRemoved, $"notifications.{notification} was above the sender's level {senderLevel}");
        }

        // 10.8
        if (FindAddedOrChanged(oldEvents, newEvents, version, after => after > senderLevel) is { } addedType)
        {
            return Reject(rules.PlMapAdded, $"events.{addedType} would be above the sender's level {senderLevel}");
        }

        if (FindAddedOrChanged(oldNotifications, newNotifications, version, after => after > senderLevel) is { } addedNotification)
        {
            return Reject(rules.PlMapAdded, $"notifications.{addedNotification} would be above the sender's level {senderLevel}");
        }

        var oldUsers = old["users"] as JsonObject;
        var newUsers = content["users"] as JsonObject;

        // 10.9: nobody may change or remove a peer's or superior's level, though anyone may lower their own.
        if (FindChangedOrRemoved(oldUsers, newUsers, version, (user, before) => user != sender && before >= senderLevel) is { } demoted)
        {
            return Reject(rules.PlUsersChanged, $"users.{demoted} was at or above the sender's level {senderLevel}");
        }

        // 10.10
        if (FindAddedOrChanged(oldUsers, newUsers, version, after => after > senderLevel) is { } promoted)
        {
            return Reject(rules.PlUsersAdded, $"users.{promoted} would be above the sender's level {senderLevel}");
        }

        // 10.11
        return Allow(rules.PlAllow, "every change is within the sender's level");
    }

    /// <summary>Which shape rule a power levels content breaks.</summary>
    internal enum Shape
    {
        /// <summary>10.1: a top-level level is not an integer (v10+).</summary>
        IntegerField,

        /// <summary>10.2: <c>events</c> or <c>notifications</c> is not an object of integers (v10+).</summary>
        LevelMap,

        /// <summary>10.3: <c>users</c> is not an object of user IDs to levels.</summary>
        Users,
    }

    /// <summary>The first of rules 10.1–10.3 that <paramref name="content"/> breaks under <paramref name="version"/>, or null.</summary>
    internal static (Shape Kind, string Reason)? FindShapeProblem(JsonObject content, RoomVersion version)
    {
        if (version.IntegerPowerLevels)
        {
            // 10.1 (v10+)
            foreach (var field in IntegerFields)
            {
                if (content.ContainsKey(field) && !PowerLevelValue.TryRead(content[field], version, out _))
                {
                    return (Shape.IntegerField, $"{field} is not an integer");
                }
            }

            // 10.2 (v10+)
            if (!IsLevelMap(content, "events", version) || !IsLevelMap(content, "notifications", version))
            {
                return (Shape.LevelMap, "events or notifications is not an object of integers");
            }
        }

        // 10.3: users maps valid user IDs to levels (integers; before v10 numeric strings too).
        if (content.ContainsKey("users"))
        {
            if (content["users"] is not JsonObject users)
            {
                return (Shape.Users, "users is not an object");
            }

            foreach (var (userId, level) in users)
            {
                if (!UserId.TryParse(userId, out _) || !PowerLevelValue.TryRead(level, version, out _))
                {
                    return (Shape.Users, $"users holds an invalid entry for '{userId}'");
                }
            }
        }

        return null;
    }

    private static bool IsLevelMap(JsonObject content, string key, RoomVersion version)
    {
        if (!content.ContainsKey(key))
        {
            return true;
        }

        if (content[key] is not JsonObject map)
        {
            return false;
        }

        foreach (var (_, value) in map)
        {
            if (!PowerLevelValue.TryRead(value, version, out _))
            {
                return false;
            }
        }

        return true;
    }

    private static long? Read(JsonObject? obj, string key, RoomVersion version) =>
        obj is not null && PowerLevelValue.TryRead(obj[key], version, out var level) ? level : null;

    // The first key whose current value changes or disappears and fails the test on that current value.
    private static string? FindChangedOrRemoved(JsonObject? before, JsonObject? after, RoomVersion version, Func<string, long, bool> rejects)
    {
        if (before is null)
        {
            return null;
        }

        foreach (var (key, _) in before)
        {
            var oldLevel = Read(before, key, version);
            if (oldLevel is { } value && oldLevel != Read(after, key, version) && rejects(key, value))
            {
                return key;
            }
        }

        return null;
    }

    // The first key whose new value is added or differs and fails the test on that new value.
    private static string? FindAddedOrChanged(JsonObject? before, JsonObject? after, RoomVersion version, Func<long, bool> rejects)
    {
        if (after is null)
        {
            return null;
        }

        foreach (var (key, _) in after)
        {
            var newLevel = Read(after, key, version);
            if (newLevel is { } value && newLevel != Read(before, key, version) && rejects(value))
            {
                return key;
            }
        }

        return null;
    }
}
