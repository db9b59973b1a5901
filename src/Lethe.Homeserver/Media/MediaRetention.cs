using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver.Media;

/// <summary>
/// The media expiry job, hourly: deletes local media nobody downloaded within <c>media_retention.local_media_lifetime</c>
/// (avatars and media protected from quarantine are kept, as in Synapse, and so is media a message still under its
/// room's min_lifetime names), and reservations from <c>/create</c> that
/// lapsed unfilled, expired URL previews and their images. Bytes go with the rows. Each run finds what is still due, so a crash mid-run is simply resumed.
/// </summary>
public sealed partial class MediaRetention(HomeserverServices hs, ILogger logger) : IAsyncDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _running = new(1, 1);
    private Task _loop = Task.CompletedTask;

    /// <summary>Starts the hourly loop.</summary>
    public void Start() => _loop = LoopAsync(_stopping.Token);

    private async Task LoopAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(Interval, hs.Clock, ct);
                try
                {
                    await RunAsync(ct);
                }
                catch (Exception e) when (e is System.Data.Common.DbException or IOException or UnauthorizedAccessException or InvalidOperationException)
                {
                    LogFailed(logger, e);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Shutting down.
        }
    }

    /// <summary>One run; returns how many items were deleted.</summary>
    public async Task<int> RunAsync(CancellationToken ct)
    {
        await _running.WaitAsync(ct);
        try
        {
            return await hs.Metrics.CountGcRunAsync("media_retention", () => ExpireAsync(ct));
        }
        finally
        {
            _running.Release();
        }
    }

    private async Task<int> ExpireAsync(CancellationToken ct)
    {
        var media = hs.Media;
        media.Files.DeleteStaleTemps(TimeSpan.FromHours(1));
        await media.FlushAccessTimesAsync(ct);
        var now = hs.NowMs;
        var deleted = 0;
        while (true)
        {
            var lapsed = await media.Store.LapsedReservationsAsync(now, 500, ct);
            if (lapsed.Count == 0)
            {
                break;
            }

            deleted += (await media.DeleteManyAsync(lapsed, ct)).Count;
        }

        // Expired URL previews, and their images once two days old.
        deleted += await media.Previews.ExpireAsync(ct);

        // Media a retention purge orphaned but did not get to delete (a crash in between).
        deleted += await media.DeleteOrphansAsync(await media.Store.UnreferencedAsync(1000, ct), ct);

        if (hs.Config.Media.LocalMediaLifetime is { } lifetime)
        {
            var cutoff = now - lifetime;
            // Media a held message names is spared; the next run after the hold ends finds it again (unless it was
            // downloaded meanwhile, which makes it not idle any more).
            deleted += (await MediaAdminEndpoints.DeleteOldAsync(hs, cutoff, sizeGt: -1, lastAccessBeforeTs: cutoff, keepProfiles: true, force: false, deferHeld: false, ct)).Deleted.Count;
        }

        if (deleted > 0)
        {
            LogRun(logger, deleted);
        }

        return deleted;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _loop;
        await _running.WaitAsync();
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Media retention: {Deleted} media items deleted")]
    private static partial void LogRun(ILogger logger, int deleted);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Media retention run failed; the next run resumes")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
