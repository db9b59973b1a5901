namespace Lethe.Protocol.Crypto;

/// <summary>SHA-256 of data in memory (event hashes, token hashes), through libsodium.</summary>
/// <remarks>
/// Not <c>System.Security.Cryptography.SHA256</c>, which loads OpenSSL (see <see cref="SecureRandom"/>). libsodium's
/// portable code is slower on long inputs (2.0 µs against 0.9 µs for a 700-byte event here, where OpenSSL uses the
/// CPU's SHA instructions) and faster on short ones (0.2 µs against 0.45 µs for an access token): a few microseconds
/// per event sent. Nothing hashes large files.
/// </remarks>
public static class Sha256
{
    /// <summary>Length of a digest in bytes.</summary>
    public const int Length = 32;

    /// <summary>The digest of <paramref name="data"/>.</summary>
    public static byte[] Hash(ReadOnlySpan<byte> data)
    {
        var digest = new byte[Length];
        _ = Sodium.crypto_hash_sha256(digest, data, (ulong)data.Length);
        return digest;
    }
}
