using Dapper;

namespace Lethe.Storage;

/// <summary>A receipt as stored.</summary>
public sealed record ReceiptRow
{
    /// <summary>Room.</summary>
    public required string RoomId { get; init; }

    /// <summary><c>m.read</c> or <c>m.read.private</c>.</summary>
    public required string ReceiptType { get; init; }

    /// <summary>Reader.</summary>
    public required string UserId { get; init; }

    /// <summary>Thread ID; empty for an unthreaded receipt.</summary>
    public required string ThreadId { get; init; }

    /// <summary>The event read up to.</summary>
    public required string EventId { get; init; }

    /// <summary>That event's stream position (to compare receipts).</summary>
    public long EventStream { get; init; }

    /// <summary>When the receipt was sent (ms).</summary>
    public long Ts { get; init; }

    /// <summary>Position in the receipts stream.</summary>
    public long StreamOrdering { get; init; }
}

/// <summary>Read receipts: the newest per (room, type, user, thread).</summary>
public sealed class ReceiptStore(Database db)
{
    private const string Columns = "room_id, receipt_type, user_id, thread_id, event_id, event_stream, ts, stream_ordering";

    /// <summary>
    /// Records a receipt unless the user already has one for a later event (receipts only move forward).
    /// Returns the new stream position, or null when nothing changed.
    /// </summary>
    public Task<long?> SetAsync(ReceiptRow receipt, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var existing = await tx.Connection!.ExecuteScalarAsync<long?>(
                "SELECT event_stream FROM receipts WHERE room_id = @RoomId AND receipt_type = @ReceiptType AND user_id = @UserId AND thread_id = @ThreadId", receipt, tx);
            if (existing is { } e && e >= receipt.EventStream)
            {
                return (long?)null;
            }

            var stream = await StreamPositions.NextAsync(tx, "receipts");
            await tx.Connection!.ExecuteAsync(
                $"""
                INSERT INTO receipts ({Columns}) VALUES (@RoomId, @ReceiptType, @UserId, @ThreadId, @EventId, @EventStream, @Ts, @stream)
                ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE SET event_id = @EventId, event_stream = @EventStream, ts = @Ts, stream_ordering = @stream
                """, new { receipt.RoomId, receipt.ReceiptType, receipt.UserId, receipt.ThreadId, receipt.EventId, receipt.EventStream, receipt.Ts, stream }, tx);
            return stream;
        }, ct);

    /// <summary>Every receipt changed in (since, upTo], in any room: an incremental sync reads this once and keeps its rooms' receipts.</summary>
    public Task<List<ReceiptRow>> ChangedSinceAsync(long since, long upTo, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<ReceiptRow>(
            $"SELECT {Columns} FROM receipts WHERE stream_ordering > @since AND stream_ordering <= @upTo", new { since, upTo })).ToList(), ct);

    /// <summary>Receipts in the given rooms changed in (since, upTo]; all current ones when since is 0.</summary>
    public async Task<List<ReceiptRow>> ChangedAsync(IReadOnlyCollection<string> roomIds, long since, long upTo, CancellationToken ct = default)
    {
        var result = new List<ReceiptRow>();
        foreach (var chunk in roomIds.Chunk(500))
        {
            result.AddRange(await db.ReadAsync(c => c.QueryAsync<ReceiptRow>(
                $"SELECT {Columns} FROM receipts WHERE stream_ordering > @since AND stream_ordering <= @upTo AND {db.In("room_id", "chunk")}",
                new { since, upTo, chunk = db.List(chunk) }), ct));
        }

        return result;
    }

    /// <summary>How far the user has read in a room, per thread ID ('' unthreaded, 'main', or a thread root), over public and private receipts.</summary>
    public Task<Dictionary<string, long>> ReadPositionsAsync(string userId, string roomId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<ThreadPositionRow>(
            "SELECT thread_id, MAX(event_stream) AS stream FROM receipts WHERE user_id = @userId AND room_id = @roomId GROUP BY thread_id",
            new { userId, roomId })).ToDictionary(r => r.ThreadId, r => r.Stream, StringComparer.Ordinal), ct);
}

internal readonly record struct ThreadPositionRow(string ThreadId, long Stream);
