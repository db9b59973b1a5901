using Dapper;

namespace Lethe.Storage;

/// <summary>Finding a room's events by time (<c>GET /timestamp_to_event</c>).</summary>
public sealed class TimestampStore(Database db)
{
    private const string Columns = "event_id, stream_ordering, room_id, type, state_key, sender, origin_server_ts, depth, state_group, json, rejected_reason, redacted_by, received_ts, sender_device, txn_id";

    /// <summary>
    /// Accepted events of a room ordered by (origin_server_ts, stream_ordering), starting strictly after the key
    /// (<paramref name="ts"/>, <paramref name="stream"/>) going forwards, or strictly before it going backwards; the
    /// key of the last row continues the scan.
    /// </summary>
    public Task<List<EventRow>> ScanAsync(string roomId, long ts, long stream, bool forwards, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<EventRow>(
            forwards
                ? $"SELECT {Columns} FROM events WHERE room_id = @roomId AND rejected_reason IS NULL AND (origin_server_ts > @ts OR (origin_server_ts = @ts AND stream_ordering > @stream)) ORDER BY origin_server_ts, stream_ordering LIMIT @limit"
                : $"SELECT {Columns} FROM events WHERE room_id = @roomId AND rejected_reason IS NULL AND (origin_server_ts < @ts OR (origin_server_ts = @ts AND stream_ordering < @stream)) ORDER BY origin_server_ts DESC, stream_ordering DESC LIMIT @limit",
            new { roomId, ts, stream, limit })).ToList(), ct);
}
