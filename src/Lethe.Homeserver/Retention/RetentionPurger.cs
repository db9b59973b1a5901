using Lethe.Homeserver.Configuration;
using Lethe.Storage;
using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver.Retention;

/// <summary>
/// Runs the configured purge jobs: each, on its interval, deletes the expired messages of the rooms whose effective
/// max_lifetime falls in its range, in small transactions with a pause between them (so sends and syncs keep the
/// database), then compacts the database so the deleted content is gone from disk. The schedule lives in the
/// database: a job that is due (or was interrupted by a crash) when the server starts runs at once, and a run resumes
/// where a crash left off, because each batch is its own transaction and the next run simply finds what is still
/// expired. A second timer finishes the deletions min_lifetime put off (<see cref="LegalHolds"/>).
/// </summary>
public sealed partial class RetentionPurger(HomeserverServices hs, ILogger logger) : IAsyncDisposable
{
    /// <summary>How long a lease lasts without renewal: a crashed instance's job is free again this long after its last batch.</summary>
    private const long LeaseMs = 30_000;

    /// <summary>The last_error of a run that a shutdown stopped part-way.</summary>
    private const string Interrupted = "interrupted; resumes at the next start";

    /// <summary>How often put-off deletions are looked for: holds end days after they begin, so a minute late is on time.</summary>
    private static readonly TimeSpan HeldDeletionsTick = TimeSpan.FromMinutes(1);

    // A restarted server must be able to take back the lease its previous process held when it crashed, so the holder
    // names the machine and server rather than the process. Instances on different machines hold different leases.
    private readonly string _instance = Environment.MachineName + "/" + hs.ServerName;
    private readonly List<Task> _loops = [];
    private readonly SemaphoreSlim _running = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>Starts one timer per purge job (none when retention is disabled) and the timer of put-off deletions.</summary>
    public void Start()
    {
        // Holds may outlive a configuration that turned retention off; with it off they are simply free at once.
        _loops.Add(HeldDeletionsLoopAsync(_stopping.Token));
        if (!hs.Config.Retention.Enabled)
        {
            return;
        }

        foreach (var job in hs.Config.Retention.EffectivePurgeJobs)
        {
            _loops.Add(LoopAsync(job, _stopping.Token));
        }
    }

