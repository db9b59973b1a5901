using Dapper;

namespace Lethe.Storage;

/// <summary>A local user's global profile.</summary>
public sealed record ProfileRecord(string? Displayname, string? AvatarUrl);

/// <summary>Global profiles of local users.</summary>
public sealed class ProfileStore(Database db)
{
    /// <summary>The profile; null when the user has none (or does not exist).</summary>
    public Task<ProfileRecord?> GetAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.QuerySingleOrDefaultAsync<ProfileRecord>(
            "SELECT displayname, avatar_url FROM profiles WHERE user_id = @userId", new { userId }), ct);

    /// <summary>Creates the profile of a new account in the caller's transaction.</summary>
    public static Task CreateAsync(System.Data.Common.DbTransaction tx, string userId, string? displayname) =>
        tx.Connection!.ExecuteAsync(
            "INSERT INTO profiles (user_id, displayname) VALUES (@userId, @displayname) ON CONFLICT (user_id) DO NOTHING", new { userId, displayname }, tx);

    /// <summary>Sets the display name (null clears it).</summary>
    public Task SetDisplaynameAsync(string userId, string? displayname, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "INSERT INTO profiles (user_id, displayname) VALUES (@userId, @displayname) ON CONFLICT (user_id) DO UPDATE SET displayname = @displayname",
            new { userId, displayname }, tx), ct);

    /// <summary>Sets the avatar URL (null clears it).</summary>
    public Task SetAvatarUrlAsync(string userId, string? avatarUrl, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "INSERT INTO profiles (user_id, avatar_url) VALUES (@userId, @avatarUrl) ON CONFLICT (user_id) DO UPDATE SET avatar_url = @avatarUrl",
            new { userId, avatarUrl }, tx), ct);
}
