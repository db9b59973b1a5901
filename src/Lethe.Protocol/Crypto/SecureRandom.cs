namespace Lethe.Protocol.Crypto;

/// <summary>
/// Cryptographically secure random numbers, from libsodium (the kernel's <c>getrandom</c>): keys, tokens, nonces, IDs.
/// </summary>
/// <remarks>
/// Not <c>RandomNumberGenerator</c>: on Linux it loads OpenSSL (libcrypto and libssl, 4 MiB of resident memory), which
/// a server that signs with libsodium and serves plain HTTP has no other use for.
/// </remarks>
public static class SecureRandom
{
    /// <summary>Fills <paramref name="buffer"/> with random bytes.</summary>
    public static void Fill(Span<byte> buffer) => Sodium.randombytes_buf(buffer, (nuint)buffer.Length);

    /// <summary><paramref name="count"/> random bytes.</summary>
    public static byte[] Bytes(int count)
    {
        var bytes = new byte[count];
        Fill(bytes);
        return bytes;
    }

    /// <summary>A uniformly distributed integer in [0, <paramref name="maxExclusive"/>), without modulo bias.</summary>
    public static int Int32(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        return (int)Sodium.randombytes_uniform((uint)maxExclusive);
    }

    /// <summary>A uniformly distributed integer in [<paramref name="minInclusive"/>, <paramref name="maxExclusive"/>).</summary>
    public static int Int32(int minInclusive, int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(minInclusive, maxExclusive);
        return minInclusive + (int)Sodium.randombytes_uniform((uint)(maxExclusive - minInclusive));
    }

    /// <summary>A string of <paramref name="length"/> characters, each drawn uniformly from <paramref name="alphabet"/>.</summary>
    public static string String(string alphabet, int length)
    {
        ArgumentException.ThrowIfNullOrEmpty(alphabet);
        return string.Create(length, alphabet, static (span, chars) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = chars[Int32(chars.Length)];
            }
        });
    }
}
