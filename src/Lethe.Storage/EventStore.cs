using System.Data.Common;
using Dapper;

namespace Lethe.Storage;

/// <summary>An event row: indexed columns plus the canonical federation JSON.</summary>
public sealed record EventRow
{
    /// <summary>Event ID.</summary>
    public required string EventId { get; init; }

    /// <summary>Position in the events stream.</summary>
    public long StreamOrdering { get; init; }

    /// <summary>Room.</summary>
    public required string RoomId { get; init; }

    /// <summary>Event type.</summary>
    public required string Type { get; init; }

    /// <summary>State key; null for non-state events.</summary>
    public string? StateKey { get; init; }

    /// <summary>Sender.</summary>
    public required string Sender { get; init; }

    /// <summary>Sender's timestamp (ms).</summary>
    public long OriginServerTs { get; init; }

    /// <summary>DAG depth.</summary>
    public long Depth { get; init; }

    /// <summary>State group of the room state before the event.</summary>
    public long StateGroup { get; init; }

    /// <summary>Canonical JSON of the federation form.</summary>
    public required byte[] Json { get; init; }

    /// <summary>Why the event was rejected; null when accepted.</summary>
    public string? RejectedReason { get; init; }

    /// <summary>The redaction applied to this event, if any.</summary>
    public string? RedactedBy { get; init; }

    /// <summary>When this server received or created it (ms).</summary>
    public long ReceivedTs { get; init; }

    /// <summary>The local device that sent it, if any.</summary>
    public string? SenderDevice { get; init; }

    /// <summary>The client transaction ID it was sent with, if any.</summary>
    public string? TxnId { get; init; }
}

/// <summary>Events, forward extremities and relations.</summary>
public sealed class EventStore(Database db)
{
    internal const string Columns = "event_id, stream_ordering, room_id, type, state_key, sender, origin_server_ts, depth, state_group, json, rejected_reason, redacted_by, received_ts, sender_device, txn_id";

    /// <summary>Inserts an event in the caller's transaction.</summary>
    public static Task InsertAsync(DbTransaction tx, EventRow e) =>
        WriteCommands.ExecuteAsync(
            tx,
            $"INSERT INTO events ({Columns}) VALUES (@EventId, @StreamOrdering, @RoomId, @Type, @StateKey, @Sender, @OriginServerTs, @Depth, @StateGroup, @Json, @RejectedReason, @RedactedBy, @ReceivedTs, @SenderDevice, @TxnId)",
            ("EventId", e.EventId), ("StreamOrdering", e.StreamOrdering), ("RoomId", e.RoomId), ("Type", e.Type), ("StateKey", e.StateKey),
            ("Sender", e.Sender), ("OriginServerTs", e.OriginServerTs), ("Depth", e.Depth), ("StateGroup", e.StateGroup), ("Json", e.Json),
            ("RejectedReason", e.RejectedReason), ("RedactedBy", e.RedactedBy), ("ReceivedTs", e.ReceivedTs), ("SenderDevice", e.SenderDevice), ("TxnId", e.TxnId));

    /// <summary>Replaces the cited prev_events by the new event among the room's forward extremities.</summary>
    public static async Task UpdateForwardExtremitiesAsync(DbTransaction tx, string roomId, IEnumerable<string> prevEvents, string eventId)
    {
        foreach (var prev in prevEvents)
        {
            await WriteCommands.ExecuteAsync(tx, "DELETE FROM room_forward_extremities WHERE room_id = @roomId AND event_id = @prev", ("roomId", roomId), ("prev", prev));
        }

        await WriteCommands.ExecuteAsync(
            tx, "INSERT INTO room_forward_extremities (room_id, event_id) VALUES (@roomId, @eventId) ON CONFLICT DO NOTHING", ("roomId", roomId), ("eventId", eventId));
    }

    /// <summary>Marks an event as redacted by a redaction event, in the caller's transaction.</summary>
    public static async Task MarkRedactedAsync(DbTransaction tx, string eventId, string redactionId, long redactedTs)
    {
        var changed = await WriteCommands.ExecuteAsync(
            tx, "UPDATE events SET redacted_by = @redactionId WHERE event_id = @eventId AND redacted_by IS NULL", ("redactionId", redactionId), ("eventId", eventId));
        if (changed > 0)
        {
            // The original content stays (servers may still need it briefly) until redaction GC prunes it.
            await WriteCommands.ExecuteAsync(
                tx, "INSERT INTO redaction_gc_queue (event_id, redacted_ts) VALUES (@eventId, @redactedTs) ON CONFLICT (event_id) DO NOTHING", ("eventId", eventId), ("redactedTs", redactedTs));
        }
    }

