using System.Diagnostics.CodeAnalysis;
using System.Text.Json.Nodes;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Crypto;

/// <summary>Signing and verifying JSON objects as the spec's appendix "Signing JSON" describes.</summary>
public static class JsonSigning
{
    /// <summary>Canonical bytes of an object without its <c>signatures</c> and <c>unsigned</c> members: what a signature covers.</summary>
    public static byte[] SigningBytes(JsonObject obj) => CanonicalJson.EncodeWithout(obj, "signatures", "unsigned");

    /// <summary>Adds a signature by <paramref name="entity"/> with <paramref name="key"/> to the object, in place, and returns the base64 signature.</summary>
    public static string Sign(JsonObject obj, string entity, SigningKey key)
    {
        var signature = Base64Unpadded.Encode(key.Sign(SigningBytes(obj)));
        if (obj["signatures"] is not JsonObject signatures)
        {
            signatures = new JsonObject();
            obj["signatures"] = signatures;
        }

        if (signatures[entity] is not JsonObject mine)
        {
            mine = new JsonObject();
            signatures[entity] = mine;
        }

        mine[key.KeyId] = signature;
        return signature;
    }

    /// <summary>True when <paramref name="obj"/> carries a valid signature by <paramref name="entity"/> under <paramref name="keyId"/> for the given public key.</summary>
    public static bool Verify(JsonObject obj, string entity, string keyId, ReadOnlySpan<byte> publicKey)
    {
        if (!TryGetSignature(obj, entity, keyId, out var sig))
        {
            return false;
        }

        byte[] bytes;
        try
        {
            bytes = SigningBytes(obj);
        }
        catch (CanonicalJsonException)
        {
            return false;
        }

        return Ed25519.Verify(sig, bytes, publicKey);
    }

    /// <summary>The decoded signature by <paramref name="entity"/> under <paramref name="keyId"/>, if the object carries a well-formed one.</summary>
    public static bool TryGetSignature(JsonObject obj, string entity, string keyId, [NotNullWhen(true)] out byte[]? signature)
    {
        signature = null;
        return obj["signatures"] is JsonObject signatures
            && signatures[entity] is JsonObject mine
            && mine[keyId] is JsonValue sigValue
            && sigValue.TryGetValue<string>(out var sigText)
            && Base64Unpadded.TryDecode(sigText, out signature);
    }

    /// <summary>The ed25519 key IDs under which <paramref name="entity"/> signed the object.</summary>
    public static IEnumerable<string> SignatureKeyIds(JsonObject obj, string entity)
    {
        if (obj["signatures"] is JsonObject signatures && signatures[entity] is JsonObject mine)
        {
            foreach (var kv in mine)
            {
                if (kv.Key.StartsWith("ed25519:", StringComparison.Ordinal))
                {
                    yield return kv.Key;
                }
            }
        }
    }
}
