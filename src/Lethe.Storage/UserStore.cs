using Dapper;

namespace Lethe.Storage;

/// <summary>A local account as stored.</summary>
public sealed record UserRecord
{
    /// <summary>The full user ID.</summary>
    public required string UserId { get; init; }

    /// <summary>Argon2id PHC string, or null when password login is impossible.</summary>
    public string? PasswordHash { get; init; }

    /// <summary>Server admin.</summary>
    public bool IsAdmin { get; init; }

    /// <summary>Guest account.</summary>
    public bool IsGuest { get; init; }

    /// <summary>Synapse's user_type (e.g. <c>bot</c>, <c>support</c>), or null for a normal user.</summary>
    public string? UserType { get; init; }

    /// <summary>The application service that owns the account, if any.</summary>
    public string? AppserviceId { get; init; }

    /// <summary>Deactivated accounts cannot log in.</summary>
    public bool Deactivated { get; init; }

    /// <summary>Creation time, ms since the epoch.</summary>
    public long CreatedTs { get; init; }
}

/// <summary>Local accounts.</summary>
public sealed class UserStore(Database db)
{
    /// <summary>Creates an account; false when the user ID is taken.</summary>
    public Task<bool> TryCreateAsync(UserRecord user, CancellationToken ct = default) =>
        db.WriteAsync(tx => TryCreateAsync(tx, user), ct);

    /// <summary>Creates an account in the caller's transaction; false when the user ID is taken.</summary>
    public static async Task<bool> TryCreateAsync(System.Data.Common.DbTransaction tx, UserRecord user)
    {
        var rows = await tx.Connection!.ExecuteAsync(
            """
            INSERT INTO users (user_id, password_hash, is_admin, is_guest, user_type, appservice_id, deactivated, created_ts)
            VALUES (@UserId, @PasswordHash, @IsAdmin, @IsGuest, @UserType, @AppserviceId, @Deactivated, @CreatedTs)
            ON CONFLICT (user_id) DO NOTHING
            """, user, tx);
        return rows == 1;
    }

    /// <summary>True when the user ID is taken (by any account, deactivated ones included: IDs are never reused).</summary>
    public Task<bool> ExistsAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM users WHERE user_id = @userId", new { userId }) > 0, ct);

    /// <summary>Marks the account deactivated and removes its password, devices and tokens, in the caller's transaction.</summary>
    public static async Task DeactivateAsync(System.Data.Common.DbTransaction tx, string userId)
    {
        await tx.Connection!.ExecuteAsync("UPDATE users SET deactivated = TRUE, password_hash = NULL WHERE user_id = @userId", new { userId }, tx);
        await tx.Connection!.ExecuteAsync("DELETE FROM devices WHERE user_id = @userId", new { userId }, tx);
    }

    /// <summary>The account, or null.</summary>
    public Task<UserRecord?> GetAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.QuerySingleOrDefaultAsync<UserRecord>(
            "SELECT user_id, password_hash, is_admin, is_guest, user_type, appservice_id, deactivated, created_ts FROM users WHERE user_id = @userId",
            new { userId }), ct);

    /// <summary>Replaces the password hash.</summary>
    public Task SetPasswordHashAsync(string userId, string? passwordHash, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "UPDATE users SET password_hash = @passwordHash WHERE user_id = @userId", new { userId, passwordHash }, tx), ct);

    /// <summary>Grants or revokes server admin.</summary>
    public Task SetAdminAsync(string userId, bool isAdmin, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "UPDATE users SET is_admin = @isAdmin WHERE user_id = @userId", new { userId, isAdmin }, tx), ct);

    /// <summary>Number of accounts (all kinds).</summary>
    public Task<long> CountAsync(CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM users"), ct);
}
