using Dapper;

namespace Lethe.Storage;

/// <summary>A user's presence as stored.</summary>
public sealed record PresenceRow
{
    /// <summary>User.</summary>
    public required string UserId { get; init; }

    /// <summary>online, unavailable or offline.</summary>
    public required string State { get; init; }

    /// <summary>Status message.</summary>
    public string? StatusMsg { get; init; }

    /// <summary>Last activity (ms).</summary>
    public long LastActiveTs { get; init; }

    /// <summary>Active right now.</summary>
    public bool CurrentlyActive { get; init; }

    /// <summary>Position in the presence stream.</summary>
    public long StreamOrdering { get; init; }
}

/// <summary>Presence of local users.</summary>
public sealed class PresenceStore(Database db)
{
    private const string Columns = "user_id, state, status_msg, last_active_ts, currently_active, stream_ordering";

    /// <summary>Stores presence and returns its stream position.</summary>
    public Task<long> SetAsync(PresenceRow row, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var stream = await StreamPositions.NextAsync(tx, "presence");
            await tx.Connection!.ExecuteAsync(
                $"""
                INSERT INTO presence ({Columns}) VALUES (@UserId, @State, @StatusMsg, @LastActiveTs, @CurrentlyActive, @stream)
                ON CONFLICT (user_id) DO UPDATE SET state = @State, status_msg = @StatusMsg, last_active_ts = @LastActiveTs, currently_active = @CurrentlyActive, stream_ordering = @stream
                """, new { row.UserId, row.State, row.StatusMsg, row.LastActiveTs, row.CurrentlyActive, stream }, tx);
            return stream;
        }, ct);

    /// <summary>
    /// Stores a timed-out presence (idle, offline, no longer currently active) only if the user's row is still the one at
    /// <paramref name="expectedStream"/>: an update that raced in, or an erasure that deleted the row, wins. Returns the new
    /// stream position, or null when nothing was written.
    /// </summary>
    public Task<long?> SetIfUnchangedAsync(PresenceRow row, long expectedStream, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var current = await tx.Connection!.ExecuteScalarAsync<long?>("SELECT stream_ordering FROM presence WHERE user_id = @UserId", new { row.UserId }, tx);
            if (current != expectedStream)
            {
                return (long?)null;
            }

            var stream = await StreamPositions.NextAsync(tx, "presence");
            await tx.Connection!.ExecuteAsync(
                "UPDATE presence SET state = @State, status_msg = @StatusMsg, last_active_ts = @LastActiveTs, currently_active = @CurrentlyActive, stream_ordering = @stream WHERE user_id = @UserId",
                new { row.UserId, row.State, row.StatusMsg, row.LastActiveTs, row.CurrentlyActive, stream }, tx);
            return stream;
        }, ct);

    /// <summary>Every user whose presence is not offline (the ones timeouts apply to).</summary>
    public Task<List<PresenceRow>> NotOfflineAsync(CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<PresenceRow>($"SELECT {Columns} FROM presence WHERE state <> 'offline'")).ToList(), ct);

    /// <summary>One user's presence, or null.</summary>
    public Task<PresenceRow?> GetAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.QuerySingleOrDefaultAsync<PresenceRow>($"SELECT {Columns} FROM presence WHERE user_id = @userId", new { userId }), ct);

    /// <summary>Every presence change in (since, upTo], for any user.</summary>
    public Task<List<PresenceRow>> ChangedSinceAsync(long since, long upTo, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<PresenceRow>(
            $"SELECT {Columns} FROM presence WHERE stream_ordering > @since AND stream_ordering <= @upTo", new { since, upTo })).ToList(), ct);

    /// <summary>Presence of the given users changed in (since, upTo].</summary>
    public async Task<List<PresenceRow>> ChangedAsync(IReadOnlyCollection<string> userIds, long since, long upTo, CancellationToken ct = default)
    {
        var result = new List<PresenceRow>();
        foreach (var chunk in userIds.Chunk(500))
        {
            result.AddRange(await db.ReadAsync(c => c.QueryAsync<PresenceRow>(
                $"SELECT {Columns} FROM presence WHERE stream_ordering > @since AND stream_ordering <= @upTo AND {db.In("user_id", "chunk")}", new { since, upTo, chunk = db.List(chunk) }), ct));
        }

        return result;
    }
}
