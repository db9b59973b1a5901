using System.Data.Common;
using Dapper;

namespace Lethe.Storage;

/// <summary>A server admin's retention override for one room (milliseconds; null means "not set").</summary>
public sealed record RetentionOverride(string RoomId, long? MinLifetime, long? MaxLifetime, long UpdatedTs);

/// <summary>Retention: per-room overrides, expired-event selection and the purge itself, self-destruct schedules.</summary>
public sealed class RetentionStore(Database db)
{
    /// <summary>The override for a room, or null.</summary>
    public Task<RetentionOverride?> GetOverrideAsync(string roomId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.QuerySingleOrDefaultAsync<RetentionOverride>(
            "SELECT room_id, min_lifetime, max_lifetime, updated_ts FROM room_retention_overrides WHERE room_id = @roomId", new { roomId }), ct);

    /// <summary>Every override.</summary>
    public Task<List<RetentionOverride>> ListOverridesAsync(CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<RetentionOverride>(
            "SELECT room_id, min_lifetime, max_lifetime, updated_ts FROM room_retention_overrides ORDER BY room_id")).ToList(), ct);

    /// <summary>Sets a room's override.</summary>
    public Task SetOverrideAsync(RetentionOverride value, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            """
            INSERT INTO room_retention_overrides (room_id, min_lifetime, max_lifetime, updated_ts) VALUES (@RoomId, @MinLifetime, @MaxLifetime, @UpdatedTs)
            ON CONFLICT (room_id) DO UPDATE SET min_lifetime = @MinLifetime, max_lifetime = @MaxLifetime, updated_ts = @UpdatedTs
            """, value, tx), ct);

    /// <summary>Removes a room's override; false when there was none.</summary>
    public Task<bool> DeleteOverrideAsync(string roomId, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync("DELETE FROM room_retention_overrides WHERE room_id = @roomId", new { roomId }, tx) == 1, ct);

    /// <summary>Every room this server has.</summary>
    public Task<List<string>> AllRoomsAsync(CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>("SELECT room_id FROM rooms ORDER BY room_id")).ToList(), ct);

    /// <summary>Rooms with a retention policy of their own: an m.room.retention state event or an override.</summary>
    public Task<List<string>> RoomsWithPolicyAsync(CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(
            """
            SELECT room_id FROM current_state WHERE type = 'm.room.retention' AND state_key = ''
            UNION SELECT room_id FROM room_retention_overrides ORDER BY 1
            """)).ToList(), ct);

    /// <summary>
    /// Up to <paramref name="limit"/> non-state events of a room sent at or before <paramref name="cutoffTs"/> (the
    /// same boundary that hides them), oldest first, leaving out the room's forward extremities (the DAG's newest
    /// events, which later events must be able to cite).
    /// </summary>
    public Task<List<string>> ExpiredBatchAsync(string roomId, long cutoffTs, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(
            """
            SELECT e.event_id FROM events e
            WHERE e.room_id = @roomId AND e.origin_server_ts <= @cutoffTs AND e.state_key IS NULL
              AND NOT EXISTS (SELECT 1 FROM room_forward_extremities x WHERE x.room_id = e.room_id AND x.event_id = e.event_id)
            ORDER BY e.origin_server_ts LIMIT @limit
            """, new { roomId, cutoffTs, limit })).ToList(), ct);

    /// <summary>The send time of the room's oldest message (non-state event) sent after <paramref name="afterTs"/>, or null.</summary>
    public Task<long?> OldestMessageAfterAsync(string roomId, long afterTs, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long?>(
            "SELECT MIN(origin_server_ts) FROM events WHERE room_id = @roomId AND state_key IS NULL AND origin_server_ts > @afterTs",
            new { roomId, afterTs }), ct);

    /// <summary>
    /// Of the given media, those that messages (non-state events) name, with each naming room and the newest such
    /// message there: what a room's min_lifetime may still hold.
    /// </summary>
    public Task<List<MediaNamingRow>> MessagesNamingAsync(IReadOnlyList<string> mediaIds, CancellationToken ct = default) =>
        mediaIds.Count == 0 ? Task.FromResult(new List<MediaNamingRow>()) : db.ReadAsync(async c =>
        {
            var ids = db.List(mediaIds);
            var inIds = db.In("r.media_id", "ids");
            return (await c.QueryAsync<MediaNamingRow>(
                $"""
                SELECT r.media_id, e.room_id, MAX(e.origin_server_ts) AS newest_ts FROM media_references r JOIN events e ON e.event_id = r.event_id
                WHERE {inIds} AND e.state_key IS NULL
                GROUP BY r.media_id, e.room_id
                """, new { ids })).ToList();
        }, ct);

    /// <summary>
    /// Deletes events of one room and every row derived from them, in the caller's transaction. Receipts that
    /// pointed at a purged event are moved to the newest surviving event before it, keeping their read position
    /// (unread counts use that position) without naming a deleted event.
    /// </summary>
    public async Task<int> PurgeAsync(DbTransaction tx, string roomId, IReadOnlyList<string> eventIds)
    {
        if (eventIds.Count == 0)
        {
            return 0;
        }

        var conn = tx.Connection!;
        var ids = db.List(eventIds);
        string In(string col) => db.In(col, "ids");
        string NotIn(string col) => db.NotIn(col, "ids");
        await conn.ExecuteAsync(
            $"""
            UPDATE receipts SET event_id = (
                SELECT e.event_id FROM events e
                WHERE e.room_id = receipts.room_id AND e.stream_ordering <= receipts.event_stream AND {NotIn("e.event_id")}
                ORDER BY e.stream_ordering DESC LIMIT 1)
            WHERE room_id = @roomId AND {In("event_id")}
            """, new { roomId, ids }, tx);
        await conn.ExecuteAsync($"DELETE FROM event_relations WHERE {In("event_id")}", new { ids }, tx);
        await conn.ExecuteAsync($"DELETE FROM event_expiries WHERE {In("event_id")}", new { ids }, tx);
        await conn.ExecuteAsync($"DELETE FROM redaction_gc_queue WHERE {In("event_id")}", new { ids }, tx);
        await PushStore.DeleteActionsAsync(tx, In("event_id"), ids);

        // The rows say which transaction IDs to forget, so those are deleted by their key without reading the events
        // again: a join back to events for them cost a quarter as much as the events' own deletion.
        var deleted = (await conn.QueryAsync<PurgedEventRow>(
            $"DELETE FROM events WHERE room_id = @roomId AND {In("event_id")} RETURNING sender, sender_device AS device, txn_id", new { roomId, ids }, tx)).ToList();
        var sent = deleted.Where(e => e.Device is not null && e.TxnId is not null).Select(e => (e.Sender, e.Device!, e.TxnId!)).ToList();
        if (sent.Count > 0)
        {
            await DeleteTxnIdsAsync(tx, roomId, sent);
        }

        return deleted.Count;
    }

    /// <summary>Deletes the transaction IDs of sent events, given as (sender, device, transaction ID), in each of the room's scopes.</summary>
    private async Task DeleteTxnIdsAsync(DbTransaction tx, string roomId, List<(string User, string Device, string TxnId)> sent)
    {
        const string Scopes = "(SELECT CAST(@send AS TEXT) AS scope UNION ALL SELECT CAST(@redact AS TEXT) UNION ALL SELECT 'server_notice') s";
        var send = "send:" + roomId;
        var redact = "redact:" + roomId;
        if (db.Engine == DatabaseEngine.Postgres)
        {
            await tx.Connection!.ExecuteAsync(
                $"""
                DELETE FROM event_txns WHERE (user_id, device_id, scope, txn_id) IN (
                    SELECT x.u, x.d, s.scope, x.t FROM unnest(@users, @devices, @txnIds) AS x(u, d, t), {Scopes})
                """,
                new { users = db.List(sent.ConvertAll(e => e.User)), devices = db.List(sent.ConvertAll(e => e.Device)), txnIds = db.List(sent.ConvertAll(e => e.TxnId)), send, redact },
                tx);
            return;
        }

        var txns = Database.JsonArrayText(sent.ConvertAll(e => (object?)new[] { e.User, e.Device, e.TxnId }));
        await tx.Connection!.ExecuteAsync(
            $"""
            DELETE FROM event_txns WHERE (user_id, device_id, scope, txn_id) IN (
                SELECT json_extract(x.value, '$[0]'), json_extract(x.value, '$[1]'), s.scope, json_extract(x.value, '$[2]') FROM json_each(@txns) x, {Scopes})
            """, new { txns, send, redact }, tx);
    }

    /// <summary>
    /// Deletes the transaction IDs of the events matching <paramref name="eventCondition"/> (on <c>events e</c>; parameters
    /// <c>@send</c> and <c>@redact</c> are the room's two scopes), found by their primary key from what the events row
    /// records (sender, device, transaction ID): the table has no index on <c>event_id</c>, so deleting by it read every
    /// transaction ID ever kept. Room deletion uses it; a purge batch takes the same columns from its own DELETE.
    /// </summary>
    internal static string TxnRowsDelete(string eventCondition) =>
        $"""
        DELETE FROM event_txns WHERE (user_id, device_id, scope, txn_id) IN (
            SELECT e.sender, e.sender_device, s.scope, e.txn_id
            FROM events e, (SELECT CAST(@send AS TEXT) AS scope UNION ALL SELECT CAST(@redact AS TEXT) UNION ALL SELECT 'server_notice') s
            WHERE {eventCondition} AND e.txn_id IS NOT NULL AND e.sender_device IS NOT NULL)
        """;

    /// <summary>Schedules a self-destructing event.</summary>
    public static Task ScheduleExpiryAsync(DbTransaction tx, string eventId, string roomId, long expiryTs) =>
        tx.Connection!.ExecuteAsync(
            "INSERT INTO event_expiries (event_id, room_id, expiry_ts) VALUES (@eventId, @roomId, @expiryTs) ON CONFLICT (event_id) DO UPDATE SET expiry_ts = @expiryTs",
            new { eventId, roomId, expiryTs }, tx);

    /// <summary>Scheduled expiries due at <paramref name="now"/>, soonest first.</summary>
    public Task<List<DueExpiryRow>> DueExpiriesAsync(long now, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<DueExpiryRow>(
            "SELECT event_id, room_id, expiry_ts FROM event_expiries WHERE expiry_ts <= @now ORDER BY expiry_ts LIMIT @limit", new { now, limit })).ToList(), ct);

    /// <summary>The earliest scheduled expiry, or null.</summary>
    public Task<long?> NextExpiryAsync(CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long?>("SELECT MIN(expiry_ts) FROM event_expiries"), ct);

    /// <summary>
    /// Redacts an event in place in the caller's transaction: marks it redacted by <paramref name="marker"/> and,
    /// when <paramref name="prunedJson"/> is given, replaces its stored JSON with the pruned form (the original is gone).
    /// </summary>
    public static async Task RedactInPlaceAsync(DbTransaction tx, string eventId, string marker, byte[]? prunedJson)
    {
        var conn = tx.Connection!;
        await conn.ExecuteAsync("UPDATE events SET redacted_by = COALESCE(redacted_by, @marker) WHERE event_id = @eventId", new { eventId, marker }, tx);
        if (prunedJson is not null)
        {
            await conn.ExecuteAsync("UPDATE events SET json = @prunedJson WHERE event_id = @eventId", new { eventId, prunedJson = (object)prunedJson }, tx);
            await conn.ExecuteAsync("DELETE FROM event_relations WHERE event_id = @eventId", new { eventId }, tx);
        }
    }

    /// <summary>Removes a schedule (done, or the event is gone).</summary>
    public static Task UnscheduleAsync(DbTransaction tx, string eventId) =>
        tx.Connection!.ExecuteAsync("DELETE FROM event_expiries WHERE event_id = @eventId", new { eventId }, tx);
}

/// <summary>A medium named by messages of a room, with the newest such message's send time.</summary>
public readonly record struct MediaNamingRow(string MediaId, string RoomId, long NewestTs);

internal readonly record struct PurgedEventRow(string Sender, string? Device, string? TxnId);

/// <summary>A self-destruct expiry that is due.</summary>
public readonly record struct DueExpiryRow(string EventId, string RoomId, long ExpiryTs);
