using System.Text;

namespace Lethe.Protocol.Crypto;

/// <summary>A server's ed25519 signing key: its key ID (e.g. <c>ed25519:a_AbCd</c>) and key pair.</summary>
public sealed class SigningKey
{
    private readonly byte[] _secretKey;

    /// <summary>Creates a key from its ID and 32-byte seed.</summary>
    public SigningKey(string keyId, ReadOnlySpan<byte> seed)
    {
        if (!keyId.StartsWith("ed25519:", StringComparison.Ordinal) || keyId.Length == "ed25519:".Length)
        {
            throw new ArgumentException("Signing key IDs have the form ed25519:<version>", nameof(keyId));
        }

        KeyId = keyId;
        Seed = seed.ToArray();
        (PublicKey, _secretKey) = Ed25519.KeyPairFromSeed(seed);
        PublicKeyBase64 = Base64Unpadded.Encode(PublicKey);
    }

    /// <summary>The signing key identifier, algorithm and version: <c>ed25519:version</c>.</summary>
    public string KeyId { get; }

    /// <summary>The 32-byte seed (the secret).</summary>
    public byte[] Seed { get; }

    /// <summary>The 32-byte public key.</summary>
    public byte[] PublicKey { get; }

    /// <summary>The public key in unpadded Base64, as published in key responses.</summary>
    public string PublicKeyBase64 { get; }

    /// <summary>Generates a new key with a random version of the form <c>a_XXXX</c>, as Synapse does.</summary>
    public static SigningKey Generate()
    {
        var version = "a_" + Base64Unpadded.EncodeUrlSafe(Ed25519.GenerateSeed().AsSpan(0, 3));
        return new SigningKey("ed25519:" + version, Ed25519.GenerateSeed());
    }

    /// <summary>Signs bytes, returning the raw signature.</summary>
    public byte[] Sign(ReadOnlySpan<byte> message) => Ed25519.Sign(message, _secretKey);

    /// <summary>Parses Synapse's signing key file: one line per key, <c>ed25519 &lt;version&gt; &lt;unpadded base64 seed&gt;</c>. The first key is used.</summary>
    /// <exception cref="FormatException">The file holds no well-formed key.</exception>
    public static SigningKey ParseSynapseKeyFile(string text)
    {
        foreach (var rawLine in text.Split('\n'))
        {
            var line = rawLine.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 3 || parts[0] != "ed25519")
            {
                throw new FormatException("expected a line 'ed25519 <key version> <base64 seed>'");
            }

            if (!Base64Unpadded.TryDecode(parts[2], out var seed) || seed.Length != Ed25519.SeedLength)
            {
                throw new FormatException("the key seed is not 32 bytes of base64");
            }

            return new SigningKey("ed25519:" + parts[1], seed);
        }

        throw new FormatException("the file holds no key");
    }

    /// <summary>Writes the key in Synapse's signing key file format.</summary>
    public string ToSynapseKeyFile()
    {
        var sb = new StringBuilder();
        sb.Append("ed25519 ").Append(KeyId.AsSpan("ed25519:".Length)).Append(' ').Append(Base64Unpadded.Encode(Seed)).Append('\n');
        return sb.ToString();
    }
}
