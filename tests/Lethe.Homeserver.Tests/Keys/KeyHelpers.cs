using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Json;

namespace Lethe.Homeserver.Tests.Keys;

/// <summary>A client device with real ed25519 keys, building and signing what an E2EE client uploads.</summary>
public sealed class E2eeDevice(MatrixClient client)
{
    /// <summary>The HTTP client of the device's session.</summary>
    public MatrixClient Client { get; } = client;

    /// <summary>The device's ed25519 identity key.</summary>
    public SigningKey Ed25519 { get; } = new("ed25519:" + client.DeviceId, Protocol.Crypto.Ed25519.GenerateSeed());

    /// <summary>Master, self-signing and user-signing keys (once made).</summary>
    public SigningKey Master { get; } = NewCrossSigningKey();

    /// <summary>Self-signing key.</summary>
    public SigningKey SelfSigning { get; } = NewCrossSigningKey();

    /// <summary>User-signing key.</summary>
    public SigningKey UserSigning { get; } = NewCrossSigningKey();

    /// <summary>User ID.</summary>
    public string UserId => Client.UserId;

    /// <summary>Device ID.</summary>
    public string DeviceId => Client.DeviceId;

    /// <summary>A cross-signing key: its key ID is its own public key.</summary>
    public static SigningKey NewCrossSigningKey()
    {
        var seed = Protocol.Crypto.Ed25519.GenerateSeed();
        var (pk, _) = Protocol.Crypto.Ed25519.KeyPairFromSeed(seed);
        return new SigningKey("ed25519:" + Base64Unpadded.Encode(pk), seed);
    }

    /// <summary>The signed device_keys object.</summary>
    public JsonObject DeviceKeys()
    {
        var keys = new JsonObject
        {
            ["user_id"] = UserId,
            ["device_id"] = DeviceId,
            ["algorithms"] = new JsonArray("m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"),
            ["keys"] = new JsonObject
            {
                ["curve25519:" + DeviceId] = Base64Unpadded.Encode(Protocol.Crypto.Ed25519.GenerateSeed()),
                ["ed25519:" + DeviceId] = Ed25519.PublicKeyBase64,
            },
        };
        JsonSigning.Sign(keys, UserId, Ed25519);
        return keys;
    }

    /// <summary>Signed curve25519 one-time keys AAAA0..n, keyed <c>signed_curve25519:ID</c>.</summary>
    public JsonObject OneTimeKeys(int count, string prefix = "otk", bool fallback = false)
    {
        var keys = new JsonObject();
        for (var i = 0; i < count; i++)
        {
            var key = new JsonObject { ["key"] = Base64Unpadded.Encode(Protocol.Crypto.Ed25519.GenerateSeed()) };
            if (fallback)
            {
                key["fallback"] = true;
            }

            JsonSigning.Sign(key, UserId, Ed25519);
            keys[$"signed_curve25519:{prefix}{i:D4}"] = key;
        }

        return keys;
    }

    /// <summary>Uploads device keys and/or one-time and fallback keys.</summary>
    public Task<MatrixClient.Response> UploadAsync(JsonObject? deviceKeys = null, JsonObject? oneTimeKeys = null, JsonObject? fallbackKeys = null)
    {
        var body = new JsonObject();
        if (deviceKeys is not null)
        {
            body["device_keys"] = deviceKeys.DeepClone();
        }

        if (oneTimeKeys is not null)
        {
            body["one_time_keys"] = oneTimeKeys.DeepClone();
        }

        if (fallbackKeys is not null)
        {
            body["fallback_keys"] = fallbackKeys.DeepClone();
        }

        return Client.PostAsync("/_matrix/client/v3/keys/upload", body);
    }

    /// <summary>A cross-signing key object for this user, signed by <paramref name="signer"/> when given.</summary>
    public JsonObject CrossSigningKey(SigningKey key, string usage, SigningKey? signer)
    {
        var obj = new JsonObject
        {
            ["user_id"] = UserId,
            ["usage"] = new JsonArray(usage),
            ["keys"] = new JsonObject { [key.KeyId] = key.PublicKeyBase64 },
        };
        if (signer is not null)
        {
            JsonSigning.Sign(obj, UserId, signer);
        }

        return obj;
    }

    /// <summary>The body of a device_signing/upload with all three keys.</summary>
    public JsonObject CrossSigningUpload() => new()
    {
        ["master_key"] = CrossSigningKey(Master, "master", null),
        ["self_signing_key"] = CrossSigningKey(SelfSigning, "self_signing", Master),
        ["user_signing_key"] = CrossSigningKey(UserSigning, "user_signing", Master),
    };
}

/// <summary>Small helpers for E2EE tests.</summary>
public static class KeyTestExtensions
{
    /// <summary>Claims one key of <paramref name="algorithm"/> for each (user, device).</summary>
    public static async Task<JsonObject> ClaimAsync(this MatrixClient c, params (string User, string Device, string Algorithm)[] wanted)
    {
        var body = new JsonObject();
        foreach (var (user, device, algorithm) in wanted)
        {
            var byUser = body[user] as JsonObject ?? (JsonObject)(body[user] = new JsonObject());
            byUser[device] = algorithm;
        }

        return (await c.PostAsync("/_matrix/client/v3/keys/claim", new JsonObject { ["one_time_keys"] = body })).Ok();
    }

    /// <summary>/keys/query for all devices of the users.</summary>
    public static async Task<JsonObject> QueryKeysAsync(this MatrixClient c, params string[] users)
    {
        var wanted = new JsonObject();
        foreach (var u in users)
        {
            wanted[u] = new JsonArray();
        }

        return (await c.PostAsync("/_matrix/client/v3/keys/query", new JsonObject { ["device_keys"] = wanted })).Ok();
    }

    /// <summary>The strings of a JSON array.</summary>
    public static List<string> Strings(this JsonNode? array) => array is JsonArray a ? a.Select(n => n!.GetValue<string>()).ToList() : [];

    /// <summary>A canonical copy, to compare JSON by value.</summary>
    public static string Canonical(this JsonNode node) => System.Text.Encoding.UTF8.GetString(CanonicalJson.Encode(node));
}
