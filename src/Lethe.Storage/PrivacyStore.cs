using Dapper;

namespace Lethe.Storage;

/// <summary>The personal data garbage collectors' queries: redacted content awaiting pruning, and client IP/user-agent records.</summary>
public sealed class PrivacyStore(Database db)
{
    /// <summary>
    /// Redacted events whose redaction arrived at or before <paramref name="cutoff"/>, in (redaction time, event ID)
    /// order after the given position, so a run can step past events it has to keep for now.
    /// </summary>
    public Task<List<PendingRedactionRow>> RedactionsDueAsync(long cutoff, long afterTs, string afterId, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<PendingRedactionRow>(
            """
            SELECT event_id, redacted_ts FROM redaction_gc_queue
            WHERE redacted_ts <= @cutoff AND (redacted_ts > @afterTs OR (redacted_ts = @afterTs AND event_id > @afterId))
            ORDER BY redacted_ts, event_id LIMIT @limit
            """, new { cutoff, afterTs, afterId, limit })).ToList(), ct);

    /// <summary>Takes an event off the redaction GC queue, in the caller's transaction.</summary>
    public static Task DequeueRedactionAsync(System.Data.Common.DbTransaction tx, string eventId) =>
        tx.Connection!.ExecuteAsync("DELETE FROM redaction_gc_queue WHERE event_id = @eventId", new { eventId }, tx);

    /// <summary>Forgets the IP address and user agent of devices last seen at or before <paramref name="cutoff"/>; returns how many devices had some.</summary>
    public Task<int> PruneClientIpsAsync(long cutoff, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            """
            UPDATE devices SET last_seen_ip = NULL, last_seen_user_agent = NULL
            WHERE last_seen_ts <= @cutoff AND (last_seen_ip IS NOT NULL OR last_seen_user_agent IS NOT NULL)
            """, new { cutoff }, tx), ct);

    /// <summary>Every erased user.</summary>
    public Task<List<string>> ErasedUsersAsync(CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>("SELECT user_id FROM erased_users")).ToList(), ct);

    /// <summary>
    /// Marks the user erased. With <paramref name="purgeAfterTs"/> the deletion of their data waits until then (see
    /// <see cref="PurgeErasedDataAsync"/>); without it the caller deletes it now.
    /// </summary>
    public Task MarkErasedAsync(string userId, long now, long? purgeAfterTs, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            """
            INSERT INTO erased_users (user_id, erased_ts, purge_after_ts, purged) VALUES (@userId, @now, @purgeAfterTs, @purged)
            ON CONFLICT (user_id) DO NOTHING
            """, new { userId, now, purgeAfterTs, purged = purgeAfterTs is null }, tx), ct);

    /// <summary>
    /// Deletes what the server holds about an erased user beyond their room events: profile, account data (room tags
    /// included), filters, presence, receipts and the reports they made; marks the erasure complete. Devices, tokens
    /// and the password went with deactivation.
    /// </summary>
    public Task PurgeErasedDataAsync(string userId, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var c = tx.Connection!;
            await c.ExecuteAsync("UPDATE profiles SET displayname = NULL, avatar_url = NULL WHERE user_id = @userId", new { userId }, tx);
            // reports.user_id is the reporter: the reports they made go (reports about them are the admins' evidence).
            foreach (var table in new[] { "account_data", "filters", "presence", "receipts", "reports" })
            {
                await c.ExecuteAsync($"DELETE FROM {table} WHERE user_id = @userId", new { userId }, tx);
            }

            await c.ExecuteAsync("UPDATE erased_users SET purged = TRUE WHERE user_id = @userId", new { userId }, tx);
        }, ct);

    /// <summary>Erasures whose grace period ended at or before <paramref name="now"/> and whose data is still stored.</summary>
    public Task<List<string>> ErasuresDueAsync(long now, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(
            "SELECT user_id FROM erased_users WHERE NOT purged AND purge_after_ts <= @now ORDER BY purge_after_ts", new { now })).ToList(), ct);

    /// <summary>Cancels an erasure still in its grace period; false when there is none or it is complete.</summary>
    public Task<bool> CancelErasureAsync(string userId, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync("DELETE FROM erased_users WHERE user_id = @userId AND NOT purged", new { userId }, tx) == 1, ct);

    /// <summary>
    /// Rooms every local member has left and forgotten, the last of them at or before <paramref name="cutoff"/>:
    /// no local user is joined, invited or knocking, and every local user with a membership has forgotten the room.
    /// </summary>
    public Task<List<string>> ForgottenRoomsAsync(string serverName, long cutoff, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(
            """
            SELECT f.room_id FROM room_forgotten f
            GROUP BY f.room_id
            HAVING MAX(f.forgotten_ts) <= @cutoff AND NOT EXISTS (
                SELECT 1 FROM current_state cs
                WHERE cs.room_id = f.room_id AND cs.type = 'm.room.member' AND cs.state_key LIKE @local ESCAPE '\'
                  AND (cs.membership IN ('join', 'invite', 'knock')
                       OR NOT EXISTS (SELECT 1 FROM room_forgotten f2 WHERE f2.room_id = cs.room_id AND f2.user_id = cs.state_key)))
            """, new { cutoff, local = "%:" + serverName.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal) })).ToList(), ct);

    /// <summary>The room's non-state events, a batch at a time (oldest first), for deleting a room in steps.</summary>
    public Task<List<string>> RoomEventBatchAsync(string roomId, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(
            "SELECT event_id FROM events WHERE room_id = @roomId AND state_key IS NULL ORDER BY stream_ordering LIMIT @limit", new { roomId, limit })).ToList(), ct);

    /// <summary>Deletes what is left of a room (its state events and every row about it), in the caller's transaction; returns the events deleted.</summary>
    public static async Task<int> DeleteRoomAsync(System.Data.Common.DbTransaction tx, string roomId)
    {
        var c = tx.Connection!;
        const string RoomEvents = "SELECT event_id FROM events WHERE room_id = @roomId";
        foreach (var sql in new[]
        {
            RetentionStore.TxnRowsDelete("e.room_id = @roomId"),
            $"DELETE FROM redaction_gc_queue WHERE event_id IN ({RoomEvents})",
            "DELETE FROM event_relations WHERE room_id = @roomId",
            "DELETE FROM event_push_actions WHERE room_id = @roomId",
            "DELETE FROM event_expiries WHERE room_id = @roomId",
            "DELETE FROM receipts WHERE room_id = @roomId",
            "DELETE FROM account_data WHERE room_id = @roomId",
            "DELETE FROM room_forgotten WHERE room_id = @roomId",
            "DELETE FROM room_aliases WHERE room_id = @roomId",
            "DELETE FROM room_retention_overrides WHERE room_id = @roomId",
            "DELETE FROM current_state WHERE room_id = @roomId",
            "DELETE FROM room_forward_extremities WHERE room_id = @roomId",
            "DELETE FROM state_group_entries WHERE state_group IN (SELECT id FROM state_groups WHERE room_id = @roomId)",
            "DELETE FROM state_groups WHERE room_id = @roomId",
        })
        {
            await c.ExecuteAsync(sql, new { roomId, send = "send:" + roomId, redact = "redact:" + roomId }, tx);
        }

        var events = await c.ExecuteAsync("DELETE FROM events WHERE room_id = @roomId", new { roomId }, tx);
        await c.ExecuteAsync("DELETE FROM rooms WHERE room_id = @roomId", new { roomId }, tx);
        return events;
    }

    /// <summary>Events a user sent after stream position <paramref name="after"/>, oldest first, a page at a time (for data export).</summary>
    public Task<List<EventRow>> SentEventsAsync(string userId, long after, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<EventRow>(
            $"SELECT {EventStore.Columns} FROM events WHERE sender = @userId AND stream_ordering > @after AND rejected_reason IS NULL ORDER BY stream_ordering LIMIT @limit",
            new { userId, after, limit })).ToList(), ct);

    /// <summary>All of a user's account data: global (room ID empty) and per room.</summary>
    public Task<List<AccountDataRow>> AccountDataAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<AccountDataRow>(
            "SELECT room_id, type, content, stream_ordering FROM account_data WHERE user_id = @userId ORDER BY room_id, type", new { userId })).ToList(), ct);

    /// <summary>The user's stored sync filters, oldest first (for data export).</summary>
    public Task<List<FilterRow>> FiltersAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<FilterRow>(
            "SELECT filter_id, json FROM filters WHERE user_id = @userId ORDER BY filter_id", new { userId })).ToList(), ct);

    /// <summary>The user's current receipts, public and private, in every room (for data export).</summary>
    public Task<List<ReceiptRow>> ReceiptsAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<ReceiptRow>(
            "SELECT room_id, receipt_type, user_id, thread_id, event_id, event_stream, ts, stream_ordering FROM receipts WHERE user_id = @userId ORDER BY room_id, receipt_type, thread_id",
            new { userId })).ToList(), ct);

    /// <summary>The user's key backup versions that were not deleted, with how many keys each holds (for data export).</summary>
    public Task<List<BackupVersionSummaryRow>> KeyBackupVersionsAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<BackupVersionSummaryRow>(
            """
            SELECT v.version, v.algorithm, v.auth_data, v.etag,
                   (SELECT COUNT(*) FROM room_key_backup_keys k WHERE k.user_id = v.user_id AND k.version = v.version) AS keys
            FROM room_key_backup_versions v WHERE v.user_id = @userId AND v.deleted = FALSE ORDER BY v.version
            """, new { userId })).ToList(), ct);

    /// <summary>How many events the user has sent that are still stored, and how many account data entries they have.</summary>
    public Task<(long SentEvents, long AccountData)> CountsAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (
            await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM events WHERE sender = @userId", new { userId }),
            await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM account_data WHERE user_id = @userId", new { userId })), ct);

    /// <summary>The user's redacted events whose original content is still stored, with when the redaction arrived.</summary>
    public Task<List<PendingRedactionRow>> PendingRedactionsOfAsync(string userId, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<PendingRedactionRow>(
            """
            SELECT q.event_id, q.redacted_ts FROM redaction_gc_queue q JOIN events e ON e.event_id = q.event_id
            WHERE e.sender = @userId ORDER BY q.redacted_ts LIMIT @limit
            """, new { userId, limit })).ToList(), ct);

    /// <summary>The policy version the user consented to, or null.</summary>
    public Task<string?> ConsentVersionAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<string?>("SELECT version FROM user_consents WHERE user_id = @userId", new { userId }), ct);

    /// <summary>Records the user's consent to a policy version.</summary>
    public Task SetConsentAsync(string userId, string version, long now, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "INSERT INTO user_consents (user_id, version, consented_ts) VALUES (@userId, @version, @now) ON CONFLICT (user_id) DO UPDATE SET version = @version, consented_ts = @now",
            new { userId, version, now }, tx), ct);

    /// <summary>Marks the consent notice for a version as sent; false when it already was.</summary>
    public Task<bool> TryMarkConsentNoticeAsync(string userId, string version, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var c = tx.Connection!;
            if (await c.ExecuteScalarAsync<string?>("SELECT version FROM consent_notices WHERE user_id = @userId", new { userId }, tx) == version)
            {
                return false;
            }

            await c.ExecuteAsync(
                "INSERT INTO consent_notices (user_id, version) VALUES (@userId, @version) ON CONFLICT (user_id) DO UPDATE SET version = @version",
                new { userId, version }, tx);
            return true;
        }, ct);

    /// <summary>The user's consent record: the version and when, or null.</summary>
    public Task<(string Version, long ConsentedTs)?> ConsentAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<ConsentRow>(
            "SELECT version, consented_ts FROM user_consents WHERE user_id = @userId", new { userId })).Select(r => ((string, long)?)(r.Version, r.ConsentedTs)).FirstOrDefault(), ct);
}

/// <summary>A redacted event whose original content is still stored, and when its redaction arrived.</summary>
public readonly record struct PendingRedactionRow(string EventId, long RedactedTs);

/// <summary>A stored sync filter.</summary>
public readonly record struct FilterRow(long FilterId, byte[] Json);

/// <summary>A key backup version with how many keys it holds.</summary>
public readonly record struct BackupVersionSummaryRow(long Version, string Algorithm, byte[] AuthData, long Etag, long Keys);

internal readonly record struct ConsentRow(string Version, long ConsentedTs);
