using Lethe.Protocol.Crypto;

namespace Lethe.Homeserver.Accounts;

/// <summary>Argon2id hashing off the request threads, at most two at a time: each takes ~0.1 s and 64 MiB.</summary>
public sealed class PasswordHasher
{
    // A real hash of a random password: verifying unknown users against it costs the same as for real users,
    // so response times do not reveal which user IDs exist.
    private static readonly Lazy<string> DummyHash = new(() => PasswordHash.Hash(Guid.NewGuid().ToString()));

    private readonly SemaphoreSlim _slots = new(2, 2);

    /// <summary>Hashes a new password.</summary>
    public async Task<string> HashAsync(string password, CancellationToken ct = default)
    {
        await _slots.WaitAsync(ct);
        try
        {
            return await Task.Run(() => PasswordHash.Hash(password), ct);
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>Checks a password against a stored hash; a null hash is checked against a dummy (always false).</summary>
    public async Task<bool> VerifyAsync(string? hash, string password, CancellationToken ct = default)
    {
        await _slots.WaitAsync(ct);
        try
        {
            return await Task.Run(() => PasswordHash.Verify(hash ?? DummyHash.Value, password) && hash is not null, ct);
        }
        finally
        {
            _slots.Release();
        }
    }
}
