using System.Runtime.InteropServices;

namespace Lethe.Protocol.Crypto;

/// <summary>P/Invoke bindings to Debian's libsodium (libsodium23): ed25519 and Argon2id, the primitives Synapse also uses, and its random bytes and SHA-256.</summary>
internal static partial class Sodium
{
    private const string Lib = "libsodium.so.23";

    internal const int PublicKeyBytes = 32;
    internal const int SecretKeyBytes = 64;
    internal const int SeedBytes = 32;
    internal const int SignatureBytes = 64;
    internal const int PwHashStrBytes = 128;
    internal const int PwHashAlgArgon2id13 = 2;

    static Sodium()
    {
        if (sodium_init() < 0)
        {
            throw new InvalidOperationException("libsodium failed to initialise");
        }
    }

    /// <summary>Touches the type so the static initialiser runs (and a missing libsodium fails early with a clear message).</summary>
    internal static void EnsureLoaded()
    {
    }

    [LibraryImport(Lib)]
    private static partial int sodium_init();

    [LibraryImport(Lib)]
    internal static partial int crypto_sign_seed_keypair(Span<byte> pk, Span<byte> sk, ReadOnlySpan<byte> seed);

    [LibraryImport(Lib)]
    internal static partial int crypto_sign_detached(Span<byte> sig, out ulong siglen, ReadOnlySpan<byte> m, ulong mlen, ReadOnlySpan<byte> sk);

    [LibraryImport(Lib)]
    internal static partial int crypto_sign_verify_detached(ReadOnlySpan<byte> sig, ReadOnlySpan<byte> m, ulong mlen, ReadOnlySpan<byte> pk);

    [LibraryImport(Lib)]
    internal static partial int crypto_pwhash_str_alg(Span<byte> output, ReadOnlySpan<byte> passwd, ulong passwdlen, ulong opslimit, nuint memlimit, int alg);

    [LibraryImport(Lib)]
    internal static partial int crypto_pwhash_str_verify(ReadOnlySpan<byte> str, ReadOnlySpan<byte> passwd, ulong passwdlen);

    [LibraryImport(Lib)]
    internal static partial int crypto_pwhash_str_needs_rehash(ReadOnlySpan<byte> str, ulong opslimit, nuint memlimit);

    [LibraryImport(Lib)]
    internal static partial void sodium_memzero(Span<byte> pnt, nuint len);

    [LibraryImport(Lib)]
    internal static partial void randombytes_buf(Span<byte> buf, nuint size);

    [LibraryImport(Lib)]
    internal static partial uint randombytes_uniform(uint upperBound);

    [LibraryImport(Lib)]
    internal static partial int crypto_hash_sha256(Span<byte> output, ReadOnlySpan<byte> input, ulong inputLength);
}
