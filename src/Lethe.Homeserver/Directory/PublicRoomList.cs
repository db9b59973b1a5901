using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Rooms;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using Lethe.Storage;

namespace Lethe.Homeserver.Directories;

/// <summary>What the published room list shows of one room.</summary>
public sealed record PublicRoomEntry(
    string RoomId,
    long JoinedMembers,
    string? Name,
    string? Topic,
    string? CanonicalAlias,
    string? AvatarUrl,
    string? JoinRule,
    string? HistoryVisibility,
    string? GuestAccess,
    string? RoomType)
{
    /// <summary>Rooms that could be joined or read without an invitation; only these are listed, as in Synapse.</summary>
    public bool IsListable => JoinRule is "public" or "knock" or "knock_restricted" || HistoryVisibility == "world_readable";

    /// <summary>The chunk entry of <c>public_rooms_chunk.yaml</c>; absent values are left out.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["room_id"] = RoomId,
            ["num_joined_members"] = JoinedMembers,
            ["world_readable"] = HistoryVisibility == "world_readable",
            ["guest_can_join"] = GuestAccess == "can_join",
        };
        void Add(string key, string? value)
        {
            if (value is not null)
            {
                json[key] = value;
            }
        }

        Add("name", Name);
        Add("topic", Topic);
        Add("canonical_alias", CanonicalAlias);
        Add("avatar_url", AvatarUrl);
        Add("join_rule", JoinRule);
        Add("room_type", RoomType);
        return json;
    }
}

/// <summary>The filter of <c>POST /publicRooms</c>.</summary>
/// <param name="SearchTerm">Matched case-insensitively against name, topic and canonical alias; null or empty matches all.</param>
/// <param name="RoomTypes">Room types to include (null in the list means rooms without a type); null or empty includes all.</param>
public sealed record PublicRoomFilter(string? SearchTerm, IReadOnlyList<string?>? RoomTypes)
{
    /// <summary>No filtering.</summary>
    public static readonly PublicRoomFilter None = new(null, null);

    /// <summary>True when the entry passes the filter.</summary>
    public bool Matches(PublicRoomEntry e)
    {
        if (RoomTypes is { Count: > 0 } types && !types.Contains(e.RoomType))
        {
            return false;
        }

        if (string.IsNullOrEmpty(SearchTerm))
        {
            return true;
        }

        return Contains(e.Name) || Contains(e.Topic) || Contains(e.CanonicalAlias);
        bool Contains(string? field) => field is not null && field.Contains(SearchTerm, StringComparison.OrdinalIgnoreCase);
    }
}

/// <summary>
/// This server's published room list: the rooms marked public in the directory, described from their current state,
/// ordered by joined members (most first) then room ID, and paginated with keyset tokens so that pages neither skip
/// nor repeat rooms while member counts stay put.
/// </summary>
public sealed class PublicRoomList(HomeserverServices hs, DirectoryStore store)
{
    /// <summary>Most rooms in one response, Synapse's <c>MAX_PUBLIC_ROOMS_IN_RESPONSE</c>.</summary>
    public const int MaxLimit = 100;

    private static readonly string[] DescribingTypes =
    [
        EventTypes.Create, EventTypes.Name, EventTypes.Topic, EventTypes.CanonicalAlias, "m.room.avatar",
        EventTypes.JoinRules, EventTypes.HistoryVisibility, EventTypes.GuestAccess,
    ];

    // Descriptions by room, keyed by the state events (and their redaction) they were built from, so a request
    // only loads the events of rooms whose describing state changed since the last one.
    private readonly ConcurrentDictionary<string, (string Fingerprint, PublicRoomEntry Entry)> _described = new(StringComparer.Ordinal);

    /// <summary>One page of the list.</summary>
    /// <param name="limit">Rooms wanted; null or 0 means as many as allowed (<see cref="MaxLimit"/>).</param>
    /// <param name="since">A <c>next_batch</c> or <c>prev_batch</c> token from an earlier page.</param>
    /// <exception cref="MatrixException">400 M_INVALID_PARAM for a malformed token or a negative limit.</exception>
    public async Task<JsonObject> PageAsync(long? limit, string? since, PublicRoomFilter filter, CancellationToken ct)
    {
        if (limit < 0)
        {
            throw MatrixException.InvalidParam("limit must not be negative");
        }

        var size = limit is null or 0 or > MaxLimit ? MaxLimit : (int)limit.Value;
        var token = since is null ? null : PageToken.Parse(since);
        var rooms = (await ListedAsync(ct)).Where(filter.Matches).ToList();
        rooms.Sort(PageToken.Compare);
        return Paginate(rooms, size, token);
    }

