using System.Text.Json.Nodes;
using Lethe.Protocol.Events;

namespace Lethe.Protocol.Auth;

/// <summary>The effective power levels of a room: its <c>m.room.power_levels</c> content with the spec's defaults filled in, read by the room version's rules.</summary>
/// <remarks>Values the room version does not accept (e.g. <c>"abc"</c>) count as absent. Lookups read the content lazily, so building one is cheap.</remarks>
public sealed class PowerLevels
{
    /// <summary>The level of a room version 12 creator: higher than any level content can express.</summary>
    public const long CreatorLevel = long.MaxValue;

    /// <summary>The creator's level in a room with no power levels event (room versions 1–11).</summary>
    public const long DefaultCreatorLevel = 100;

    /// <summary>Default <c>ban</c>, <c>kick</c>, <c>redact</c> and <c>state_default</c>, with or without a power levels event.</summary>
    public const long DefaultModeratorLevel = 50;

    /// <summary>Default <c>notifications.room</c> and of any other notification key.</summary>
    public const long DefaultNotificationLevel = 50;

    private readonly JsonObject? _users;
    private readonly JsonObject? _events;
    private readonly JsonObject? _notifications;
    private IReadOnlyDictionary<string, long>? _usersMap;
    private IReadOnlyDictionary<string, long>? _eventsMap;
    private IReadOnlyDictionary<string, long>? _notificationsMap;

    private PowerLevels(JsonObject? content, RoomVersion version, RoomCreators creators)
    {
        Content = content;
        RoomVersion = version;
        Creators = creators;
        Ban = Read(content, "ban", DefaultModeratorLevel);
        Kick = Read(content, "kick", DefaultModeratorLevel);
        Redact = Read(content, "redact", DefaultModeratorLevel);
        Invite = Read(content, "invite", 0);
        StateDefault = Read(content, "state_default", DefaultModeratorLevel);
        EventsDefault = Read(content, "events_default", 0);
        UsersDefault = Read(content, "users_default", 0);
        _users = content?["users"] as JsonObject;
        _events = content?["events"] as JsonObject;
        _notifications = content?["notifications"] as JsonObject;
    }

    /// <summary>The power levels content, or null when the room has no power levels event.</summary>
    public JsonObject? Content { get; }

    /// <summary>True when the room has a power levels event.</summary>
    public bool HasPowerLevelsEvent => Content is not null;

    /// <summary>The room version whose rules read the values.</summary>
    public RoomVersion RoomVersion { get; }

    /// <summary>The room's creators.</summary>
    public RoomCreators Creators { get; }

    /// <summary>Level needed to ban, and to unban.</summary>
    public long Ban { get; }

    /// <summary>Level needed to kick.</summary>
    public long Kick { get; }

    /// <summary>Level needed to redact other users' events.</summary>
    public long Redact { get; }

    /// <summary>Level needed to invite.</summary>
    public long Invite { get; }

    /// <summary>Level needed to send state events not listed in <c>events</c>.</summary>
    public long StateDefault { get; }

    /// <summary>Level needed to send message events not listed in <c>events</c>.</summary>
    public long EventsDefault { get; }

    /// <summary>Level of users not listed in <c>users</c>.</summary>
    public long UsersDefault { get; }

    /// <summary>Explicit per-user levels (entries in <c>users</c> with acceptable values).</summary>
    public IReadOnlyDictionary<string, long> Users => _usersMap ??= ReadMap(_users);

    /// <summary>Explicit per-event-type levels (entries in <c>events</c> with acceptable values).</summary>
    public IReadOnlyDictionary<string, long> Events => _eventsMap ??= ReadMap(_events);

    /// <summary>Explicit notification levels (entries in <c>notifications</c> with acceptable values).</summary>
    public IReadOnlyDictionary<string, long> Notifications => _notificationsMap ??= ReadMap(_notifications);

    /// <summary>The power levels in force given a room's create event and its current power levels event (if any).</summary>
    public static PowerLevels FromState(Pdu createEvent, Pdu? powerLevelsEvent) =>
        new(powerLevelsEvent?.Content, createEvent.RoomVersion, RoomCreators.FromCreateEvent(createEvent));

    /// <summary>The power levels described by <paramref name="content"/> (null: no power levels event) under a room version's rules.</summary>
    public static PowerLevels FromContent(JsonObject? content, RoomVersion version, RoomCreators creators) => new(content, version, creators);

