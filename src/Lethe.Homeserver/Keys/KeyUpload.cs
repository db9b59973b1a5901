using System.Data.Common;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Json;
using Lethe.Storage;

namespace Lethe.Homeserver.Keys;

/// <summary>A checked key upload (device keys, one-time keys, fallback keys) for one device, ready to write.</summary>
public sealed class KeyUpload
{
    private KeyUpload(JsonObject? deviceKeys, List<(string Algorithm, string KeyId, JsonNode Key)> oneTimeKeys, List<(string Algorithm, string KeyId, JsonNode Key)> fallbackKeys)
    {
        DeviceKeys = deviceKeys;
        OneTimeKeys = oneTimeKeys;
        FallbackKeys = fallbackKeys;
    }

    /// <summary>The device_keys object, if uploaded.</summary>
    public JsonObject? DeviceKeys { get; }

    /// <summary>One-time keys.</summary>
    public List<(string Algorithm, string KeyId, JsonNode Key)> OneTimeKeys { get; }

    /// <summary>Fallback keys (one per algorithm).</summary>
    public List<(string Algorithm, string KeyId, JsonNode Key)> FallbackKeys { get; }

    /// <summary>
    /// Checks the body's <c>device_keys</c>, <c>one_time_keys</c> and <c>fallback_keys</c> for the device. Signed keys are
    /// checked against the uploaded device key, else <paramref name="storedEd25519"/>.
    /// </summary>
    public static KeyUpload Parse(JsonObject body, string userId, string deviceId, byte[]? storedEd25519)
    {
        var deviceKeys = body.OptionalObject("device_keys");
        var ed25519 = deviceKeys is not null ? KeyJson.CheckDeviceKeys(deviceKeys, userId, deviceId) : storedEd25519;
        var oneTimeKeys = body.OptionalObject("one_time_keys") is { } otk ? KeyJson.ReadKeys(otk, "one_time_keys", userId, deviceId, ed25519) : [];
        var fallbackObject = body.OptionalObject("fallback_keys") ?? body.OptionalObject("org.matrix.msc2732.fallback_keys");
        var fallbackKeys = fallbackObject is not null ? KeyJson.ReadKeys(fallbackObject, "fallback_keys", userId, deviceId, ed25519) : [];
        if (fallbackKeys.GroupBy(k => k.Algorithm, StringComparer.Ordinal).Any(g => g.Count() > 1))
        {
            throw MatrixException.InvalidParam("fallback_keys may hold one key per algorithm");
        }

        return new KeyUpload(deviceKeys, oneTimeKeys, fallbackKeys);
    }

    /// <summary>Writes the keys in the caller's transaction; returns the one-time key counts and, when the device keys changed, the device list position.</summary>
    public async Task<(Dictionary<string, long> Counts, long? Stream)> WriteAsync(DbTransaction tx, string userId, string deviceId)
    {
        long? stream = null;
        if (DeviceKeys is not null && await E2eKeyStore.SetDeviceKeysAsync(tx, userId, deviceId, CanonicalJson.EncodeWithout(DeviceKeys, "unsigned")))
        {
            stream = await E2eKeyStore.RecordChangeAsync(tx, userId);
        }

        if (OneTimeKeys.Count > 0)
        {
            var existing = await E2eKeyStore.ExistingOneTimeKeysAsync(tx, userId, deviceId);
            var fresh = new List<OneTimeKey>(OneTimeKeys.Count);
            foreach (var (algorithm, keyId, key) in OneTimeKeys)
            {
                var bytes = CanonicalJson.Encode(key);
                if (existing.TryGetValue((algorithm, keyId), out var old))
                {
                    // A retried upload repeats keys exactly; a different key under a used ID is a client bug that would break sessions.
                    if (!old.AsSpan().SequenceEqual(bytes))
                    {
                        throw MatrixException.InvalidParam($"One-time key {algorithm}:{keyId} already exists with a different value");
                    }

                    continue;
                }

                fresh.Add(new OneTimeKey(algorithm, keyId, bytes));
            }

            await E2eKeyStore.AddOneTimeKeysAsync(tx, userId, deviceId, fresh);
        }

        foreach (var (algorithm, keyId, key) in FallbackKeys)
        {
            await E2eKeyStore.SetFallbackKeyAsync(tx, userId, deviceId, new OneTimeKey(algorithm, keyId, CanonicalJson.Encode(key)));
        }

        return (await E2eKeyStore.OneTimeKeyCountsAsync(tx, userId, deviceId), stream);
    }
}