    /// <summary>Cuts one page out of the sorted, filtered list.</summary>
    internal static JsonObject Paginate(List<PublicRoomEntry> rooms, int size, PageToken? token)
    {
        int start, end;
        if (token is null || token.Forwards)
        {
            start = token is null ? 0 : FirstIndexAfter(rooms, token);
            end = Math.Min(rooms.Count, start + size);
        }
        else
        {
            end = FirstIndexAtOrAfter(rooms, token);
            start = Math.Max(0, end - size);
        }

        var page = rooms.GetRange(start, end - start);
        var response = new JsonObject
        {
            ["chunk"] = new JsonArray(page.Select(r => (JsonNode)r.ToJson()).ToArray()),
            ["total_room_count_estimate"] = rooms.Count,
        };
        if (end < rooms.Count)
        {
            response["next_batch"] = (page.Count > 0 ? PageToken.After(page[^1]) : PageToken.FromStart).ToString();
        }

        // Absence of prev_batch means this is the first page; a page reached with a token always has one before it
        // unless it starts at the top.
        if (start > 0)
        {
            response["prev_batch"] = (page.Count > 0 ? PageToken.Before(page[0]) : PageToken.BeforeEnd).ToString();
        }

        return response;
    }

    private static int FirstIndexAfter(List<PublicRoomEntry> rooms, PageToken key)
    {
        var i = 0;
        while (i < rooms.Count && key.CompareTo(rooms[i]) >= 0)
        {
            i++;
        }

        return i;
    }

    private static int FirstIndexAtOrAfter(List<PublicRoomEntry> rooms, PageToken key)
    {
        var i = 0;
        while (i < rooms.Count && key.CompareTo(rooms[i]) > 0)
        {
            i++;
        }

        return i;
    }

    /// <summary>The published rooms that may be listed: joinable or readable without an invitation, with someone in them.</summary>
    private async Task<List<PublicRoomEntry>> ListedAsync(CancellationToken ct)
    {
        var counts = await store.PublishedJoinedCountsAsync(ct);
        var state = (await store.PublishedRoomStateAsync(DescribingTypes, ct)).GroupBy(r => r.RoomId, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.OrderBy(r => r.Type, StringComparer.Ordinal).ToList(), StringComparer.Ordinal);

        // Work from a local copy: a concurrent request may prune or replace cache entries meanwhile.
        var described = new Dictionary<string, PublicRoomEntry>(state.Count, StringComparer.Ordinal);
        var stale = new List<(string RoomId, string Fingerprint, List<PublishedStateRow> Rows)>();
        foreach (var (roomId, rows) in state)
        {
            var fingerprint = string.Join(';', rows.Select(r => $"{r.EventId}/{r.RedactedBy}"));
            if (_described.TryGetValue(roomId, out var known) && known.Fingerprint == fingerprint)
            {
                described[roomId] = known.Entry;
            }
            else
            {
                stale.Add((roomId, fingerprint, rows));
            }
        }

        if (stale.Count > 0)
        {
            var events = await hs.Events.GetManyAsync(stale.SelectMany(s => s.Rows.Select(r => r.EventId)), ct);
            foreach (var (roomId, fingerprint, rows) in stale)
            {
                var entry = Describe(roomId, rows, events);
                described[roomId] = entry;
                _described[roomId] = (fingerprint, entry);
            }
        }

        // Rooms taken out of the directory leave the cache, so it holds only what is published.
        foreach (var roomId in _described.Keys)
        {
            if (!state.ContainsKey(roomId))
            {
                _described.TryRemove(roomId, out _);
            }
        }

        var listed = new List<PublicRoomEntry>(described.Count);
        foreach (var (roomId, description) in described)
        {
            var entry = description with { JoinedMembers = counts.GetValueOrDefault(roomId) };
            if (entry.JoinedMembers > 0 && entry.IsListable)
            {
                listed.Add(entry);
            }
        }

        return listed;
    }

