using System.Security.Cryptography;

namespace Lethe.Protocol.Crypto;

/// <summary>Ed25519 signatures (RFC 8032) through libsodium.</summary>
public static class Ed25519
{
    /// <summary>Length of a public key in bytes.</summary>
    public const int PublicKeyLength = Sodium.PublicKeyBytes;

    /// <summary>Length of a seed (the private key as Matrix stores it) in bytes.</summary>
    public const int SeedLength = Sodium.SeedBytes;

    /// <summary>Length of a signature in bytes.</summary>
    public const int SignatureLength = Sodium.SignatureBytes;

    /// <summary>Returns a fresh random 32-byte seed.</summary>
    public static byte[] GenerateSeed() => SecureRandom.Bytes(SeedLength);

    /// <summary>Expands a seed into (public key, libsodium secret key).</summary>
    public static (byte[] PublicKey, byte[] SecretKey) KeyPairFromSeed(ReadOnlySpan<byte> seed)
    {
        if (seed.Length != SeedLength)
        {
            throw new ArgumentException($"An ed25519 seed is {SeedLength} bytes", nameof(seed));
        }

        var pk = new byte[Sodium.PublicKeyBytes];
        var sk = new byte[Sodium.SecretKeyBytes];
        if (Sodium.crypto_sign_seed_keypair(pk, sk, seed) != 0)
        {
            throw new CryptographicException("crypto_sign_seed_keypair failed");
        }

        return (pk, sk);
    }

    /// <summary>Signs a message with a libsodium secret key and returns the 64-byte detached signature.</summary>
    public static byte[] Sign(ReadOnlySpan<byte> message, ReadOnlySpan<byte> secretKey)
    {
        var sig = new byte[Sodium.SignatureBytes];
        if (Sodium.crypto_sign_detached(sig, out _, message, (ulong)message.Length, secretKey) != 0)
        {
            throw new CryptographicException("crypto_sign_detached failed");
        }

        return sig;
    }

    /// <summary>True when the signature is a valid ed25519 signature of the message by the public key.</summary>
    public static bool Verify(ReadOnlySpan<byte> signature, ReadOnlySpan<byte> message, ReadOnlySpan<byte> publicKey)
    {
        if (signature.Length != Sodium.SignatureBytes || publicKey.Length != Sodium.PublicKeyBytes)
        {
            return false;
        }

        return Sodium.crypto_sign_verify_detached(signature, message, (ulong)message.Length, publicKey) == 0;
    }
}
