using System.Text;
using Lethe.Protocol.Crypto;

namespace Lethe.Homeserver.Accounts;

/// <summary>Token generation and the hash under which tokens are stored.</summary>
public static class TokenHash
{
    /// <summary>A new 256-bit random token with a readable prefix (e.g. <c>lat_</c> access, <c>lrt_</c> refresh).</summary>
    public static string NewToken(string prefix) => prefix + Base64Unpadded.EncodeUrlSafe(SecureRandom.Bytes(32));

    /// <summary>SHA-256 of the token text, base64: what the database holds.</summary>
    public static string Of(string token) => Base64Unpadded.Encode(Sha256.Hash(Encoding.UTF8.GetBytes(token)));

    /// <summary>A new device ID: ten upper-case letters, as Synapse generates them.</summary>
    public static string NewDeviceId() => SecureRandom.String("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10);
}
