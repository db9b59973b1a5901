using System.Data.Common;
using Dapper;

namespace Lethe.Storage;

/// <summary>A stored access token (by hash) and whom it authenticates.</summary>
public sealed record AccessTokenRecord
{
    /// <summary>SHA-256 of the token.</summary>
    public required string TokenHash { get; init; }

    /// <summary>The user.</summary>
    public required string UserId { get; init; }

    /// <summary>The device the token is bound to.</summary>
    public required string DeviceId { get; init; }

    /// <summary>Expiry (ms) for refreshable tokens; null for tokens that do not expire.</summary>
    public long? ValidUntilTs { get; init; }

    /// <summary>The refresh token that minted this access token, if any.</summary>
    public string? RefreshTokenHash { get; init; }
}

/// <summary>A stored refresh token (by hash).</summary>
public sealed record RefreshTokenRecord
{
    /// <summary>SHA-256 of the token.</summary>
    public required string TokenHash { get; init; }

    /// <summary>The user.</summary>
    public required string UserId { get; init; }

    /// <summary>The device.</summary>
    public required string DeviceId { get; init; }

    /// <summary>The refresh token this one replaced, kept until this one is first used.</summary>
    public string? ParentHash { get; init; }
}

/// <summary>Access and refresh tokens, stored only as hashes.</summary>
public sealed class TokenStore(Database db)
{
    /// <summary>Stores an access token in the caller's transaction.</summary>
    public static Task AddAccessTokenAsync(DbTransaction tx, AccessTokenRecord token, long now) =>
        tx.Connection!.ExecuteAsync(
            "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts, valid_until_ts, refresh_token_hash) VALUES (@TokenHash, @UserId, @DeviceId, @now, @ValidUntilTs, @RefreshTokenHash)",
            new { token.TokenHash, token.UserId, token.DeviceId, now, token.ValidUntilTs, token.RefreshTokenHash }, tx);

    /// <summary>Stores a refresh token in the caller's transaction.</summary>
    public static Task AddRefreshTokenAsync(DbTransaction tx, RefreshTokenRecord token, long now) =>
        tx.Connection!.ExecuteAsync(
            "INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_ts, parent_hash) VALUES (@TokenHash, @UserId, @DeviceId, @now, @ParentHash)",
            new { token.TokenHash, token.UserId, token.DeviceId, now, token.ParentHash }, tx);

    /// <summary>The access token with this hash, or null.</summary>
    public Task<AccessTokenRecord?> GetAccessTokenAsync(string tokenHash, CancellationToken ct = default) =>
        db.ReadAsync(c => c.QuerySingleOrDefaultAsync<AccessTokenRecord>(
            "SELECT token_hash, user_id, device_id, valid_until_ts, refresh_token_hash FROM access_tokens WHERE token_hash = @tokenHash",
            new { tokenHash }), ct);

    /// <summary>The refresh token with this hash, or null.</summary>
    public static Task<RefreshTokenRecord?> GetRefreshTokenAsync(DbTransaction tx, string tokenHash) =>
        tx.Connection!.QuerySingleOrDefaultAsync<RefreshTokenRecord>(
            "SELECT token_hash, user_id, device_id, parent_hash FROM refresh_tokens WHERE token_hash = @tokenHash", new { tokenHash }, tx);

    /// <summary>
    /// Called when a refresh token (or an access token it minted) is first used: retires the refresh token it replaced and
    /// the access tokens that one minted. Returns the hashes of the access tokens removed, so caches can forget them.
    /// </summary>
    public Task<List<string>> RetireParentAsync(string refreshTokenHash, CancellationToken ct = default) =>
        db.WriteAsync(tx => RetireParentAsync(tx, refreshTokenHash), ct);

    /// <summary>As <see cref="RetireParentAsync(string, CancellationToken)"/>, in the caller's transaction.</summary>
    public static async Task<List<string>> RetireParentAsync(DbTransaction tx, string refreshTokenHash)
    {
        var parent = await tx.Connection!.ExecuteScalarAsync<string?>(
            "SELECT parent_hash FROM refresh_tokens WHERE token_hash = @refreshTokenHash", new { refreshTokenHash }, tx);
        if (parent is null)
        {
            return [];
        }

        var removed = (await tx.Connection!.QueryAsync<string>(
            "DELETE FROM access_tokens WHERE refresh_token_hash = @parent RETURNING token_hash", new { parent }, tx)).ToList();
        await tx.Connection!.ExecuteAsync("DELETE FROM refresh_tokens WHERE token_hash = @parent", new { parent }, tx);
        await tx.Connection!.ExecuteAsync("UPDATE refresh_tokens SET parent_hash = NULL WHERE token_hash = @refreshTokenHash", new { refreshTokenHash }, tx);
        return removed;
    }

    /// <summary>Deletes one access token (logout); true when it existed.</summary>
    public Task<bool> DeleteAccessTokenAsync(string tokenHash, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync(
            "DELETE FROM access_tokens WHERE token_hash = @tokenHash", new { tokenHash }, tx) == 1, ct);

    /// <summary>Hashes of every access token of a user (to evict caches before deleting them).</summary>
    public static async Task<List<string>> AccessTokenHashesAsync(DbTransaction tx, string userId, string? deviceId = null) =>
        (await tx.Connection!.QueryAsync<string>(
            deviceId is null
                ? "SELECT token_hash FROM access_tokens WHERE user_id = @userId"
                : "SELECT token_hash FROM access_tokens WHERE user_id = @userId AND device_id = @deviceId",
            new { userId, deviceId }, tx)).ToList();
}