    private static PublicRoomEntry Describe(string roomId, List<PublishedStateRow> rows, Dictionary<string, StoredEvent> events)
    {
        JsonObject? Content(string type) =>
            rows.FirstOrDefault(r => r.Type == type) is { } row && events.TryGetValue(row.EventId, out var e) ? e.Pdu.Content : null;

        return new PublicRoomEntry(
            roomId,
            0,
            Content(EventTypes.Name)?.GetString("name"),
            Content(EventTypes.Topic) is { } topic ? PlainTextTopic(topic) : null,
            Content(EventTypes.CanonicalAlias)?.GetString("alias"),
            Content("m.room.avatar")?.GetString("url"),
            Content(EventTypes.JoinRules)?.GetString("join_rule"),
            Content(EventTypes.HistoryVisibility)?.GetString("history_visibility"),
            Content(EventTypes.GuestAccess)?.GetString("guest_access"),
            Content(EventTypes.Create)?.GetString("type"));
    }

    /// <summary>The first <c>text/plain</c> representation of <c>m.topic</c> (a missing mimetype means plain text), else the <c>topic</c> string, as Synapse does.</summary>
    internal static string? PlainTextTopic(JsonObject content)
    {
        if (content.GetObject("m.topic")?["m.text"] is JsonArray texts)
        {
            foreach (var item in texts)
            {
                if (item is JsonObject t && t.GetString("body") is { } body && (t["mimetype"] is null || t.GetString("mimetype") == "text/plain"))
                {
                    return body;
                }
            }
        }

        return content.GetString("topic");
    }
}

/// <summary>
/// A pagination token of the public room list: a position in the order (joined members, room ID) and a direction.
/// Forward tokens select the rooms after the position, backward tokens those before it. Opaque to clients.
/// </summary>
public sealed record PageToken(bool Forwards, long JoinedMembers, string RoomId)
{
    /// <summary>A backward token from past the end of the list (every room comes before it).</summary>
    public static readonly PageToken BeforeEnd = new(false, -1, "");

    /// <summary>A forward token from before the start of the list (every room comes after it).</summary>
    public static readonly PageToken FromStart = new(true, long.MaxValue, "");

    /// <summary>The order of the list: most joined members first, then room ID (ordinal).</summary>
    public static int Compare(PublicRoomEntry a, PublicRoomEntry b)
    {
        var byMembers = b.JoinedMembers.CompareTo(a.JoinedMembers);
        return byMembers != 0 ? byMembers : string.CompareOrdinal(a.RoomId, b.RoomId);
    }

    /// <summary>Where this position lies relative to a room: negative before it, zero at it, positive after it.</summary>
    public int CompareTo(PublicRoomEntry room)
    {
        var byMembers = room.JoinedMembers.CompareTo(JoinedMembers);
        return byMembers != 0 ? byMembers : string.CompareOrdinal(RoomId, room.RoomId);
    }

    /// <summary>The token for the rooms after <paramref name="room"/>.</summary>
    public static PageToken After(PublicRoomEntry room) => new(true, room.JoinedMembers, room.RoomId);

    /// <summary>The token for the rooms before <paramref name="room"/>.</summary>
    public static PageToken Before(PublicRoomEntry room) => new(false, room.JoinedMembers, room.RoomId);

    /// <inheritdoc />
    public override string ToString() =>
        Base64Url($"{(Forwards ? 'n' : 'p')}{JoinedMembers}:{RoomId}");

    /// <summary>Parses a token from <see cref="ToString"/>; 400 M_INVALID_PARAM otherwise.</summary>
    public static PageToken Parse(string token)
    {
        string text;
        try
        {
            var b64 = token.Replace('-', '+').Replace('_', '/');
            text = Encoding.UTF8.GetString(Convert.FromBase64String(b64.PadRight(b64.Length + ((4 - (b64.Length % 4)) % 4), '=')));
        }
        catch (FormatException)
        {
            throw MatrixException.InvalidParam("Invalid pagination token");
        }

        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (text.Length < 3 || text[0] is not ('n' or 'p') || colon < 2
            || !long.TryParse(text.AsSpan(1, colon - 1), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var joined))
        {
            throw MatrixException.InvalidParam("Invalid pagination token");
        }

        return new PageToken(text[0] == 'n', joined, text[(colon + 1)..]);
    }

    private static string Base64Url(string text) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(text)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
