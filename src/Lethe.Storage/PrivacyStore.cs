using Dapper;

namespace Lethe.Storage;

/// <summary>The personal data garbage collectors' queries: redacted content awaiting pruning, and client IP/user-agent records.</summary>
public sealed class PrivacyStore(Database db)
{
    /// <summary>
    /// Redacted events whose redaction arrived at or before <paramref name="cutoff"/>, in (redaction time, event ID)
    /// order after the given position, so a run can step past events it has to keep for now.
    /// </summary>
    public Task<List<(string EventId, long RedactedTs)>> RedactionsDueAsync(long cutoff, long afterTs, string afterId, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<(string, long)>(
            """
            SELECT event_id, redacted_ts FROM redaction_gc_queue
            WHERE redacted_ts <= @cutoff AND (redacted_ts > @afterTs OR (redacted_ts = @afterTs AND event_id > @afterId))
            ORDER BY redacted_ts, event_id LIMIT @limit
            """, new { cutoff, afterTs, afterId, limit })).AsList(), ct);

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
        db.ReadAsync(async c => (await c.QueryAsync<string>("SELECT user_id FROM erased_users")).AsList(), ct);

    /// <summary>
    /// Marks the user erased and deletes what the server holds about them beyond their room events: profile, account
    /// data (room tags included), filters, presence and receipts. Devices, tokens and the password go with deactivation.
    /// </summary>
    public Task EraseAsync(string userId, long now, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var c = tx.Connection!;
            await c.ExecuteAsync("INSERT INTO erased_users (user_id, erased_ts) VALUES (@userId, @now) ON CONFLICT (user_id) DO NOTHING", new { userId, now }, tx);
            await c.ExecuteAsync("UPDATE profiles SET displayname = NULL, avatar_url = NULL WHERE user_id = @userId", new { userId }, tx);
            foreach (var table in new[] { "account_data", "filters", "presence", "receipts" })
            {
                await c.ExecuteAsync($"DELETE FROM {table} WHERE user_id = @userId", new { userId }, tx);
            }
        }, ct);
}
