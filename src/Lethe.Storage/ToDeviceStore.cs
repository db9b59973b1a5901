using System.Collections.Concurrent;
using Dapper;

namespace Lethe.Storage;

/// <summary>A to-device message waiting in a device's inbox.</summary>
public sealed record ToDeviceMessage(long StreamOrdering, byte[] MessageJson);

/// <summary>
/// Per-device inboxes of to-device messages, positioned in the to_device stream. A message stays until its device syncs
/// with a token past it, so a lost /sync response is delivered again and an acknowledged one never is.
/// </summary>
public sealed class ToDeviceStore(Database db)
{
    /// <summary>Stream name of to-device messages.</summary>
    public const string Stream = "to_device";

    /// <summary>
    /// Queues messages for local devices unless this sender already used <paramref name="txnId"/>. Returns the last
    /// stream position used, 0 when nothing was queued, or null when the transaction was a retry.
    /// </summary>
    public Task<long?> EnqueueAsync(string senderUserId, string senderDeviceId, string txnId, IReadOnlyList<(string UserId, string DeviceId, byte[] MessageJson)> messages, long now, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            // A session without a device (some appservice tokens) has nowhere to keep transaction IDs: it is not deduplicated.
            var inserted = senderDeviceId.Length == 0 ? 1 : await tx.Connection!.ExecuteAsync(
                "INSERT INTO to_device_txns (user_id, device_id, txn_id, created_ts) VALUES (@senderUserId, @senderDeviceId, @txnId, @now) ON CONFLICT DO NOTHING",
                new { senderUserId, senderDeviceId, txnId, now }, tx);
            if (inserted == 0)
            {
                return (long?)null;
            }

            if (messages.Count == 0)
            {
                return 0;
            }

            var first = await StreamPositions.NextAsync(tx, Stream, messages.Count);
            // A device deleted since the recipients were listed simply gets nothing (the foreign key would refuse the row).
            if (db.Engine == DatabaseEngine.Postgres)
            {
                // One statement for the whole fan-out: a row per recipient would be a network round trip each.
                var users = new string[messages.Count];
                var devices = new string[messages.Count];
                var streams = new long[messages.Count];
                var bodies = new byte[messages.Count][];
                for (var i = 0; i < messages.Count; i++)
                {
                    (users[i], devices[i], bodies[i]) = messages[i];
                    streams[i] = first + i;
                }

                await tx.Connection!.ExecuteAsync(
                    """
                    INSERT INTO to_device_inbox (user_id, device_id, stream_ordering, message_json)
                    SELECT t.u, t.d, t.s, t.m FROM unnest(@users, @devices, @streams, @bodies) AS t(u, d, s, m)
                    WHERE EXISTS (SELECT 1 FROM devices WHERE user_id = t.u AND device_id = t.d)
                    """, new { users = db.List(users), devices = db.List(devices), streams = db.List(streams), bodies = db.List(bodies) }, tx);
            }
            else
            {
                var rows = messages.Select((m, i) => new { m.UserId, m.DeviceId, stream = first + i, m.MessageJson }).ToList();

                await tx.Connection!.ExecuteAsync(
                    """
                    INSERT INTO to_device_inbox (user_id, device_id, stream_ordering, message_json)
                    SELECT @UserId, @DeviceId, @stream, @MessageJson WHERE EXISTS (SELECT 1 FROM devices WHERE user_id = @UserId AND device_id = @DeviceId)
                    """, rows, tx);
            }

            return first + messages.Count - 1;
        }, ct);

    /// <summary>Per device, the position up to which this process has already deleted acknowledged messages.</summary>
    private readonly ConcurrentDictionary<(string, string), long> _acknowledged = new();

    /// <summary>
    /// Deletes the device's messages at or before <paramref name="upTo"/>: the client has them (it synced with a token
    /// past them). Every sync calls this; after the first call for a token it costs nothing (positions only grow, and
    /// a new message always lands past the current position).
    /// </summary>
    public async Task AcknowledgeAsync(string userId, string deviceId, long upTo, CancellationToken ct = default)
    {
        if (_acknowledged.TryGetValue((userId, deviceId), out var done) && done >= upTo)
        {
            return;
        }

        var any = await db.ReadAsync(async c => await c.ExecuteScalarAsync<long?>(
            "SELECT stream_ordering FROM to_device_inbox WHERE user_id = @userId AND device_id = @deviceId AND stream_ordering <= @upTo LIMIT 1", new { userId, deviceId, upTo }) is not null, ct);
        if (any)
        {
            await db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
                "DELETE FROM to_device_inbox WHERE user_id = @userId AND device_id = @deviceId AND stream_ordering <= @upTo", new { userId, deviceId, upTo }, tx), ct);
        }

        _acknowledged.AddOrUpdate((userId, deviceId), upTo, (_, old) => Math.Max(old, upTo));
    }

    /// <summary>The device's messages in (<paramref name="after"/>, <paramref name="upTo"/>], oldest first, at most <paramref name="limit"/>.</summary>
    public Task<List<ToDeviceMessage>> PendingAsync(string userId, string deviceId, long after, long upTo, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<ToDeviceMessage>(
            "SELECT stream_ordering, message_json FROM to_device_inbox WHERE user_id = @userId AND device_id = @deviceId AND stream_ordering > @after AND stream_ordering <= @upTo ORDER BY stream_ordering LIMIT @limit",
            new { userId, deviceId, after, upTo, limit })).ToList(), ct);

    /// <summary>Forgets transaction IDs older than <paramref name="before"/> (ms), so the table does not grow forever.</summary>
    public Task<int> ForgetTransactionsAsync(long before, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync("DELETE FROM to_device_txns WHERE created_ts < @before", new { before }, tx), ct);

    /// <summary>Number of messages waiting for a device (tests and admin).</summary>
    public Task<long> CountAsync(string userId, string deviceId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM to_device_inbox WHERE user_id = @userId AND device_id = @deviceId", new { userId, deviceId }), ct);
}
