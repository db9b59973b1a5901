using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using Lethe.Storage;
using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver.Privacy;

/// <summary>
/// The personal-data garbage collectors, run every few minutes: the original content of redacted events is deleted once
/// <c>redaction_retention_period</c> has passed since the redaction (and the room's <c>min_lifetime</c> allows), and
/// client IP addresses and user agents are forgotten once a device has not been seen for <c>user_ips_max_age</c>.
/// Deleting a device deletes its IP and user agent at once (they live on the device's row); the next run compacts
/// the database so their bytes leave the files too. Rooms every local member has left and forgotten are deleted
/// <c>forgotten_room_retention_period</c> after the last one forgot them, and content reports
/// <c>report_retention_period</c> after they arrived.
/// </summary>
public sealed partial class PrivacyGc(HomeserverServices hs, ILogger logger) : IAsyncDisposable
{
    /// <summary>How often the collectors run.</summary>
    public const long IntervalMs = 5 * 60_000;

    private const int BatchSize = 100;

    private readonly SemaphoreSlim _running = new(1, 1);
    private long _next = hs.NowMs + IntervalMs;

    /// <summary>What one run deleted.</summary>
    public sealed record Result(long RedactionsPruned, long ClientIpsPruned, long ForgottenRoomsPurged, long ErasuresCompleted = 0, long ReportsPruned = 0);

    /// <summary>Runs the collectors when their interval has passed and no run is under way (called by the host's housekeeping timer).</summary>
    public async Task RunIfDueAsync(CancellationToken ct)
    {
        if (hs.NowMs < Interlocked.Read(ref _next))
        {
            return;
        }

        try
        {
            await RunAsync(wait: false, ct);
        }
        catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException)
        {
            LogFailed(logger, e);
        }
    }

    /// <summary>Runs every collector now (the admin API's "run now") and returns what was deleted.</summary>
    public Task<Result> RunNowAsync(CancellationToken ct) => RunAsync(wait: true, ct)!;

    private async Task<Result> RunAsync(bool wait, CancellationToken ct)
    {
        if (!await _running.WaitAsync(wait ? Timeout.InfiniteTimeSpan : TimeSpan.Zero, ct))
        {
            return new Result(0, 0, 0);
        }

        try
        {
            Interlocked.Exchange(ref _next, hs.NowMs + IntervalMs);
            var redactions = hs.Config.RedactionRetentionPeriod is null ? 0 : await hs.Metrics.CountGcRunAsync("redactions", () => PruneRedactionsAsync(ct));
            long ips = 0;
            if (hs.Config.UserIpsMaxAge is { } maxAge)
            {
                // Activity still held in memory is recent; write it first so the cutoff applies to what is current.
                await hs.Activity.FlushAsync(ct);
                ips = await hs.Metrics.CountGcRunAsync("client_ips", () => hs.Privacy.PruneClientIpsAsync(hs.NowMs - maxAge, ct));
            }

            long reports = 0;
            if (hs.Config.ReportRetentionPeriod is { } reportPeriod)
            {
                reports = await hs.Metrics.CountGcRunAsync("reports", () => hs.Reports.DeleteReceivedUpToAsync(hs.NowMs - reportPeriod, ct));
            }

            // A deleted device's IP address and user agent left the database with its row; compacting takes the
            // bytes out of the files (free pages, the WAL) too.
            var devicesDeleted = hs.Activity.TakeDeletions();
            if (redactions > 0 || ips > 0 || reports > 0 || devicesDeleted)
            {
                await hs.Database.CompactAfterDeleteAsync(ct);
            }

            long rooms = 0;
            if (hs.Config.ForgottenRoomRetentionPeriod is { } period)
            {
                rooms = await hs.Metrics.CountGcRunAsync("forgotten_rooms", async () =>
                {
                    long purged = 0;
                    foreach (var roomId in await hs.Privacy.ForgottenRoomsAsync(hs.ServerName, hs.NowMs - period, ct))
                    {
                        // A room whose messages min_lifetime still holds is finished when the hold ends.
                        if ((await hs.RoomPurge.PurgeAsync(roomId, force: false, ct)).Complete)
                        {
                            purged++;
                        }
                    }

                    return purged;
                });
            }

            var erasures = await hs.Metrics.CountGcRunAsync("erasures", () => hs.Erasure.PurgeDueAsync(ct));
            LogRun(logger, redactions, ips, rooms, reports);
            return new Result(redactions, ips, rooms, erasures, reports);
        }
        finally
        {
            _running.Release();
        }
    }

    private async Task<long> PruneRedactionsAsync(CancellationToken ct)
    {
        if (hs.Config.RedactionRetentionPeriod is not { } period)
        {
            return 0;
        }

        var now = hs.NowMs;
        var cutoff = now - period;
        long pruned = 0;
        var (afterTs, afterId) = (long.MinValue, "");
        while (true)
        {
            var due = await hs.Privacy.RedactionsDueAsync(cutoff, afterTs, afterId, BatchSize, ct);
            if (due.Count == 0)
            {
                return pruned;
            }

            foreach (var (eventId, redactedTs) in due)
            {
                (afterTs, afterId) = (redactedTs, eventId);
                var e = await hs.Events.GetAsync(eventId, ct);
                if (e is not null && !(await hs.RetentionPolicies.ForRoomAsync(e.Row.RoomId, ct)).AllowsDeletion(e.Pdu.OriginServerTs, now))
                {
                    // The room's min_lifetime still holds the content: a later run takes it.
                    continue;
                }

                var orphans = await hs.Database.WriteAsync(async tx =>
                {
                    IReadOnlyList<string> orphaned = [];
                    if (e is not null)
                    {
                        var stripped = CanonicalJson.Encode(Redaction.Redact(CanonicalJson.ParseObject(e.Row.Json), e.Pdu.RoomVersion));
                        await RetentionStore.RedactInPlaceAsync(tx, eventId, e.Row.RedactedBy!, stripped);
                        orphaned = await hs.Media.Store.ReleaseReferencesAsync(tx, [eventId]);
                    }

                    await PrivacyStore.DequeueRedactionAsync(tx, eventId);
                    return orphaned;
                }, ct);

                // An image only this message showed goes with its content.
                await hs.Media.DeleteOrphansAsync(orphans, ct);
                hs.Events.Forget(eventId);
                pruned += e is null ? 0 : 1;
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        // Wait for a run in progress to finish before the database closes under it.
        await _running.WaitAsync();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Privacy GC: {Redactions} redacted events pruned, {Ips} devices' IP addresses forgotten, {Rooms} forgotten rooms deleted, {Reports} old reports deleted")]
    private static partial void LogRun(ILogger logger, long redactions, long ips, long rooms, long reports);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Privacy GC failed; the next run resumes")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
