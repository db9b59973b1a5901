using System.Collections.Concurrent;
using Lethe.Storage;

namespace Lethe.Homeserver.Accounts;

/// <summary>Last-seen time, IP and user agent per device, kept in memory and written in batches rather than on every request.</summary>
public sealed class DeviceActivity(DeviceStore devices)
{
    private readonly ConcurrentDictionary<(string UserId, string DeviceId), Seen> _pending = new();
    private int _deletedSinceCompaction;

    /// <summary>Notes a request from a device.</summary>
    public void Record(string userId, string deviceId, long ts, string? ip, string? userAgent) =>
        _pending[(userId, deviceId)] = new Seen(ts, ip, userAgent is { Length: > 512 } ? userAgent[..512] : userAgent);

    /// <summary>The last activity not yet written, if any (so reads see fresh values).</summary>
    public bool TryGetPending(string userId, string deviceId, out long ts, out string? ip)
    {
        if (_pending.TryGetValue((userId, deviceId), out var seen))
        {
            (ts, ip) = (seen.Ts, seen.Ip);
            return true;
        }

        (ts, ip) = (0, null);
        return false;
    }

    /// <summary>Writes everything recorded since the last flush.</summary>
    public async Task FlushAsync(CancellationToken ct = default)
    {
        foreach (var key in _pending.Keys)
        {
            if (_pending.TryRemove(key, out var seen))
            {
                await devices.TouchAsync(key.UserId, key.DeviceId, seen.Ts, seen.Ip, seen.UserAgent, ct);
            }
        }
    }

    /// <summary>
    /// Drops what is pending for deleted devices (all the user's when <paramref name="deviceIds"/> is null) and notes
    /// the deletion: their rows (IP address and user agent included) are gone from the database, and the next privacy
    /// GC run compacts the files so no copy lingers in them.
    /// </summary>
    public void Forget(string userId, IEnumerable<string>? deviceIds = null)
    {
        foreach (var key in deviceIds?.Select(d => (userId, d)) ?? _pending.Keys.Where(k => k.UserId == userId))
        {
            _pending.TryRemove(key, out _);
        }

        Interlocked.Exchange(ref _deletedSinceCompaction, 1);
    }

    /// <summary>True, once, when devices were deleted since the last call (the privacy GC then compacts the database).</summary>
    public bool TakeDeletions() => Interlocked.Exchange(ref _deletedSinceCompaction, 0) == 1;

    private sealed record Seen(long Ts, string? Ip, string? UserAgent);
}
