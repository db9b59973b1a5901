using Dapper;

namespace Lethe.Storage;

/// <summary>A content report: an event, a room or a user, as reported by <see cref="UserId"/>.</summary>
public sealed record ReportRecord
{
    /// <summary>Report ID.</summary>
    public long Id { get; init; }

    /// <summary>The room reported, or the room of the event reported; null for a user report.</summary>
    public string? RoomId { get; init; }

    /// <summary>The event reported; null for room and user reports.</summary>
    public string? EventId { get; init; }

    /// <summary>The user reported; null for event and room reports.</summary>
    public string? TargetUserId { get; init; }

    /// <summary>Who reported.</summary>
    public required string UserId { get; init; }

    /// <summary>The reporter's reason, if given.</summary>
    public string? Reason { get; init; }

    /// <summary>The score older clients send with event reports (-100 most offensive to 0), if given.</summary>
    public long? Score { get; init; }

    /// <summary>When the report arrived (ms).</summary>
    public long ReceivedTs { get; init; }
}

/// <summary>Content reports, kept for administrators.</summary>
public sealed class ReportStore(Database db)
{
    /// <summary>Stores a report and returns its ID.</summary>
    public Task<long> AddAsync(ReportRecord report, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteScalarAsync<long>(
            "INSERT INTO reports (room_id, event_id, target_user_id, user_id, reason, score, received_ts) VALUES (@RoomId, @EventId, @TargetUserId, @UserId, @Reason, @Score, @ReceivedTs) RETURNING id",
            report, tx), ct);

    /// <summary>Reports, newest first.</summary>
    public Task<List<ReportRecord>> ListAsync(int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<ReportRecord>(
            "SELECT id, room_id, event_id, target_user_id, user_id, reason, score, received_ts FROM reports ORDER BY id DESC LIMIT @limit", new { limit })).AsList(), ct);
}
