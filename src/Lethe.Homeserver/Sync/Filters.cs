using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Json;

namespace Lethe.Homeserver.Sync;

/// <summary>An event filter: limit, types and senders to include or exclude (<c>*</c> wildcards in types), per the spec's EventFilter.</summary>
public record EventFilter
{
    /// <summary>Most events to return; null for the endpoint's default.</summary>
    public int? Limit { get; init; }

    /// <summary>Types to include (null for all).</summary>
    public IReadOnlyList<string>? Types { get; init; }

    /// <summary>Types to exclude.</summary>
    public IReadOnlyList<string> NotTypes { get; init; } = [];

    /// <summary>Senders to include (null for all).</summary>
    public IReadOnlySet<string>? Senders { get; init; }

    /// <summary>Senders to exclude.</summary>
    public IReadOnlySet<string> NotSenders { get; init; } = new HashSet<string>();

    /// <summary>Matches everything.</summary>
    public static readonly EventFilter All = new();

    /// <summary>True when an event of this type and sender passes.</summary>
    public bool Matches(string type, string sender)
    {
        if (NotSenders.Contains(sender) || (Senders is not null && !Senders.Contains(sender)))
        {
            return false;
        }

        foreach (var pattern in NotTypes)
        {
            if (TypeMatches(pattern, type))
            {
                return false;
            }
        }

        if (Types is null)
        {
            return true;
        }

        foreach (var pattern in Types)
        {
            if (TypeMatches(pattern, type))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Glob match where <c>*</c> stands for any run of characters.</summary>
    public static bool TypeMatches(string pattern, string type)
    {
        var star = pattern.IndexOf('*', StringComparison.Ordinal);
        if (star < 0)
        {
            return pattern == type;
        }

        // Patterns are short and usually "prefix.*": handle one star fast, fall back to a general matcher.
        if (star == pattern.Length - 1)
        {
            return type.StartsWith(pattern.AsSpan(0, star), StringComparison.Ordinal);
        }

        return Glob(pattern, 0, type, 0);
    }

    private static bool Glob(string p, int pi, string s, int si)
    {
        while (pi < p.Length)
        {
            if (p[pi] == '*')
            {
                for (var k = si; k <= s.Length; k++)
                {
                    if (Glob(p, pi + 1, s, k))
                    {
                        return true;
                    }
                }

                return false;
            }

            if (si >= s.Length || p[pi] != s[si])
            {
                return false;
            }

            pi++;
            si++;
        }

        return si == s.Length;
    }

    /// <summary>Reads the EventFilter members of a JSON filter.</summary>
    protected static (int? Limit, List<string>? Types, List<string> NotTypes, HashSet<string>? Senders, HashSet<string> NotSenders) ReadBase(JsonObject json, string path)
    {
        var limit = json.OptionalInteger("limit", 0, int.MaxValue);
        return (
            limit is null ? null : (int)Math.Min(limit.Value, 1000),
            Strings(json, "types", path),
            Strings(json, "not_types", path) ?? [],
            Strings(json, "senders", path)?.ToHashSet(StringComparer.Ordinal),
            Strings(json, "not_senders", path)?.ToHashSet(StringComparer.Ordinal) ?? []);
    }

    /// <summary>Reads a list of strings, failing with M_BAD_JSON naming the filter path.</summary>
    protected static List<string>? Strings(JsonObject json, string key, string path)
    {
        if (json[key] is null)
        {
            return null;
        }

        if (json[key] is not JsonArray array || array.Any(i => i.AsString() is null))
        {
            throw MatrixException.BadJson($"{path}{key} must be a list of strings");
        }

        return array.Select(i => i.AsString()!).ToList();
    }

    /// <summary>Parses an EventFilter.</summary>
    public static EventFilter Parse(JsonObject? json, string path)
    {
        if (json is null)
        {
            return All;
        }

        var (limit, types, notTypes, senders, notSenders) = ReadBase(json, path);
        return new EventFilter { Limit = limit, Types = types, NotTypes = notTypes, Senders = senders, NotSenders = notSenders };
    }
}

/// <summary>A RoomEventFilter: an EventFilter plus room restrictions, lazy loading of members and URL presence.</summary>
public sealed record RoomEventFilter : EventFilter
{
    /// <summary>Matches everything.</summary>
    public static new readonly RoomEventFilter All = new();

    /// <summary>Rooms to include (null for all).</summary>
    public IReadOnlySet<string>? Rooms { get; init; }

    /// <summary>Rooms to exclude.</summary>
    public IReadOnlySet<string> NotRooms { get; init; } = new HashSet<string>();

    /// <summary>Send only the member events of senders in view (lazy-loading members).</summary>
    public bool LazyLoadMembers { get; init; }

    /// <summary>With lazy loading: send member events again even when the client should have them. Validated; Lethe keeps no record of what a device was sent, so incremental syncs always carry the timeline senders' member events.</summary>
    public bool IncludeRedundantMembers { get; init; }

    /// <summary>true: only events with a <c>url</c> in content; false: only without; null: either.</summary>
    public bool? ContainsUrl { get; init; }

    /// <summary>Report unread counts per thread.</summary>
    public bool UnreadThreadNotifications { get; init; }

    /// <summary>True when the room passes.</summary>
    public bool MatchesRoom(string roomId) => !NotRooms.Contains(roomId) && (Rooms is null || Rooms.Contains(roomId));

    /// <summary>True when the event passes type, sender and URL criteria.</summary>
    public bool Matches(string type, string sender, JsonObject content) =>
        Matches(type, sender) && (ContainsUrl is null || (content["url"] is not null) == ContainsUrl);

    /// <summary>Parses a RoomEventFilter.</summary>
    public static new RoomEventFilter Parse(JsonObject? json, string path)
    {
        if (json is null)
        {
            return All;
        }

        var (limit, types, notTypes, senders, notSenders) = ReadBase(json, path);
        return new RoomEventFilter
        {
            Limit = limit,
            Types = types,
            NotTypes = notTypes,
            Senders = senders,
            NotSenders = notSenders,
            Rooms = Strings(json, "rooms", path)?.ToHashSet(StringComparer.Ordinal),
            NotRooms = Strings(json, "not_rooms", path)?.ToHashSet(StringComparer.Ordinal) ?? [],
            LazyLoadMembers = json.OptionalBool("lazy_load_members", false),
            IncludeRedundantMembers = json.OptionalBool("include_redundant_members", false),
            ContainsUrl = json["contains_url"] is null ? null : json.OptionalBool("contains_url", false),
            UnreadThreadNotifications = json.OptionalBool("unread_thread_notifications", false),
        };
    }
}

/// <summary>A sync filter: what /sync returns, per the spec's Filter definition.</summary>
public sealed record SyncFilter
{
    /// <summary>The default filter.</summary>
    public static readonly SyncFilter Default = new();

    /// <summary>Presence events.</summary>
    public EventFilter Presence { get; init; } = EventFilter.All;

    /// <summary>Global account data.</summary>
    public EventFilter AccountData { get; init; } = EventFilter.All;

    /// <summary>Rooms to include (null for all).</summary>
    public IReadOnlySet<string>? Rooms { get; init; }

    /// <summary>Rooms to exclude.</summary>
    public IReadOnlySet<string> NotRooms { get; init; } = new HashSet<string>();

    /// <summary>Include rooms the user has left.</summary>
    public bool IncludeLeave { get; init; }

    /// <summary>Room state.</summary>
    public RoomEventFilter State { get; init; } = RoomEventFilter.All;

    /// <summary>Room timelines.</summary>
    public RoomEventFilter Timeline { get; init; } = RoomEventFilter.All;

    /// <summary>Typing and receipts.</summary>
    public RoomEventFilter Ephemeral { get; init; } = RoomEventFilter.All;

    /// <summary>Per-room account data.</summary>
    public RoomEventFilter RoomAccountData { get; init; } = RoomEventFilter.All;

    /// <summary>"federation" to get events in federation format; "client" (default) otherwise.</summary>
    public string EventFormat { get; init; } = "client";

    /// <summary>Fields to keep in each event (dotted paths), or null for all.</summary>
    public IReadOnlyList<string>? EventFields { get; init; }

    /// <summary>True when the room passes.</summary>
    public bool MatchesRoom(string roomId) => !NotRooms.Contains(roomId) && (Rooms is null || Rooms.Contains(roomId));

    /// <summary>Parses a sync filter definition; M_BAD_JSON or M_INVALID_PARAM when malformed.</summary>
    public static SyncFilter Parse(JsonObject json)
    {
        var room = json.OptionalObject("room") ?? [];
        var format = json.OptionalString("event_format", 32) ?? "client";
        if (format is not ("client" or "federation"))
        {
            throw MatrixException.InvalidParam("event_format must be client or federation");
        }

        var fields = json.OptionalStringArray("event_fields", 100, 1024);
        return new SyncFilter
        {
            Presence = EventFilter.Parse(json.OptionalObject("presence"), "presence."),
            AccountData = EventFilter.Parse(json.OptionalObject("account_data"), "account_data."),
            Rooms = room.OptionalStringArray("rooms", 10_000)?.ToHashSet(StringComparer.Ordinal),
            NotRooms = room.OptionalStringArray("not_rooms", 10_000)?.ToHashSet(StringComparer.Ordinal) ?? [],
            IncludeLeave = room.OptionalBool("include_leave", false),
            State = RoomEventFilter.Parse(room.OptionalObject("state"), "room.state."),
            Timeline = RoomEventFilter.Parse(room.OptionalObject("timeline"), "room.timeline."),
            Ephemeral = RoomEventFilter.Parse(room.OptionalObject("ephemeral"), "room.ephemeral."),
            RoomAccountData = RoomEventFilter.Parse(room.OptionalObject("account_data"), "room.account_data."),
            EventFormat = format,
            EventFields = fields,
        };
    }
}
