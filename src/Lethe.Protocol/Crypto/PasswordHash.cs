using System.Text;

namespace Lethe.Protocol.Crypto;

/// <summary>Argon2id password hashing (libsodium's <c>crypto_pwhash_str</c>), encoded in the standard PHC string form.</summary>
public static class PasswordHash
{
    /// <summary>libsodium's "moderate" limits: about 0.1 s and 64 MiB per hash on this class of machine.</summary>
    public const ulong OpsLimit = 3;

    /// <summary>Memory used per hash, in bytes.</summary>
    public const ulong MemLimit = 64UL * 1024 * 1024;

    /// <summary>Hashes a password with a fresh random salt.</summary>
    public static string Hash(string password)
    {
        var pw = Encoding.UTF8.GetBytes(password);
        Span<byte> output = stackalloc byte[Sodium.PwHashStrBytes];
        if (Sodium.crypto_pwhash_str_alg(output, pw, (ulong)pw.Length, OpsLimit, (nuint)MemLimit, Sodium.PwHashAlgArgon2id13) != 0)
        {
            throw new InvalidOperationException("Argon2id hashing failed (out of memory?)");
        }

        Sodium.sodium_memzero(pw, (nuint)pw.Length);
        var end = output.IndexOf((byte)0);
        return Encoding.ASCII.GetString(output[..end]);
    }

    /// <summary>True when the password matches the stored hash (constant time in the password, as libsodium verifies).</summary>
    public static bool Verify(string hash, string password)
    {
        var hashBytes = new byte[Encoding.ASCII.GetByteCount(hash) + 1];
        Encoding.ASCII.GetBytes(hash, hashBytes);
        var pw = Encoding.UTF8.GetBytes(password);
        var ok = Sodium.crypto_pwhash_str_verify(hashBytes, pw, (ulong)pw.Length) == 0;
        Sodium.sodium_memzero(pw, (nuint)pw.Length);
        return ok;
    }
}
