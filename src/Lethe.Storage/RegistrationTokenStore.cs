using Dapper;

namespace Lethe.Storage;

/// <summary>A registration token, in the shape of Synapse's admin API.</summary>
public sealed record RegistrationTokenRecord
{
    /// <summary>The token text.</summary>
    public required string Token { get; init; }

    /// <summary>How many registrations it may complete; null for unlimited.</summary>
    public int? UsesAllowed { get; init; }

    /// <summary>Registrations in progress with it.</summary>
    public int Pending { get; init; }

    /// <summary>Registrations completed with it.</summary>
    public int Completed { get; init; }

    /// <summary>Expiry (ms); null for never.</summary>
    public long? ExpiryTime { get; init; }
}

/// <summary>Registration tokens.</summary>
public sealed class RegistrationTokenStore(Database db)
{
    private const string Columns = "token, uses_allowed, pending, completed, expiry_time";

    /// <summary>All tokens.</summary>
    public Task<List<RegistrationTokenRecord>> ListAsync(CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<RegistrationTokenRecord>($"SELECT {Columns} FROM registration_tokens ORDER BY token")).ToList(), ct);

    /// <summary>One token or null.</summary>
    public Task<RegistrationTokenRecord?> GetAsync(string token, CancellationToken ct = default) =>
        db.ReadAsync(c => c.QuerySingleOrDefaultAsync<RegistrationTokenRecord>($"SELECT {Columns} FROM registration_tokens WHERE token = @token", new { token }), ct);

    /// <summary>Creates a token; false when it exists.</summary>
    public Task<bool> TryCreateAsync(RegistrationTokenRecord token, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync(
            "INSERT INTO registration_tokens (token, uses_allowed, pending, completed, expiry_time) VALUES (@Token, @UsesAllowed, 0, 0, @ExpiryTime) ON CONFLICT (token) DO NOTHING",
            token, tx) == 1, ct);

    /// <summary>Updates uses_allowed and expiry_time; false when the token does not exist.</summary>
    public Task<bool> UpdateAsync(string token, int? usesAllowed, long? expiryTime, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync(
            "UPDATE registration_tokens SET uses_allowed = @usesAllowed, expiry_time = @expiryTime WHERE token = @token",
            new { token, usesAllowed, expiryTime }, tx) == 1, ct);

    /// <summary>Deletes a token; false when it does not exist.</summary>
    public Task<bool> DeleteAsync(string token, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync("DELETE FROM registration_tokens WHERE token = @token", new { token }, tx) == 1, ct);

    /// <summary>
    /// Reserves one use of a token for a registration in progress: true when the token exists, has not expired and
    /// (completed + pending) is below uses_allowed. Atomic, so two sign-ups cannot both take the last use.
    /// </summary>
    public Task<bool> TryReserveAsync(string token, long now, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync(
            """
            UPDATE registration_tokens SET pending = pending + 1
            WHERE token = @token AND (expiry_time IS NULL OR expiry_time > @now)
              AND (uses_allowed IS NULL OR completed + pending < uses_allowed)
            """, new { token, now }, tx) == 1, ct);

    /// <summary>Turns a reservation into a completed use.</summary>
    public Task CompleteAsync(string token, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "UPDATE registration_tokens SET pending = pending - 1, completed = completed + 1 WHERE token = @token AND pending > 0", new { token }, tx), ct);

    /// <summary>Releases a reservation whose registration was abandoned.</summary>
    public Task ReleaseAsync(string token, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "UPDATE registration_tokens SET pending = pending - 1 WHERE token = @token AND pending > 0", new { token }, tx), ct);
}