    /// <summary>Records an event's relation, in the caller's transaction.</summary>
    public static Task InsertRelationAsync(DbTransaction tx, string eventId, string roomId, string relatesTo, string relType, string? aggregationKey) =>
        WriteCommands.ExecuteAsync(
            tx,
            "INSERT INTO event_relations (event_id, room_id, relates_to_id, rel_type, aggregation_key) VALUES (@eventId, @roomId, @relatesTo, @relType, @aggregationKey) ON CONFLICT DO NOTHING",
            ("eventId", eventId), ("roomId", roomId), ("relatesTo", relatesTo), ("relType", relType), ("aggregationKey", aggregationKey));

    /// <summary>One event, or null.</summary>
    public Task<EventRow?> GetAsync(string eventId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.QuerySingleOrDefaultAsync<EventRow>($"SELECT {Columns} FROM events WHERE event_id = @eventId", new { eventId }), ct);

    /// <summary>Several events by ID (missing ones are left out).</summary>
    public async Task<Dictionary<string, EventRow>> GetManyAsync(IReadOnlyCollection<string> eventIds, CancellationToken ct = default)
    {
        var result = new Dictionary<string, EventRow>(eventIds.Count, StringComparer.Ordinal);
        if (eventIds.Count == 0)
        {
            return result;
        }

        foreach (var chunk in eventIds.Distinct().Chunk(500))
        {
            var rows = await db.ReadAsync(c => c.QueryAsync<EventRow>($"SELECT {Columns} FROM events WHERE {db.In("event_id", "chunk")}", new { chunk = db.List(chunk) }), ct);
            foreach (var row in rows)
            {
                result[row.EventId] = row;
            }
        }

        return result;
    }

    /// <summary>The room's forward extremities.</summary>
    public Task<List<string>> ForwardExtremitiesAsync(string roomId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>("SELECT event_id FROM room_forward_extremities WHERE room_id = @roomId", new { roomId })).ToList(), ct);

    /// <summary>
    /// A page of a room's events by stream position: newest first from <paramref name="before"/> (exclusive) when
    /// <paramref name="backwards"/>, else oldest first from <paramref name="after"/> (exclusive); bounded by the other limit.
    /// </summary>
    public Task<List<EventRow>> RoomPageAsync(string roomId, long after, long before, bool backwards, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<EventRow>(
            $"SELECT {Columns} FROM events WHERE room_id = @roomId AND stream_ordering > @after AND stream_ordering < @before AND rejected_reason IS NULL ORDER BY stream_ordering {(backwards ? "DESC" : "ASC")} LIMIT @limit",
            new { roomId, after, before, limit })).ToList(), ct);

    /// <summary>Events in the given rooms with stream position in (after, upTo], oldest first.</summary>
    public async Task<List<EventRow>> EventsInRoomsAsync(IReadOnlyCollection<string> roomIds, long after, long upTo, CancellationToken ct = default)
    {
        var result = new List<EventRow>();
        if (roomIds.Count == 0 || after >= upTo)
        {
            return result;
        }

        foreach (var chunk in roomIds.Chunk(500))
        {
            result.AddRange(await db.ReadAsync(c => c.QueryAsync<EventRow>(
                $"SELECT {Columns} FROM events WHERE stream_ordering > @after AND stream_ordering <= @upTo AND {db.In("room_id", "chunk")} AND rejected_reason IS NULL",
                new { after, upTo, chunk = db.List(chunk) }), ct));
        }

        result.Sort((a, b) => a.StreamOrdering.CompareTo(b.StreamOrdering));
        return result;
    }

    /// <summary>A user's membership events in a room, oldest first: the membership timeline used by the visibility rules.</summary>
    public Task<List<EventRow>> MembershipHistoryAsync(string roomId, string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<EventRow>(
            $"SELECT {Columns} FROM events WHERE type = 'm.room.member' AND state_key = @userId AND room_id = @roomId AND rejected_reason IS NULL ORDER BY stream_ordering",
            new { userId, roomId })).ToList(), ct);

    /// <summary>Events relating to <paramref name="eventId"/>, optionally of one relation type, newest first.</summary>
    public Task<List<RelationChildRow>> RelationsAsync(string eventId, string? relType, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<RelationChildRow>(
            relType is null
                ? "SELECT event_id, rel_type, aggregation_key FROM event_relations WHERE relates_to_id = @eventId"
                : "SELECT event_id, rel_type, aggregation_key FROM event_relations WHERE relates_to_id = @eventId AND rel_type = @relType",
            new { eventId, relType })).ToList(), ct);
}

/// <summary>An event relating to another: its ID, relation type and annotation key.</summary>
public readonly record struct RelationChildRow(string EventId, string RelType, string? AggregationKey);
