using System.Data.Common;
using Dapper;

namespace Lethe.Storage;

/// <summary>A one-time or fallback key as uploaded: its <c>algorithm:key_id</c> name and its JSON (a string or a signed object).</summary>
public sealed record OneTimeKey(string Algorithm, string KeyId, byte[] KeyJson);

/// <summary>A signature uploaded for someone's key: who signed, with which key, and the base64 signature.</summary>
public sealed record StoredSignature(string TargetUserId, string TargetKeyId, string SignerUserId, string SignerKeyId, string Signature);

/// <summary>A cross-signing key of a user: <c>master</c>, <c>self_signing</c> or <c>user_signing</c>.</summary>
public sealed record CrossSigningKeyRow(string UserId, string KeyType, string KeyId, byte[] KeyJson);

/// <summary>
/// End-to-end encryption keys: device identity keys, one-time and fallback keys, cross-signing keys and signatures, and
/// the device_lists stream that tells other users to fetch them again. Per-device rows go with their device (cascade).
/// </summary>
public sealed class E2eKeyStore(Database db)
{
    /// <summary>Stream name of device list changes.</summary>
    public const string DeviceListsStream = "device_lists";

    /// <summary>The device_keys JSON of the given devices of a user (all devices with keys when <paramref name="deviceIds"/> is empty), with each device's display name.</summary>
    public Task<List<DeviceKeyRow>> DeviceKeysAsync(string userId, IReadOnlyCollection<string> deviceIds, CancellationToken ct = default) =>
        db.ReadAsync(async c =>
        {
            var sql = "SELECT k.device_id, k.key_json, d.display_name FROM e2e_device_keys k JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id WHERE k.user_id = @userId"
                + (deviceIds.Count > 0 ? " AND " + db.In("k.device_id", "deviceIds") : "");
            return (await c.QueryAsync<DeviceKeyRow>(sql, new { userId, deviceIds = db.List(deviceIds) })).ToList();
        }, ct);

    /// <summary>One device's stored device_keys, or null.</summary>
    public Task<byte[]?> DeviceKeyAsync(string userId, string deviceId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<byte[]?>("SELECT key_json FROM e2e_device_keys WHERE user_id = @userId AND device_id = @deviceId", new { userId, deviceId }), ct);

    /// <summary>Stores (or replaces) a device's keys in the caller's transaction; true when they changed.</summary>
    public static async Task<bool> SetDeviceKeysAsync(DbTransaction tx, string userId, string deviceId, byte[] keyJson)
    {
        var old = await tx.Connection!.ExecuteScalarAsync<byte[]?>("SELECT key_json FROM e2e_device_keys WHERE user_id = @userId AND device_id = @deviceId", new { userId, deviceId }, tx);
        if (old is not null && old.AsSpan().SequenceEqual(keyJson))
        {
            return false;
        }

        await tx.Connection!.ExecuteAsync(
            "INSERT INTO e2e_device_keys (user_id, device_id, key_json) VALUES (@userId, @deviceId, @keyJson) ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = @keyJson",
            new { userId, deviceId, keyJson = (object)keyJson }, tx);
        return true;
    }

    /// <summary>The stored JSON of one-time keys of a device with these (algorithm, key ID) names, to detect re-uploads.</summary>
    public static async Task<Dictionary<(string, string), byte[]>> ExistingOneTimeKeysAsync(DbTransaction tx, string userId, string deviceId)
    {
        var rows = await tx.Connection!.QueryAsync<OneTimeKey>(
            "SELECT algorithm, key_id, key_json FROM e2e_one_time_keys WHERE user_id = @userId AND device_id = @deviceId", new { userId, deviceId }, tx);
        return rows.ToDictionary(r => (r.Algorithm, r.KeyId), r => r.KeyJson);
    }

    /// <summary>Adds one-time keys in the caller's transaction.</summary>
    public static Task AddOneTimeKeysAsync(DbTransaction tx, string userId, string deviceId, IEnumerable<OneTimeKey> keys) =>
        tx.Connection!.ExecuteAsync(
            "INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, key_json) VALUES (@userId, @deviceId, @Algorithm, @KeyId, @KeyJson) ON CONFLICT DO NOTHING",
            keys.Select(k => new { userId, deviceId, k.Algorithm, k.KeyId, KeyJson = (object)k.KeyJson }), tx);

    /// <summary>Sets a device's fallback key for the key's algorithm in the caller's transaction. Re-uploading the same key keeps its used flag.</summary>
    public static Task SetFallbackKeyAsync(DbTransaction tx, string userId, string deviceId, OneTimeKey key) =>
        tx.Connection!.ExecuteAsync(
            """
            INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used) VALUES (@userId, @deviceId, @Algorithm, @KeyId, @KeyJson, FALSE)
            ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = @KeyId, key_json = @KeyJson,
                used = CASE WHEN e2e_fallback_keys.key_id = @KeyId AND e2e_fallback_keys.key_json = @KeyJson THEN e2e_fallback_keys.used ELSE FALSE END
            """,
            new { userId, deviceId, key.Algorithm, key.KeyId, KeyJson = (object)key.KeyJson }, tx);

