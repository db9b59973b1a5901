using System.Data.Common;
using Dapper;

namespace Lethe.Storage;

/// <summary>A key backup version.</summary>
public sealed record BackupVersionRow
{
    /// <summary>Version number.</summary>
    public long Version { get; init; }

    /// <summary>Backup algorithm.</summary>
    public string Algorithm { get; init; } = "";

    /// <summary>auth_data JSON.</summary>
    public byte[] AuthData { get; init; } = [];

    /// <summary>Changes with every change of the keys.</summary>
    public long Etag { get; init; }

    /// <summary>True once deleted.</summary>
    public bool Deleted { get; init; }
}

/// <summary>One backed-up session key (encrypted by the client; the server reads only the fields that rank keys).</summary>
public sealed record BackupKeyRow
{
    /// <summary>Room.</summary>
    public string RoomId { get; init; } = "";

    /// <summary>Megolm session ID.</summary>
    public string SessionId { get; init; } = "";

    /// <summary>Lowest message index the key can decrypt.</summary>
    public long FirstMessageIndex { get; init; }

    /// <summary>How many times the key was forwarded.</summary>
    public long ForwardedCount { get; init; }

    /// <summary>Whether the device that sent the key was verified.</summary>
    public bool IsVerified { get; init; }

    /// <summary>The encrypted session data (JSON).</summary>
    public byte[] SessionData { get; init; } = [];
}

/// <summary>The outcome of a change to a backup: whether the version was the current one, and its etag and key count afterwards.</summary>
public sealed record BackupChange(bool WrongVersion, long? CurrentVersion, long Etag, long Count);

/// <summary>Server-side key backups (<c>/room_keys</c>): versions per user and their encrypted session keys.</summary>
public sealed class KeyBackupStore(Database db)
{
    /// <summary>Creates a new version (one past the highest ever used by the user) and returns its number.</summary>
    public Task<long> CreateVersionAsync(string userId, string algorithm, byte[] authData, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var version = await tx.Connection!.ExecuteScalarAsync<long>(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM room_key_backup_versions WHERE user_id = @userId", new { userId }, tx);
            await tx.Connection!.ExecuteAsync(
                "INSERT INTO room_key_backup_versions (user_id, version, algorithm, auth_data) VALUES (@userId, @version, @algorithm, @authData)",
                new { userId, version, algorithm, authData = (object)authData }, tx);
            return version;
        }, ct);

    /// <summary>A version that was not deleted, or the newest such version when <paramref name="version"/> is null.</summary>
    public Task<BackupVersionRow?> GetVersionAsync(string userId, long? version, CancellationToken ct = default) =>
        db.ReadAsync(c => GetVersionAsync(c, null, userId, version), ct);

    private static Task<BackupVersionRow?> GetVersionAsync(DbConnection c, DbTransaction? tx, string userId, long? version) =>
        version is { } v
            ? c.QuerySingleOrDefaultAsync<BackupVersionRow>(
                "SELECT version, algorithm, auth_data, etag, deleted FROM room_key_backup_versions WHERE user_id = @userId AND version = @v AND deleted = FALSE", new { userId, v }, tx)
            : c.QuerySingleOrDefaultAsync<BackupVersionRow>(
                "SELECT version, algorithm, auth_data, etag, deleted FROM room_key_backup_versions WHERE user_id = @userId AND deleted = FALSE ORDER BY version DESC LIMIT 1", new { userId }, tx);

    /// <summary>Number of keys in a version.</summary>
    public Task<long> CountAsync(string userId, long version, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM room_key_backup_keys WHERE user_id = @userId AND version = @version", new { userId, version }), ct);

    /// <summary>Replaces a version's auth_data; false when the version does not exist.</summary>
    public Task<bool> UpdateAuthDataAsync(string userId, long version, byte[] authData, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync(
            "UPDATE room_key_backup_versions SET auth_data = @authData WHERE user_id = @userId AND version = @version AND deleted = FALSE",
            new { userId, version, authData = (object)authData }, tx) == 1, ct);

    /// <summary>Deletes a version and its keys (the number is not reused); false when it does not exist.</summary>
    public Task<bool> DeleteVersionAsync(string userId, long version, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            await tx.Connection!.ExecuteAsync("DELETE FROM room_key_backup_keys WHERE user_id = @userId AND version = @version", new { userId, version }, tx);
            return await tx.Connection!.ExecuteAsync(
                "UPDATE room_key_backup_versions SET deleted = TRUE, auth_data = @empty WHERE user_id = @userId AND version = @version AND deleted = FALSE",
                new { userId, version, empty = (object)"{}"u8.ToArray() }, tx) == 1;
        }, ct);

