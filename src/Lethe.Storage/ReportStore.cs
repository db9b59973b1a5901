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

/// <summary>Content reports, kept for administrators until <c>report_retention_period</c> or the reporter's erasure.</summary>
public sealed class ReportStore(Database db)
{
    /// <summary>Stores a report and returns its ID.</summary>
    public Task<long> AddAsync(ReportRecord report, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteScalarAsync<long>(
            "INSERT INTO reports (room_id, event_id, target_user_id, user_id, reason, score, received_ts) VALUES (@RoomId, @EventId, @TargetUserId, @UserId, @Reason, @Score, @ReceivedTs) RETURNING id",
            report, tx), ct);

    private const string Columns = "id, room_id, event_id, target_user_id, user_id, reason, score, received_ts";

    /// <summary>Reports, newest first.</summary>
    public Task<List<ReportRecord>> ListAsync(int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<ReportRecord>(
            $"SELECT {Columns} FROM reports ORDER BY id DESC LIMIT @limit", new { limit })).ToList(), ct);

    /// <summary>
    /// A page of event reports (oldest first, or newest first when <paramref name="backwards"/>), optionally only those
    /// whose reporter or room ID contains the given text (as Synapse filters), with the number of matching reports.
    /// </summary>
    public Task<(List<ReportRecord> Page, long Total)> EventReportsAsync(long from, int limit, bool backwards, string? reporter, string? roomId, CancellationToken ct = default) =>
        db.ReadAsync(async c =>
        {
            var where = "event_id IS NOT NULL"
                + (reporter is null ? "" : @" AND user_id LIKE @reporter ESCAPE '\'")
                + (roomId is null ? "" : @" AND room_id LIKE @roomId ESCAPE '\'");
            var args = new { from, limit, reporter = Contains(reporter), roomId = Contains(roomId) };
            var page = (await c.QueryAsync<ReportRecord>(
                $"SELECT {Columns} FROM reports WHERE {where} ORDER BY id {(backwards ? "DESC" : "ASC")} LIMIT @limit OFFSET @from", args)).ToList();
            return (page, await c.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM reports WHERE {where}", args));
        }, ct);

    /// <summary>One report, or null.</summary>
    public Task<ReportRecord?> GetAsync(long id, CancellationToken ct = default) =>
        db.ReadAsync(c => c.QuerySingleOrDefaultAsync<ReportRecord>($"SELECT {Columns} FROM reports WHERE id = @id", new { id }), ct);

    /// <summary>Deletes one report; false when there was none.</summary>
    public Task<bool> DeleteAsync(long id, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync("DELETE FROM reports WHERE id = @id", new { id }, tx) == 1, ct);

    /// <summary>The reports a user made, oldest first (for their data export).</summary>
    public Task<List<ReportRecord>> ByReporterAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<ReportRecord>(
            $"SELECT {Columns} FROM reports WHERE user_id = @userId ORDER BY id", new { userId })).ToList(), ct);

    /// <summary>Deletes reports received at or before <paramref name="cutoff"/> (report retention); returns how many.</summary>
    public Task<int> DeleteReceivedUpToAsync(long cutoff, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync("DELETE FROM reports WHERE received_ts <= @cutoff", new { cutoff }, tx), ct);

    private static string? Contains(string? text) =>
        text is null ? null : "%" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal) + "%";
}