    /// <summary>Unclaimed one-time keys of a device per algorithm, in the caller's transaction.</summary>
    public static Task<Dictionary<string, long>> OneTimeKeyCountsAsync(DbTransaction tx, string userId, string deviceId) =>
        OneTimeKeyCountsAsync(tx.Connection!, tx, userId, deviceId);

    private static async Task<Dictionary<string, long>> OneTimeKeyCountsAsync(DbConnection c, DbTransaction? tx, string userId, string deviceId) =>
        (await c.QueryAsync<AlgorithmCountRow>(
            "SELECT algorithm, COUNT(*) AS count FROM e2e_one_time_keys WHERE user_id = @userId AND device_id = @deviceId GROUP BY algorithm", new { userId, deviceId }, tx))
        .ToDictionary(r => r.Algorithm, r => r.Count, StringComparer.Ordinal);

    /// <summary>What /sync reports for a device, in one read: unclaimed one-time keys per algorithm, and the algorithms of unused fallback keys.</summary>
    public Task<(Dictionary<string, long> Counts, List<string> UnusedFallback)> SyncCountsAsync(string userId, string deviceId, CancellationToken ct = default) =>
        db.ReadAsync(async c =>
        {
            var rows = await c.QueryAsync<KeyCountRow>(
                """
                SELECT algorithm, COUNT(*) AS count, CAST(0 AS BIGINT) AS fallback FROM e2e_one_time_keys WHERE user_id = @userId AND device_id = @deviceId GROUP BY algorithm
                UNION ALL
                SELECT algorithm, CAST(0 AS BIGINT), CAST(1 AS BIGINT) FROM e2e_fallback_keys WHERE user_id = @userId AND device_id = @deviceId AND used = FALSE
                """, new { userId, deviceId });
            var counts = new Dictionary<string, long>(StringComparer.Ordinal);
            var fallback = new List<string>();
            foreach (var (algorithm, count, isFallback) in rows)
            {
                if (isFallback == 1)
                {
                    fallback.Add(algorithm);
                }
                else
                {
                    counts[algorithm] = count;
                }
            }

            fallback.Sort(StringComparer.Ordinal);
            return (counts, fallback);
        }, ct);

    /// <summary>
    /// Claims one key per requested (user, device, algorithm): a one-time key, which is deleted so no one else gets it,
    /// or else the device's fallback key, which is marked used. One transaction; concurrent claimers never share a
    /// one-time key (SQLite has one writer; PostgreSQL locks the row and the other claimer skips it).
    /// </summary>
    public Task<List<(string UserId, string DeviceId, OneTimeKey Key)>> ClaimAsync(IReadOnlyList<(string UserId, string DeviceId, string Algorithm)> wanted, CancellationToken ct = default) =>
        db.Engine == DatabaseEngine.Postgres ? ClaimOnPostgresAsync(wanted, ct) : ClaimOnSqliteAsync(wanted, ct);

    /// <summary>SQLite: statements run in-process, so a statement or two per device costs microseconds.</summary>
    private Task<List<(string UserId, string DeviceId, OneTimeKey Key)>> ClaimOnSqliteAsync(IReadOnlyList<(string UserId, string DeviceId, string Algorithm)> wanted, CancellationToken ct) =>
        db.WriteAsync(async tx =>
        {
            var result = new List<(string, string, OneTimeKey)>();
            foreach (var (userId, deviceId, algorithm) in wanted)
            {
                var claimed = (await tx.Connection!.QueryAsync<OneTimeKey>(
                    """
                    DELETE FROM e2e_one_time_keys WHERE rowid = (
                      SELECT rowid FROM e2e_one_time_keys WHERE user_id = @userId AND device_id = @deviceId AND algorithm = @algorithm ORDER BY key_id LIMIT 1)
                    RETURNING algorithm, key_id, key_json
                    """, new { userId, deviceId, algorithm }, tx)).ToList();
                if (claimed.Count > 0)
                {
                    result.Add((userId, deviceId, claimed[0]));
                    continue;
                }

                var fallback = (await tx.Connection!.QueryAsync<OneTimeKey>(
                    "UPDATE e2e_fallback_keys SET used = TRUE WHERE user_id = @userId AND device_id = @deviceId AND algorithm = @algorithm RETURNING algorithm, key_id, key_json",
                    new { userId, deviceId, algorithm }, tx)).ToList();
                if (fallback.Count > 0)
                {
                    result.Add((userId, deviceId, fallback[0]));
                }
            }

            return result;
        }, ct);

