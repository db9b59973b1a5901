using System.Text.Json.Nodes;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using Lethe.Storage;
using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver.Retention;

/// <summary>
/// Self-destructing messages (MSC2228, as Synapse implements it): a non-state event whose content has
/// <c>org.matrix.self_destruct_after</c> — an absolute time in milliseconds since the epoch — is redacted by the
/// server at that time: its content is pruned in the database, so it is gone, not merely hidden. If the room's
/// min_lifetime still holds the event, it is hidden at once and pruned when the hold ends.
/// </summary>
public sealed partial class SelfDestruct(HomeserverServices hs, ILogger logger) : IAsyncDisposable
{
    /// <summary>The content key that asks for self-destruction.</summary>
    public const string ContentKey = "org.matrix.self_destruct_after";

    /// <summary>What <c>events.redacted_by</c> holds for an event the server redacted this way (there is no redaction event).</summary>
    public const string RedactionMarker = "org.matrix.self_destruct";

    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;

    /// <summary>When the event asks to self-destruct, its due time; otherwise null.</summary>
    public static long? DueTime(Pdu pdu) =>
        !pdu.IsState && pdu.Content[ContentKey].TryGetInt64(out var due) && due > 0 ? due : null;

    /// <summary>Starts checking for due events four times a second.</summary>
    public void Start() => _loop = LoopAsync(_stopping.Token);

    private async Task LoopAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(Tick);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                try
                {
                    await RunDueAsync(ct);
                }
                catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException)
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

    /// <summary>
    /// Redacts every event whose time has come, then, if any content was pruned, compacts the database so the original
    /// is gone from disk too (free pages, WAL), as after a purge; returns how many events it handled.
    /// </summary>
    public async Task<int> RunDueAsync(CancellationToken ct)
    {
        var handled = 0;
        var pruned = false;
        while (true)
        {
            var due = await hs.Retention.DueExpiriesAsync(hs.NowMs, 100, ct);
            if (due.Count == 0)
            {
                if (pruned)
                {
                    await hs.Database.CompactAfterDeleteAsync(ct);
                }

                return handled;
            }

            foreach (var (eventId, roomId, _) in due)
            {
                pruned |= await DestructAsync(eventId, roomId, ct);
                handled++;
            }
        }
    }

    /// <summary>Redacts one due event; true when its content was pruned (not merely hidden under a hold, nor already gone).</summary>
    private async Task<bool> DestructAsync(string eventId, string roomId, CancellationToken ct)
    {
        var e = await hs.Events.GetAsync(eventId, ct);
        var now = hs.NowMs;
        if (e is null)
        {
            await hs.Database.WriteAsync(tx => RetentionStore.UnscheduleAsync(tx, eventId), ct);
            return false;
        }

        var policy = await hs.RetentionPolicies.ForRoomAsync(roomId, ct);
        var original = CanonicalJson.ParseObject(e.Row.Json);
        var free = policy.AllowsDeletion(e.Pdu.OriginServerTs, now);
        if (free)
        {
            var pruned = CanonicalJson.Encode(Redaction.Redact(original, e.Pdu.RoomVersion));
            var orphans = await hs.Database.WriteAsync(async tx =>
            {
                // The pruned event names no media any more (pruning keeps no URL a sender chose, except a room avatar's).
                var released = await hs.Media.Store.ReleaseReferencesAsync(tx, [eventId]);
                await RetentionStore.RedactInPlaceAsync(tx, eventId, RedactionMarker, pruned);
                await MediaStore.RecordReferencesAsync(tx, eventId, pruned, hs.ServerName);
                await RetentionStore.UnscheduleAsync(tx, eventId);
                return released;
            }, ct);
            await hs.Media.DeleteOrphansAsync(orphans, ct);
            hs.Metrics.SelfDestructedEvents.Add(1);
        }
        else
        {
            // A legal hold: hide now, prune when min_lifetime has passed.
            var holdEnds = e.Pdu.OriginServerTs + policy.MinLifetime!.Value;
            await hs.Database.WriteAsync(async tx =>
            {
                await RetentionStore.RedactInPlaceAsync(tx, eventId, RedactionMarker, null);
                await RetentionStore.ScheduleExpiryAsync(tx, eventId, roomId, holdEnds);
            }, ct);
        }

        hs.Events.Forget(eventId);
        hs.Push.Counts.RecountRoom(roomId);
        return free;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_loop is not null)
        {
            await _loop;
        }

        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Self-destruct pass failed; the next pass retries")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
