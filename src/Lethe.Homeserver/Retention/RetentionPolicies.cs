using Lethe.Protocol.Events;
using Lethe.Storage;

namespace Lethe.Homeserver.Retention;

/// <summary>
/// The one effective retention policy of each room: the server admin's override if set, else the room's
/// <c>m.room.retention</c> event clamped to <c>allowed_lifetime_min/max</c>, else the server's default policy. Hiding,
/// purging, self-destruct holds and (later) federation all ask this, so they can never disagree.
/// </summary>
public sealed class RetentionPolicies(HomeserverServices hs)
{
    // Overrides can be changed by ./lethe room retention directly in the database, so the (small) table is re-read at
    // most a second after it was last read: one query a second however many rooms are served.
    private const long OverrideLifetimeMs = 1000;
    private readonly SemaphoreSlim _reload = new(1, 1);
    private volatile Dictionary<string, RetentionOverride> _overrides = new(StringComparer.Ordinal);
    private long _loadedAtMs;

    /// <summary>The room's effective policy (<see cref="RetentionPolicy.None"/> when retention is disabled).</summary>
    public async Task<RetentionPolicy> ForRoomAsync(string roomId, CancellationToken ct)
    {
        var config = hs.Config.Retention;
        if (!config.Enabled)
        {
            return RetentionPolicy.None;
        }

        if (await OverrideAsync(roomId, ct) is { } o)
        {
            return new RetentionPolicy(o.MinLifetime, o.MaxLifetime).Normalised();
        }

        if (await hs.Snapshots.GetAsync(roomId, ct) is { } snap && snap.StateEventId(EventTypes.Retention) is { } id
            && await hs.Events.GetAsync(id, ct) is { } e)
        {
            return RetentionPolicy.FromContent(e.Pdu.Content).Clamped(config);
        }

        return new RetentionPolicy(config.DefaultMinLifetime, config.DefaultMaxLifetime).Normalised();
    }

    /// <summary>Makes the next lookup re-read the overrides (after the admin API changed one).</summary>
    public void Forget() => Interlocked.Exchange(ref _loadedAtMs, 0);

    private async Task<RetentionOverride?> OverrideAsync(string roomId, CancellationToken ct)
    {
        if (hs.NowMs - Interlocked.Read(ref _loadedAtMs) >= OverrideLifetimeMs)
        {
            await _reload.WaitAsync(ct);
            try
            {
                var now = hs.NowMs;
                if (now - Interlocked.Read(ref _loadedAtMs) >= OverrideLifetimeMs)
                {
                    _overrides = (await hs.Retention.ListOverridesAsync(ct)).ToDictionary(o => o.RoomId, StringComparer.Ordinal);
                    Interlocked.Exchange(ref _loadedAtMs, now);
                }
            }
            finally
            {
                _reload.Release();
            }
        }

        return _overrides.GetValueOrDefault(roomId);
    }
}