    /// <summary>
    /// PostgreSQL: two statements for the whole request, since each statement is a network round trip. Each wanted
    /// device's lowest one-time key is locked (skipping keys a concurrent claim holds) and deleted; devices left without
    /// one get their fallback key.
    /// </summary>
    private Task<List<(string UserId, string DeviceId, OneTimeKey Key)>> ClaimOnPostgresAsync(IReadOnlyList<(string UserId, string DeviceId, string Algorithm)> wanted, CancellationToken ct) =>
        db.WriteAsync(async tx =>
        {
            var result = new List<(string, string, OneTimeKey)>();
            if (wanted.Count == 0)
            {
                return result;
            }

            var users = wanted.Select(w => w.UserId).ToArray();
            var devices = wanted.Select(w => w.DeviceId).ToArray();
            var algorithms = wanted.Select(w => w.Algorithm).ToArray();
            var claimed = await tx.Connection!.QueryAsync<ClaimedKeyRow>(
                """
                DELETE FROM e2e_one_time_keys k USING (
                  SELECT x.user_id, x.device_id, x.algorithm, x.key_id
                  FROM unnest(@users, @devices, @algorithms) AS w(u, d, a)
                  CROSS JOIN LATERAL (
                    SELECT user_id, device_id, algorithm, key_id FROM e2e_one_time_keys
                    WHERE user_id = w.u AND device_id = w.d AND algorithm = w.a ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED) x
                ) p
                WHERE k.user_id = p.user_id AND k.device_id = p.device_id AND k.algorithm = p.algorithm AND k.key_id = p.key_id
                RETURNING k.user_id, k.device_id, k.algorithm, k.key_id, k.key_json
                """, new { users = db.List(users), devices = db.List(devices), algorithms = db.List(algorithms) }, tx);
            var served = new HashSet<(string, string, string)>();
            foreach (var k in claimed)
            {
                served.Add((k.UserId, k.DeviceId, k.Algorithm));
                result.Add((k.UserId, k.DeviceId, new OneTimeKey(k.Algorithm, k.KeyId, k.KeyJson)));
            }

            var rest = wanted.Where(w => !served.Contains((w.UserId, w.DeviceId, w.Algorithm))).ToList();
            if (rest.Count > 0)
            {
                var fallback = await tx.Connection!.QueryAsync<ClaimedKeyRow>(
                    """
                    UPDATE e2e_fallback_keys f SET used = TRUE FROM unnest(@users, @devices, @algorithms) AS w(u, d, a)
                    WHERE f.user_id = w.u AND f.device_id = w.d AND f.algorithm = w.a
                    RETURNING f.user_id, f.device_id, f.algorithm, f.key_id, f.key_json
                    """,
                    new { users = db.List(rest.Select(w => w.UserId)), devices = db.List(rest.Select(w => w.DeviceId)), algorithms = db.List(rest.Select(w => w.Algorithm)) }, tx);
                foreach (var f in fallback)
                {
                    result.Add((f.UserId, f.DeviceId, new OneTimeKey(f.Algorithm, f.KeyId, f.KeyJson)));
                }
            }

            return result;
        }, ct);

