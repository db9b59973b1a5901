using System.Data.Common;
using Dapper;

namespace Lethe.Storage;

/// <summary>What a background job did last, for the admin API and logs.</summary>
public sealed record JobStatus
{
    /// <summary>Job name.</summary>
    public required string Job { get; init; }

    /// <summary>Instance holding the lease, if any.</summary>
    public string? LeaseHolder { get; init; }

    /// <summary>When the lease lapses (ms).</summary>
    public long? LeaseExpiresTs { get; init; }

    /// <summary>When the last run started (ms).</summary>
    public long? LastStartedTs { get; init; }

    /// <summary>When the last run finished (ms); null while running or after a crash.</summary>
    public long? LastFinishedTs { get; init; }

    /// <summary>Items the last run handled.</summary>
    public long LastItems { get; init; }

    /// <summary>Items handled by every run together.</summary>
    public long TotalItems { get; init; }

    /// <summary>Why the last run failed, if it did.</summary>
    public string? LastError { get; init; }

    /// <summary>When the job runs next (ms); null when it is not scheduled.</summary>
    public long? NextRunTs { get; init; }
}

/// <summary>Leases and status of background jobs: a job runs on one instance at a time, and every run is recorded.</summary>
public sealed class JobStore(Database db)
{
    private const string Columns = "job, lease_holder, lease_expires_ts, last_started_ts, last_finished_ts, last_items, total_items, last_error, next_run_ts";

    /// <summary>
    /// Takes (or renews) the job's lease for <paramref name="holder"/> until <paramref name="expiresTs"/>; false when
    /// another holder's lease is still valid.
    /// </summary>
    public Task<bool> TryLeaseAsync(string job, string holder, long now, long expiresTs, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var conn = tx.Connection!;
            await conn.ExecuteAsync("INSERT INTO background_jobs (job) VALUES (@job) ON CONFLICT (job) DO NOTHING", new { job }, tx);
            return await conn.ExecuteAsync(
                """
                UPDATE background_jobs SET lease_holder = @holder, lease_expires_ts = @expiresTs
                WHERE job = @job AND (lease_holder IS NULL OR lease_holder = @holder OR lease_expires_ts < @now)
                """, new { job, holder, now, expiresTs }, tx) == 1;
        }, ct);

    /// <summary>Gives the lease up.</summary>
    public Task ReleaseAsync(string job, string holder, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "UPDATE background_jobs SET lease_holder = NULL, lease_expires_ts = NULL WHERE job = @job AND lease_holder = @holder", new { job, holder }, tx), ct);

    /// <summary>Records the start of a run.</summary>
    public Task StartedAsync(string job, long now, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "UPDATE background_jobs SET last_started_ts = @now, last_finished_ts = NULL, last_items = 0, last_error = NULL WHERE job = @job", new { job, now }, tx), ct);

    /// <summary>
    /// In the caller's transaction (the one doing the work, so the count is exact even after a crash): adds progress
    /// to the current run and renews <paramref name="holder"/>'s lease. False when the lease was lost to another holder.
    /// </summary>
    public static async Task<bool> ProgressAsync(DbTransaction tx, string job, string holder, long items, long now, long expiresTs) =>
        await tx.Connection!.ExecuteAsync(
            """
            UPDATE background_jobs SET last_items = last_items + @items, total_items = total_items + @items, lease_holder = @holder, lease_expires_ts = @expiresTs
            WHERE job = @job AND (lease_holder = @holder OR lease_expires_ts < @now)
            """, new { job, holder, items, now, expiresTs }, tx) == 1;

    /// <summary>Records the end of a run, with its error if it failed.</summary>
    public Task FinishedAsync(string job, long now, string? error, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "UPDATE background_jobs SET last_finished_ts = @now, last_error = @error WHERE job = @job", new { job, now, error }, tx), ct);

    /// <summary>When the job runs next, or null (never scheduled).</summary>
    public Task<long?> NextRunAsync(string job, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long?>("SELECT next_run_ts FROM background_jobs WHERE job = @job", new { job }), ct);

    /// <summary>Sets when the job runs next (creating its row).</summary>
    public Task ScheduleAsync(string job, long nextRunTs, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "INSERT INTO background_jobs (job, next_run_ts) VALUES (@job, @nextRunTs) ON CONFLICT (job) DO UPDATE SET next_run_ts = @nextRunTs",
            new { job, nextRunTs }, tx), ct);

    /// <summary>Jobs whose names start with <paramref name="prefix"/> and whose time has come, soonest first.</summary>
    public Task<List<string>> DueAsync(string prefix, long now, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(
            "SELECT job FROM background_jobs WHERE job LIKE @pattern AND next_run_ts <= @now ORDER BY next_run_ts, job LIMIT @limit",
            new { pattern = prefix + "%", now, limit })).ToList(), ct);

    /// <summary>Forgets a one-off job that has finished.</summary>
    public Task DeleteAsync(string job, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync("DELETE FROM background_jobs WHERE job = @job", new { job }, tx), ct);

    /// <summary>Every job's status.</summary>
    public Task<List<JobStatus>> StatusAsync(CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<JobStatus>($"SELECT {Columns} FROM background_jobs ORDER BY job")).ToList(), ct);
}
