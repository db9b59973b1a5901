using System.Collections.Concurrent;
using Lethe.Homeserver.Sync;
using Lethe.Protocol.Events;
using Lethe.Storage;
using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver.Ephemeral;

/// <summary>
/// Presence of local users, set by <c>PUT /presence</c> and by <c>/sync</c>'s <c>set_presence</c>, and moved on by the
/// spec's timers as Synapse runs them: online with no activity (a sync or a presence update) for 5 minutes becomes
/// unavailable; no sync in flight and none for 30 seconds becomes offline; <c>currently_active</c> ends a minute after the
/// last activity. Who is syncing is kept in memory; the states are stored, so a restart gives everyone 30 seconds to
/// reconnect before they read as offline.
/// </summary>
public sealed partial class PresenceTracker(HomeserverServices hs)
{
    /// <summary>Inactivity after which an online user becomes unavailable (Synapse's IDLE_TIMER).</summary>
    public const long IdleTimeoutMs = 5 * 60_000;

    /// <summary>Time after the last sync ended (none in flight) after which a user becomes offline (Synapse's SYNC_ONLINE_TIMEOUT).</summary>
    public const long SyncOnlineTimeoutMs = 30_000;

    /// <summary>How long after the last activity a user counts as currently active, and how often an unchanged online state is re-stored.</summary>
    public const long LastActiveGranularityMs = 60_000;

    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);
    private readonly ConcurrentDictionary<string, Tracked> _users = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;

    /// <summary>Picks up the users stored as not offline and starts checking the timers once a second.</summary>
    public async Task StartAsync(ILogger logger, CancellationToken ct)
    {
        if (!hs.Config.PresenceEnabled)
        {
            return;
        }

        var now = hs.NowMs;
        foreach (var row in await hs.Presence.NotOfflineAsync(ct))
        {
            // Nobody is syncing yet: each gets the sync timeout from now to come back.
            _users[row.UserId] = new Tracked { Row = row, LastContactMs = now, LastActiveMs = row.LastActiveTs };
        }

        _loop = LoopAsync(logger, _stopping.Token);
    }

    /// <summary>
    /// Marks the start of a <c>/sync</c> with <paramref name="setPresence"/>; the user counts as syncing until the returned
    /// lease is disposed. <c>offline</c> (the spec: "not marked as being online") changes and tracks nothing, as in Synapse.
    /// Without <paramref name="applyState"/> (the sync was over <c>rc_presence</c>) the user still counts as syncing, so
    /// does not time out, but the state is left as it is.
    /// </summary>
    public async Task<IDisposable?> SyncStartedAsync(string userId, string setPresence, bool applyState, CancellationToken ct)
    {
        if (!hs.Config.PresenceEnabled || setPresence == "offline")
        {
            return null;
        }

        var entry = _users.GetOrAdd(userId, _ => new Tracked());
        lock (entry)
        {
            entry.Syncing++;
            entry.LastContactMs = hs.NowMs;
        }

        var lease = new SyncLease(hs, entry);
        if (!applyState)
        {
            return lease;
        }

        try
        {
            await SetAsync(userId, setPresence, null, fromSync: true, ct);
            return lease;
        }
        catch
        {
            lease.Dispose();
            throw;
        }
    }

    /// <summary>Sets a user's presence (from <c>PUT /presence</c>, or a sync); nothing when presence is disabled.</summary>
    /// <param name="fromSync">A sync keeps the status message, and re-stores an unchanged state at most once a minute.</param>
    public async Task SetAsync(string userId, string state, string? statusMsg, bool fromSync, CancellationToken ct)
    {
        if (!hs.Config.PresenceEnabled)
        {
            return;
        }

        var now = hs.NowMs;
        var entry = _users.GetOrAdd(userId, _ => new Tracked());
        PresenceRow? old;
        lock (entry)
        {
            entry.LastContactMs = Math.Max(entry.LastContactMs, now);
            if (state == "online")
            {
                entry.LastActiveMs = now;
            }

            old = entry.Row;
        }

        // Every write goes through this class and is remembered, so the stored row is read only the first time (every
        // sync comes through here: no query for an unchanged state).
        old ??= await hs.Presence.GetAsync(userId, ct);
        if (fromSync)
        {
            statusMsg = old?.StatusMsg;
        }

        // Unchanged: an online user's last-active time is re-stored once a minute, so a syncing client does not flood the stream.
        if (old is not null && old.State == state && old.StatusMsg == statusMsg
            && (state != "online" || (old.CurrentlyActive && now - old.LastActiveTs < LastActiveGranularityMs)))
        {
            Remember(entry, old);
            return;
        }

        var row = new PresenceRow
        {
            UserId = userId,
            State = state,
            StatusMsg = statusMsg,
            LastActiveTs = state == "online" ? now : old?.LastActiveTs ?? 0,
            CurrentlyActive = state == "online",
        };
        var stream = await hs.Presence.SetAsync(row, ct);
        Remember(entry, row with { StreamOrdering = stream });
        await PublishAsync(userId, stream, ct);
    }

    /// <summary>The most recent activity of a user whose presence is tracked (ms), which the stored row may trail by up to a minute.</summary>
    public long? LastActiveOf(string userId)
    {
        if (_users.TryGetValue(userId, out var entry))
        {
            lock (entry)
            {
                return entry.LastActiveMs > 0 ? entry.LastActiveMs : null;
            }
        }

        return null;
    }

    /// <summary>Applies every timer that has run out (idle, offline, no longer currently active); returns how many users changed.</summary>
    public async Task<int> RunTimeoutsAsync(CancellationToken ct)
    {
        var changed = 0;
        foreach (var (userId, entry) in _users)
        {
            PresenceRow? next;
            long expected;
            lock (entry)
            {
                // Offline users stay tracked (one small entry per local user): removing them would race with their next update.
                if (entry.Row is not { } row || row.State == "offline")
                {
                    continue;
                }

                next = Timeout(row, entry, hs.NowMs);
                expected = row.StreamOrdering;
            }

            if (next is null)
            {
                continue;
            }

            // Conditional: a presence update that raced in, or an erasure that deleted the row, wins over the timer.
            if (await hs.Presence.SetIfUnchangedAsync(next, expected, ct) is { } stream)
            {
                Remember(entry, next with { StreamOrdering = stream });
                await PublishAsync(userId, stream, ct);
                changed++;
            }
            else if (await hs.Presence.GetAsync(userId, ct) is { } current)
            {
                Remember(entry, current);
            }
            else
            {
                // The row is gone (the user was erased): nothing to time out any more.
                _users.TryRemove(new KeyValuePair<string, Tracked>(userId, entry));
            }
        }

        return changed;
    }

    /// <summary>Stops the timer loop.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_loop is not null)
        {
            await _loop;
        }

        _stopping.Dispose();
    }

    /// <summary>The state a user's timers lead to now, or null when none has run out.</summary>
    private static PresenceRow? Timeout(PresenceRow row, Tracked entry, long now)
    {
        var lastActive = Math.Max(row.LastActiveTs, entry.LastActiveMs);
        var state = row.State;
        if (state == "online" && now - lastActive > IdleTimeoutMs)
        {
            state = "unavailable";
        }

        if (entry.Syncing == 0 && now - Math.Max(entry.LastContactMs, lastActive) > SyncOnlineTimeoutMs)
        {
            state = "offline";
        }

        var active = row.CurrentlyActive && state == "online" && now - lastActive <= LastActiveGranularityMs;
        return state == row.State && active == row.CurrentlyActive ? null : row with { State = state, CurrentlyActive = active, LastActiveTs = lastActive };
    }

    private static void Remember(Tracked entry, PresenceRow row)
    {
        lock (entry)
        {
            if (entry.Row is null || row.StreamOrdering >= entry.Row.StreamOrdering)
            {
                entry.Row = row;
            }
        }
    }

    /// <summary>Makes a stored change visible to syncs: the stream advances, and the user and everyone sharing a room with them wake.</summary>
    private async Task PublishAsync(string userId, long stream, CancellationToken ct)
    {
        hs.Streams.Advance(StreamTracker.Presence, stream);
        hs.Notifier.Notify(userId);
        foreach (var (roomId, _) in await hs.StateStore.RoomsForUserAsync(userId, [Membership.Join], ct))
        {
            if (await hs.Snapshots.GetAsync(roomId, ct) is { } snap)
            {
                EphemeralEndpoints.NotifyRoom(hs, snap);
            }
        }
    }

    private async Task LoopAsync(ILogger logger, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(Tick);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                try
                {
                    await RunTimeoutsAsync(ct);
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Presence timeouts failed; retrying in a second")]
    private static partial void LogFailed(ILogger logger, Exception e);

    /// <summary>What is known of one user's presence beyond the stored row.</summary>
    private sealed class Tracked
    {
        /// <summary>The stored row as last written or read; null until the first update.</summary>
        public PresenceRow? Row { get; set; }

        /// <summary>Syncs in flight.</summary>
        public int Syncing { get; set; }

        /// <summary>When a sync last started or ended, or presence was last set (ms).</summary>
        public long LastContactMs { get; set; }

        /// <summary>The last activity (ms): a sync or update that set the user online.</summary>
        public long LastActiveMs { get; set; }
    }

    /// <summary>Ends one sync of a user: the sync timeout runs from here.</summary>
    private sealed class SyncLease(HomeserverServices hs, Tracked entry) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1)
            {
                return;
            }

            lock (entry)
            {
                entry.Syncing--;
                entry.LastContactMs = hs.NowMs;
            }
        }
    }
}