    /// <summary>The user's cross-signing keys by type.</summary>
    public Task<Dictionary<string, CrossSigningKeyRow>> CrossSigningKeysAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<CrossSigningKeyRow>(
            "SELECT user_id, key_type, key_id, key_json FROM e2e_cross_signing_keys WHERE user_id = @userId", new { userId }))
            .ToDictionary(r => r.KeyType, StringComparer.Ordinal), ct);

    /// <summary>Stores cross-signing keys in the caller's transaction; a replaced self-signing or user-signing key's signatures go with it.</summary>
    public static async Task SetCrossSigningKeyAsync(DbTransaction tx, string userId, string keyType, string keyId, byte[] keyJson)
    {
        var old = await tx.Connection!.ExecuteScalarAsync<string?>(
            "SELECT key_id FROM e2e_cross_signing_keys WHERE user_id = @userId AND key_type = @keyType", new { userId, keyType }, tx);
        if (old is not null && old != keyId)
        {
            // Signatures made with the old key (or over the old master key) no longer mean anything.
            await tx.Connection!.ExecuteAsync("DELETE FROM e2e_signatures WHERE signer_user_id = @userId AND signer_key_id = @old", new { userId, old }, tx);
            await tx.Connection!.ExecuteAsync("DELETE FROM e2e_signatures WHERE target_user_id = @userId AND target_key_id = @target", new { userId, target = old["ed25519:".Length..] }, tx);
        }

        await tx.Connection!.ExecuteAsync(
            "INSERT INTO e2e_cross_signing_keys (user_id, key_type, key_id, key_json) VALUES (@userId, @keyType, @keyId, @keyJson) ON CONFLICT (user_id, key_type) DO UPDATE SET key_id = @keyId, key_json = @keyJson",
            new { userId, keyType, keyId, keyJson = (object)keyJson }, tx);
    }

    /// <summary>Stores signatures (replacing an older one by the same signer and key) in the caller's transaction.</summary>
    public static Task AddSignaturesAsync(DbTransaction tx, IEnumerable<StoredSignature> signatures) =>
        tx.Connection!.ExecuteAsync(
            """
            INSERT INTO e2e_signatures (target_user_id, target_key_id, signer_user_id, signer_key_id, signature) VALUES (@TargetUserId, @TargetKeyId, @SignerUserId, @SignerKeyId, @Signature)
            ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id) DO UPDATE SET signature = @Signature
            """, signatures, tx);

    /// <summary>Signatures uploaded for the given users' keys.</summary>
    public Task<List<StoredSignature>> SignaturesForAsync(IReadOnlyCollection<string> targetUserIds, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<StoredSignature>(
            "SELECT target_user_id, target_key_id, signer_user_id, signer_key_id, signature FROM e2e_signatures WHERE " + db.In("target_user_id", "targetUserIds"),
            new { targetUserIds = db.List(targetUserIds) })).ToList(), ct);

    /// <summary>The user's dehydrated device (MSC3814): its ID and the client's encrypted pickle, or null.</summary>
    public Task<(string DeviceId, byte[] DeviceData)?> DehydratedDeviceAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c =>
        {
            var row = (await c.QueryAsync<DehydratedDeviceRow>("SELECT device_id, device_data FROM e2e_dehydrated_devices WHERE user_id = @userId", new { userId })).FirstOrDefault();
            return row.DeviceId is null ? ((string, byte[])?)null : (row.DeviceId, row.DeviceData);
        }, ct);

    /// <summary>Makes <paramref name="deviceId"/> the user's dehydrated device (the device row must exist), in the caller's transaction.</summary>
    public static Task SetDehydratedDeviceAsync(DbTransaction tx, string userId, string deviceId, byte[] deviceData) =>
        tx.Connection!.ExecuteAsync(
            "INSERT INTO e2e_dehydrated_devices (user_id, device_id, device_data) VALUES (@userId, @deviceId, @deviceData) ON CONFLICT (user_id) DO UPDATE SET device_id = @deviceId, device_data = @deviceData",
            new { userId, deviceId, deviceData = (object)deviceData }, tx);

    /// <summary>Records that <paramref name="userId"/>'s devices or cross-signing keys changed; returns the device_lists stream position.</summary>
    public static async Task<long> RecordChangeAsync(DbTransaction tx, string userId)
    {
        var stream = await StreamPositions.NextAsync(tx, DeviceListsStream);
        await tx.Connection!.ExecuteAsync("INSERT INTO device_list_changes (stream_ordering, user_id) VALUES (@stream, @userId)", new { stream, userId }, tx);
        return stream;
    }

    /// <summary>Users whose device lists changed in (<paramref name="after"/>, <paramref name="upTo"/>].</summary>
    public Task<List<string>> ChangedUsersAsync(long after, long upTo, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(
            "SELECT DISTINCT user_id FROM device_list_changes WHERE stream_ordering > @after AND stream_ordering <= @upTo", new { after, upTo })).ToList(), ct);

    /// <summary>Removes a user's cross-signing keys and every signature by or for them (deactivation), in the caller's transaction.</summary>
    public static async Task DeleteUserAsync(DbTransaction tx, string userId)
    {
        await tx.Connection!.ExecuteAsync("DELETE FROM e2e_cross_signing_keys WHERE user_id = @userId", new { userId }, tx);
        await tx.Connection!.ExecuteAsync("DELETE FROM e2e_signatures WHERE target_user_id = @userId OR signer_user_id = @userId", new { userId }, tx);
    }

    /// <summary>Removes signatures over the given devices (their keys are gone with them), in the caller's transaction.</summary>
    public static Task DeleteDeviceSignaturesAsync(DbTransaction tx, string userId, IEnumerable<string> deviceIds) =>
        tx.Connection!.ExecuteAsync("DELETE FROM e2e_signatures WHERE target_user_id = @userId AND target_key_id = @deviceId",
            deviceIds.Select(deviceId => new { userId, deviceId }), tx);
}

/// <summary>A device's uploaded device_keys with its display name.</summary>
public readonly record struct DeviceKeyRow(string DeviceId, byte[] KeyJson, string? DisplayName);

internal readonly record struct AlgorithmCountRow(string Algorithm, long Count);

internal readonly record struct KeyCountRow(string Algorithm, long Count, long Fallback);

internal readonly record struct ClaimedKeyRow(string UserId, string DeviceId, string Algorithm, string KeyId, byte[] KeyJson);

internal readonly record struct DehydratedDeviceRow(string DeviceId, byte[] DeviceData);