    /// <summary>
    /// Stores keys into <paramref name="version"/>, which must be the current version (else nothing changes and the result
    /// says so). An existing key is replaced only by a better one: verified beats unverified, then a lower first message
    /// index, then fewer forwards.
    /// </summary>
    public Task<BackupChange> PutKeysAsync(string userId, long version, IReadOnlyList<BackupKeyRow> keys, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var current = await GetVersionAsync(tx.Connection!, tx, userId, null);
            if (current is null || current.Version != version)
            {
                return new BackupChange(true, current?.Version, 0, 0);
            }

            var changed = false;
            foreach (var key in keys)
            {
                var existing = (await tx.Connection!.QueryAsync<BackupKeyRow>(
                    "SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data FROM room_key_backup_keys WHERE user_id = @userId AND version = @version AND room_id = @RoomId AND session_id = @SessionId",
                    new { userId, version, key.RoomId, key.SessionId }, tx)).ToList();
                if (existing.Count > 0 && !IsBetter(key, existing[0]))
                {
                    continue;
                }

                await tx.Connection!.ExecuteAsync(
                    """
                    INSERT INTO room_key_backup_keys (user_id, version, room_id, session_id, first_message_index, forwarded_count, is_verified, session_data)
                    VALUES (@userId, @version, @RoomId, @SessionId, @FirstMessageIndex, @ForwardedCount, @IsVerified, @SessionData)
                    ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET first_message_index = @FirstMessageIndex, forwarded_count = @ForwardedCount,
                        is_verified = @IsVerified, session_data = @SessionData
                    """,
                    new { userId, version, key.RoomId, key.SessionId, key.FirstMessageIndex, key.ForwardedCount, key.IsVerified, SessionData = (object)key.SessionData }, tx);
                changed = true;
            }

            return await FinishAsync(tx, userId, version, current.Etag, changed);
        }, ct);

    /// <summary>Deletes keys of a version: all, one room's, or one session's. Null when the version does not exist.</summary>
    public Task<BackupChange?> DeleteKeysAsync(string userId, long version, string? roomId, string? sessionId, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var row = await GetVersionAsync(tx.Connection!, tx, userId, version);
            if (row is null)
            {
                return null;
            }

            var sql = "DELETE FROM room_key_backup_keys WHERE user_id = @userId AND version = @version"
                + (roomId is null ? "" : " AND room_id = @roomId") + (sessionId is null ? "" : " AND session_id = @sessionId");
            var deleted = await tx.Connection!.ExecuteAsync(sql, new { userId, version, roomId, sessionId }, tx);
            return (BackupChange?)await FinishAsync(tx, userId, version, row.Etag, deleted > 0);
        }, ct);

    /// <summary>Keys of a version: all, one room's, or one session's.</summary>
    public Task<List<BackupKeyRow>> GetKeysAsync(string userId, long version, string? roomId, string? sessionId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<BackupKeyRow>(
            "SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data FROM room_key_backup_keys WHERE user_id = @userId AND version = @version"
            + (roomId is null ? "" : " AND room_id = @roomId") + (sessionId is null ? "" : " AND session_id = @sessionId"),
            new { userId, version, roomId, sessionId })).ToList(), ct);

    /// <summary>Removes all of a user's backups (deactivation), in the caller's transaction.</summary>
    public static async Task DeleteUserAsync(DbTransaction tx, string userId)
    {
        await tx.Connection!.ExecuteAsync("DELETE FROM room_key_backup_keys WHERE user_id = @userId", new { userId }, tx);
        await tx.Connection!.ExecuteAsync("DELETE FROM room_key_backup_versions WHERE user_id = @userId", new { userId }, tx);
    }

    private static bool IsBetter(BackupKeyRow candidate, BackupKeyRow existing)
    {
        if (candidate.IsVerified != existing.IsVerified)
        {
            return candidate.IsVerified;
        }

        if (candidate.FirstMessageIndex != existing.FirstMessageIndex)
        {
            return candidate.FirstMessageIndex < existing.FirstMessageIndex;
        }

        return candidate.ForwardedCount < existing.ForwardedCount;
    }

    private static async Task<BackupChange> FinishAsync(DbTransaction tx, string userId, long version, long etag, bool changed)
    {
        if (changed)
        {
            etag++;
            await tx.Connection!.ExecuteAsync("UPDATE room_key_backup_versions SET etag = @etag WHERE user_id = @userId AND version = @version", new { userId, version, etag }, tx);
        }

        var count = await tx.Connection!.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM room_key_backup_keys WHERE user_id = @userId AND version = @version", new { userId, version }, tx);
        return new BackupChange(false, version, etag, count);
    }
}