    /// <summary>
    /// Why <paramref name="content"/> could not be a room's power levels under <paramref name="version"/>'s authorization
    /// rules (a level that is not an integer, a malformed <c>events</c>, <c>notifications</c> or <c>users</c>), or null when it could.
    /// </summary>
    public static string? FindContentProblem(JsonObject content, RoomVersion version) => PowerLevelsRules.FindShapeProblem(content, version)?.Reason;

    /// <summary>
    /// Why the authorization rules would not let <paramref name="sender"/> replace the power levels
    /// <paramref name="before"/> with <paramref name="after"/> (both well-formed), or null when they would.
    /// </summary>
    public static string? FindChangeProblem(JsonObject before, JsonObject after, RoomVersion version, string sender)
    {
        var level = FromContent(before, version, RoomCreators.None).GetUserLevel(sender);
        var decision = PowerLevelsRules.CheckChange(before, after, version, RuleNumbers.For(version), sender, level);
        return decision.IsAllowed ? null : decision.Reason;
    }

    /// <summary>A user's level: infinite for v12 creators, then <c>users</c>, then <c>users_default</c>; with no power levels event, 100 for the creator and 0 for everyone else.</summary>
    public long GetUserLevel(string userId)
    {
        if (Creators.ArePrivileged && Creators.Contains(userId))
        {
            return CreatorLevel;
        }

        if (Content is null)
        {
            return !Creators.ArePrivileged && userId == Creators.Creator ? DefaultCreatorLevel : 0;
        }

        return _users is not null && PowerLevelValue.TryRead(_users[userId], RoomVersion, out var level) ? level : UsersDefault;
    }

    /// <summary>True when <paramref name="userId"/> is a creator with infinite power (room version 12).</summary>
    public bool IsPrivilegedCreator(string userId) => Creators.ArePrivileged && Creators.Contains(userId);

    /// <summary>The level needed to send an event of <paramref name="eventType"/>: its <c>events</c> entry, else <c>state_default</c> or <c>events_default</c>.</summary>
    public long GetRequiredLevel(string eventType, bool isState)
    {
        if (_events is not null && PowerLevelValue.TryRead(_events[eventType], RoomVersion, out var level))
        {
            return level;
        }

        return isState ? StateDefault : EventsDefault;
    }

    /// <summary>The level needed to trigger the notification <paramref name="key"/> (e.g. <c>room</c> for <c>@room</c>).</summary>
    public long GetNotificationLevel(string key) =>
        _notifications is not null && PowerLevelValue.TryRead(_notifications[key], RoomVersion, out var level) ? level : DefaultNotificationLevel;

    /// <summary>True when <paramref name="userId"/>'s level reaches the level required for the event type.</summary>
    public bool CanSend(string userId, string eventType, bool isState) => GetUserLevel(userId) >= GetRequiredLevel(eventType, isState);

    /// <summary>True when <paramref name="userId"/>'s level reaches <see cref="Invite"/>.</summary>
    public bool CanInvite(string userId) => GetUserLevel(userId) >= Invite;

    /// <summary>True when <paramref name="sender"/> reaches <see cref="Kick"/> and outranks <paramref name="target"/>.</summary>
    public bool CanKick(string sender, string target) => CanActOn(sender, target, Kick);

    /// <summary>True when <paramref name="sender"/> reaches <see cref="Ban"/> and outranks <paramref name="target"/>.</summary>
    public bool CanBan(string sender, string target) => CanActOn(sender, target, Ban);

    /// <summary>True when <paramref name="userId"/> may redact other users' events (reaches <see cref="Redact"/>).</summary>
    public bool CanRedactOthers(string userId) => GetUserLevel(userId) >= Redact;

    private bool CanActOn(string sender, string target, long required)
    {
        var senderLevel = GetUserLevel(sender);
        return senderLevel >= required && GetUserLevel(target) < senderLevel;
    }

    private long Read(JsonObject? content, string key, long fallback) =>
        content is not null && PowerLevelValue.TryRead(content[key], RoomVersion, out var level) ? level : fallback;

    private Dictionary<string, long> ReadMap(JsonObject? obj)
    {
        var map = new Dictionary<string, long>(StringComparer.Ordinal);
        if (obj is null)
        {
            return map;
        }

        foreach (var kv in obj)
        {
            if (PowerLevelValue.TryRead(kv.Value, RoomVersion, out var level))
            {
                map[kv.Key] = level;
            }
        }

        return map;
    }
}
