using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Json;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Keys;

/// <summary>Shapes and signatures of uploaded keys, checked before anything is stored; and the route prefixes keys are served under.</summary>
public static class KeyJson
{
    /// <summary>A signature that does not verify (the errcode the cross-signing API uses).</summary>
    public const string InvalidSignature = "M_INVALID_SIGNATURE";

    /// <summary>Longest key ID, algorithm or device ID accepted, in characters.</summary>
    public const int MaxIdLength = 255;

    /// <summary>
    /// Maps a keys endpoint under v3, r0 and unstable: older clients (Element Web 1.11 posts device_signing/upload to
    /// unstable; matrix-nio uses r0) still call these paths, and Synapse serves all three.
    /// </summary>
    public static void MapKeys(this IEndpointRouteBuilder app, string method, string path, JsonEndpoint handler)
    {
        app.MapClient(method, path, handler);
        app.MapJson(method, "/_matrix/client/unstable" + path, ResourceGroup.Client, handler);
    }

    /// <summary>400 M_INVALID_SIGNATURE.</summary>
    public static MatrixException BadSignature(string message) => MatrixException.Of(400, InvalidSignature, message);

    /// <summary>The ed25519 public key stored under <c>ed25519:{id}</c> in the object's <c>keys</c>, or null.</summary>
    public static byte[]? Ed25519Key(JsonObject keyObject, string id) =>
        keyObject["keys"] is JsonObject keys && keys["ed25519:" + id] is JsonValue v && v.TryGetValue<string>(out var text)
        && Base64Unpadded.TryDecode(text, out var bytes) && bytes.Length == Ed25519.PublicKeyLength ? bytes : null;

    /// <summary>Canonical bytes of a key object without signatures and unsigned data, to compare two uploads of the same key.</summary>
    public static byte[] Unsigned(JsonObject keyObject) => CanonicalJson.EncodeWithout(keyObject, "signatures", "unsigned");

    /// <summary>
    /// Checks a <c>device_keys</c> upload: it names the uploading user and device, lists algorithms and keys, holds the
    /// device's ed25519 key, and is signed by it. Returns the ed25519 key.
    /// </summary>
    public static byte[] CheckDeviceKeys(JsonObject keys, string userId, string deviceId)
    {
        if (keys.OptionalString("user_id", MaxIdLength) != userId)
        {
            throw MatrixException.InvalidParam("device_keys.user_id must be the uploading user");
        }

        if (keys.OptionalString("device_id", MaxIdLength) != deviceId)
        {
            throw MatrixException.InvalidParam("device_keys.device_id must be the uploading device");
        }

        var algorithms = keys.OptionalStringArray("algorithms", 100, MaxIdLength) ?? throw MatrixException.MissingParam("device_keys.algorithms is missing");
        _ = algorithms;
        var keyMap = keys.OptionalObject("keys") ?? throw MatrixException.MissingParam("device_keys.keys is missing");
        foreach (var (name, value) in keyMap)
        {
            if (value.AsString() is null || !name.Contains(':', StringComparison.Ordinal) || name.Length > MaxIdLength)
            {
                throw MatrixException.BadJson("device_keys.keys must map algorithm:key_id to a base64 key");
            }
        }

        var ed25519 = Ed25519Key(keys, deviceId) ?? throw MatrixException.InvalidParam($"device_keys.keys must hold the device's ed25519:{deviceId} key (32 bytes, unpadded base64)");
        CheckSigned(keys, userId, "ed25519:" + deviceId, ed25519, "device_keys");
        return ed25519;
    }

    /// <summary>Throws 400 M_INVALID_SIGNATURE unless <paramref name="obj"/> carries a valid signature by <paramref name="signer"/> under <paramref name="keyId"/>.</summary>
    public static void CheckSigned(JsonObject obj, string signer, string keyId, byte[] publicKey, string what)
    {
        if (obj["signatures"] is not null and not JsonObject)
        {
            throw MatrixException.BadJson($"{what}.signatures must be an object");
        }

        if (!JsonSigning.TryGetSignature(obj, signer, keyId, out _))
        {
            throw BadSignature($"{what} is not signed by {signer} with {keyId}");
        }

        if (!JsonSigning.Verify(obj, signer, keyId, publicKey))
        {
            throw BadSignature($"{what} has an invalid signature by {signer} with {keyId}");
        }
    }

    /// <summary>
    /// Reads one-time or fallback keys (<c>{"algorithm:key_id": key}</c>, where a key is a string or a signed object with
    /// <c>key</c>). Signed keys are verified against the device's ed25519 key when it is known.
    /// </summary>
    public static List<(string Algorithm, string KeyId, JsonNode Key)> ReadKeys(JsonObject keys, string field, string userId, string deviceId, byte[]? deviceKey)
    {
        var result = new List<(string, string, JsonNode)>(keys.Count);
        foreach (var (name, value) in keys)
        {
            var colon = name.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || colon == name.Length - 1 || name.Length > MaxIdLength)
            {
                throw MatrixException.BadJson($"{field}: '{Truncate(name)}' is not algorithm:key_id");
            }

            switch (value)
            {
                case JsonValue when value.AsString() is not null:
                    break;
                case JsonObject obj:
                    if (obj.OptionalString("key", 1024) is null)
                    {
                        throw MatrixException.BadJson($"{field}: {Truncate(name)} has no 'key'");
                    }

                    if (deviceKey is not null)
                    {
                        CheckSigned(obj, userId, "ed25519:" + deviceId, deviceKey, $"{field}.{Truncate(name)}");
                    }

                    break;
                default:
                    throw MatrixException.BadJson($"{field}: {Truncate(name)} must be a string or an object");
            }

            result.Add((name[..colon], name[(colon + 1)..], value!));
        }

        return result;
    }

    /// <summary>
    /// Checks a cross-signing key: it names the user, has the usage, and holds exactly one ed25519 key whose ID is the
    /// key itself. Returns (key ID, public key).
    /// </summary>
    public static (string KeyId, byte[] PublicKey) CheckCrossSigningKey(JsonObject key, string userId, string usage, string field)
    {
        if (key.OptionalString("user_id", MaxIdLength) != userId)
        {
            throw MatrixException.InvalidParam($"{field}.user_id must be the uploading user");
        }

        var usages = key.OptionalStringArray("usage", 10, 64) ?? throw MatrixException.MissingParam($"{field}.usage is missing");
        if (!usages.Contains(usage))
        {
            throw MatrixException.InvalidParam($"{field}.usage must contain '{usage}'");
        }

        var keys = key.OptionalObject("keys") ?? throw MatrixException.MissingParam($"{field}.keys is missing");
        if (keys.Count != 1)
        {
            throw MatrixException.InvalidParam($"{field}.keys must hold exactly one key");
        }

        var (keyId, value) = keys.First();
        var text = value.AsString();
        if (!keyId.StartsWith("ed25519:", StringComparison.Ordinal) || text is null || keyId["ed25519:".Length..] != text
            || !Base64Unpadded.TryDecode(text, out var publicKey) || publicKey.Length != Ed25519.PublicKeyLength)
        {
            throw MatrixException.InvalidParam($"{field}.keys must map ed25519:<public key> to the same 32-byte public key in unpadded base64");
        }

        return (keyId, publicKey);
    }

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "…";
}