    private async Task LoopAsync(PurgeJobConfig job, CancellationToken ct)
    {
        // Intervals may exceed what a timer holds (about 49 days), so wait in steps of at most a day.
        try
        {
            long next;
            try
            {
                next = await FirstRunAsync(job, ct);
            }
            catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException)
            {
                LogFailed(logger, e, JobName(job));
                next = hs.NowMs + job.Interval;
            }

            while (!ct.IsCancellationRequested)
            {
                var wait = next - hs.NowMs;
                if (wait > 0)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(wait, 86_400_000)), ct);
                    continue;
                }

                await RunQuietlyAsync(job);
                next = hs.NowMs + job.Interval;
            }
        }
        catch (OperationCanceledException)
        {
            // Shutting down.
        }
    }

    /// <summary>
    /// When the job first runs after start-up: at once when its stored time has passed or its last run never finished
    /// (a crash or a stop mid-run), else at its stored time (brought forward if the interval has been shortened since). A job
    /// never run before is scheduled one interval from now, and that is stored, so restarts do not push it back.
    /// </summary>
    private async Task<long> FirstRunAsync(PurgeJobConfig job, CancellationToken ct)
    {
        var name = JobName(job);
        var now = hs.NowMs;
        var status = (await hs.Jobs.StatusAsync(ct)).Find(j => j.Job == name);
        var next = status switch
        {
            _ when IsInterrupted(status) => now,
            { NextRunTs: { } stored } => Math.Min(stored, now + job.Interval),
            { LastStartedTs: { } started } => Math.Min(started + job.Interval, now + job.Interval),
            _ => now + job.Interval,
        };
        if (status?.NextRunTs != next)
        {
            await hs.Jobs.ScheduleAsync(name, next, ct);
        }

        return next;
    }

    /// <summary>The job's last run was stopped part-way: by a crash (it never finished) or a shutdown (it said so).</summary>
    private static bool IsInterrupted(JobStatus? status) =>
        status is { LastStartedTs: not null, LastFinishedTs: null } || status?.LastError == Interrupted;

    private async Task HeldDeletionsLoopAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(HeldDeletionsTick);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                try
                {
                    await hs.LegalHolds.RunDueAsync(ct);
                }
                catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or ObjectDisposedException)
                {
                    LogHeldFailed(logger, e);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Shutting down: the next start finds the same due jobs.
        }
    }

    /// <summary>
    /// Runs every purge job now and finishes the put-off deletions that are due; returns how many events the purge jobs
    /// purged (the admin API's "run now").
    /// </summary>
    public async Task<long> RunAllAsync(CancellationToken ct)
    {
        long total = 0;
        foreach (var job in hs.Config.Retention.EffectivePurgeJobs)
        {
            total += await RunAsync(job, ct);
        }

        await hs.LegalHolds.RunDueAsync(ct);
        return total;
    }

    private async Task RunQuietlyAsync(PurgeJobConfig job)
    {
        try
        {
            await RunAsync(job, _stopping.Token);
        }
        catch (OperationCanceledException)
        {
            // Shutting down: the next start resumes.
        }
        catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or ObjectDisposedException)
        {
            LogFailed(logger, e, JobName(job));
        }
    }

    /// <summary>One run of one job. Jobs do not overlap within this instance; a lease keeps other instances off the same job.</summary>
    public async Task<long> RunAsync(PurgeJobConfig job, CancellationToken ct)
    {
        var name = JobName(job);
        await _running.WaitAsync(ct);
        try
        {
            var now = hs.NowMs;
            if (!await hs.Jobs.TryLeaseAsync(name, _instance, now, now + LeaseMs, ct))
            {
                return 0;
            }

            // A run after an interrupted one compacts even if nothing is left to delete: the interrupted run deleted
            // rows but never got to remove them from free pages and the WAL.
            var resuming = IsInterrupted((await hs.Jobs.StatusAsync(ct)).Find(j => j.Job == name));
            await hs.Jobs.StartedAsync(name, now, ct);
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            long purged = 0;
            string? error = null;
            var interrupted = false;
            try
            {
                purged = await PurgeAsync(job, name, ct);
                interrupted = ct.IsCancellationRequested;
                if ((purged > 0 || resuming) && !interrupted)
                {
                    await hs.Database.CompactAfterDeleteAsync(ct);
                }
            }
            catch (OperationCanceledException)
            {
                interrupted = true;
                throw;
            }
            catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException)
            {
                error = e.Message;
                throw;
            }
            finally
            {
                // Stopped part-way (shutdown, or the admin's request went away): due again at once, so the next start resumes it.
                await hs.Jobs.FinishedAsync(name, hs.NowMs, interrupted ? Interrupted : error, CancellationToken.None);
                await hs.Jobs.ScheduleAsync(name, interrupted ? hs.NowMs : hs.NowMs + job.Interval, CancellationToken.None);
                await hs.Jobs.ReleaseAsync(name, _instance, CancellationToken.None);
                var tag = new KeyValuePair<string, object?>("job", name);
                hs.Metrics.RetentionPurgeRuns.Add(1, tag, new("outcome", interrupted ? "interrupted" : error is null ? "ok" : "error"));
                hs.Metrics.RetentionPurgeSeconds.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds, tag);
                LogRun(logger, name, purged);
            }

            return purged;
        }
        finally
        {
            _running.Release();
        }
    }

    private async Task<long> PurgeAsync(PurgeJobConfig job, string name, CancellationToken ct)
    {
        var config = hs.Config.Retention;
        // With a default policy every room may expire; otherwise only rooms with a policy of their own can.
        var rooms = config.DefaultMaxLifetime is not null ? await hs.Retention.AllRoomsAsync(ct) : await hs.Retention.RoomsWithPolicyAsync(ct);
        long purged = 0;
        foreach (var roomId in rooms)
        {
            var policy = await hs.RetentionPolicies.ForRoomAsync(roomId, ct);
            if (policy.MaxLifetime is not { } max || !InRange(max, job))
            {
                continue;
            }

            while (!ct.IsCancellationRequested)
            {
                // The cutoff is taken per batch, from the same policy and the same clock that hide events.
                var cutoff = policy.ExpiryCutoff(hs.NowMs)!.Value;
                var batch = await hs.Retention.ExpiredBatchAsync(roomId, cutoff, config.PurgeBatchSize, ct);
                if (batch.Count == 0)
                {
                    break;
                }

                var leased = false;
                var deleted = await hs.RoomPurge.DeleteEventsAsync(roomId, batch, ct, async (tx, n) =>
                    leased = await JobStore.ProgressAsync(tx, name, _instance, n, hs.NowMs, hs.NowMs + LeaseMs));
                purged += deleted;
                hs.Metrics.RetentionPurgedEvents.Add(deleted, new KeyValuePair<string, object?>("job", name));
                if (!leased)
                {
                    // Another instance took the job over (our lease lapsed): let it finish.
                    return purged;
                }

                if (config.PurgeBatchDelay > 0)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(config.PurgeBatchDelay), ct);
                }
            }
        }

        return purged;
    }

    /// <summary>A job takes rooms whose max_lifetime is in (shortest, longest]; a missing bound excludes nothing.</summary>
    public static bool InRange(long maxLifetime, PurgeJobConfig job) =>
        (job.ShortestMaxLifetime is not { } lo || maxLifetime > lo) && (job.LongestMaxLifetime is not { } hi || maxLifetime <= hi);

    private static string JobName(PurgeJobConfig job) =>
        $"retention_purge:{job.ShortestMaxLifetime?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}:{job.LongestMaxLifetime?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}";

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();

        // Wait for the loops, and so any run in progress, to notice the cancellation before the database closes.
        await Task.WhenAll(_loops);
        await _running.WaitAsync();
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention purge {Job}: {Purged} events purged")]
    private static partial void LogRun(ILogger logger, string job, long purged);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Deletions put off by min_lifetime failed; the next pass retries")]
    private static partial void LogHeldFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Retention purge {Job} failed; the next run resumes")]
    private static partial void LogFailed(ILogger logger, Exception exception, string job);
}
