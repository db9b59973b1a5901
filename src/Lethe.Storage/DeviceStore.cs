using System.Data.Common;
using Dapper;

namespace Lethe.Storage;

/// <summary>A device of a local user.</summary>
public sealed record DeviceRecord
{
    /// <summary>Owner.</summary>
    public required string UserId { get; init; }

    /// <summary>Device ID.</summary>
    public required string DeviceId { get; init; }

    /// <summary>Human-readable name, visible to other users.</summary>
    public string? DisplayName { get; init; }

    /// <summary>Creation time (ms).</summary>
    public long CreatedTs { get; init; }

    /// <summary>Last request time (ms).</summary>
    public long? LastSeenTs { get; init; }

    /// <summary>Last client IP.</summary>
    public string? LastSeenIp { get; init; }

    /// <summary>Last client user agent.</summary>
    public string? LastSeenUserAgent { get; init; }
}

/// <summary>Devices of local users. Deleting a device deletes its tokens (foreign keys cascade).</summary>
public sealed class DeviceStore(Database db)
{
    private const string Columns = "user_id, device_id, display_name, created_ts, last_seen_ts, last_seen_ip, last_seen_user_agent";

    /// <summary>Creates the device if it does not exist, in the caller's transaction; an existing device keeps its name.</summary>
    public static Task EnsureAsync(DbTransaction tx, string userId, string deviceId, string? displayName, long now) =>
        tx.Connection!.ExecuteAsync(
            "INSERT INTO devices (user_id, device_id, display_name, created_ts) VALUES (@userId, @deviceId, @displayName, @now) ON CONFLICT (user_id, device_id) DO NOTHING",
            new { userId, deviceId, displayName, now }, tx);

    /// <summary>One device, or null.</summary>
    public Task<DeviceRecord?> GetAsync(string userId, string deviceId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.QuerySingleOrDefaultAsync<DeviceRecord>(
            $"SELECT {Columns} FROM devices WHERE user_id = @userId AND device_id = @deviceId", new { userId, deviceId }), ct);

    /// <summary>All devices of a user.</summary>
    public Task<List<DeviceRecord>> ListAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<DeviceRecord>(
            $"SELECT {Columns} FROM devices WHERE user_id = @userId ORDER BY device_id", new { userId })).ToList(), ct);

    /// <summary>Renames a device; false when it does not exist.</summary>
    public Task<bool> SetDisplayNameAsync(string userId, string deviceId, string? displayName, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync(
            "UPDATE devices SET display_name = @displayName WHERE user_id = @userId AND device_id = @deviceId",
            new { userId, deviceId, displayName }, tx) == 1, ct);

    /// <summary>Records the latest request from a device.</summary>
    public Task TouchAsync(string userId, string deviceId, long ts, string? ip, string? userAgent, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "UPDATE devices SET last_seen_ts = @ts, last_seen_ip = @ip, last_seen_user_agent = @userAgent WHERE user_id = @userId AND device_id = @deviceId",
            new { userId, deviceId, ts, ip, userAgent }, tx), ct);

    /// <summary>Deletes devices (and, by cascade, their access and refresh tokens) in the caller's transaction.</summary>
    public static Task<int> DeleteAsync(DbTransaction tx, string userId, IEnumerable<string> deviceIds) =>
        tx.Connection!.ExecuteAsync("DELETE FROM devices WHERE user_id = @userId AND device_id = @deviceId",
            deviceIds.Select(deviceId => new { userId, deviceId }), tx);
}
