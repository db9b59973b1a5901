using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Events;

/// <summary>Content hashes, reference hashes, event IDs and event signatures (server-server API, "Signing events").</summary>
public static class EventHashing
{
    /// <summary>SHA-256 of the canonical event without <c>unsigned</c>, <c>signatures</c> and <c>hashes</c>.</summary>
    public static byte[] ContentHash(JsonObject ev)
    {
        var copy = new JsonObject();
        foreach (var kv in ev)
        {
            if (kv.Key is "unsigned" or "signatures" or "hashes")
            {
                continue;
            }

            copy[kv.Key] = kv.Value?.DeepClone();
        }

        return SHA256.HashData(CanonicalJson.Encode(copy));
    }

    /// <summary>SHA-256 of the canonical redacted event without <c>signatures</c> and <c>unsigned</c>.</summary>
    public static byte[] ReferenceHash(JsonObject ev, RoomVersion version)
    {
        var redacted = Redaction.Redact(ev, version);
        redacted.Remove("signatures");
        redacted.Remove("unsigned");
        // Hash-based event IDs are never part of the event itself.
        if (version.EventIdFormat != EventIdFormat.Opaque)
        {
            redacted.Remove("event_id");
        }

        return SHA256.HashData(CanonicalJson.Encode(redacted));
    }

    /// <summary>The event's ID: for room versions 1–2 its <c>event_id</c> member, otherwise derived from the reference hash.</summary>
    /// <exception cref="EventFormatException">A v1/v2 event has no string <c>event_id</c>.</exception>
    public static string ComputeEventId(JsonObject ev, RoomVersion version) => version.EventIdFormat switch
    {
        EventIdFormat.Opaque => ev["event_id"] is JsonValue v && v.TryGetValue<string>(out var id)
            ? id
            : throw new EventFormatException("event_id is required in this room version"),
        EventIdFormat.Base64Hash => "$" + Base64Unpadded.Encode(ReferenceHash(ev, version)),
        _ => "$" + Base64Unpadded.EncodeUrlSafe(ReferenceHash(ev, version)),
    };

    /// <summary>Sets <c>hashes.sha256</c> to the content hash and signs the redacted form, adding the signature in place.</summary>
    public static void HashAndSign(JsonObject ev, RoomVersion version, string serverName, SigningKey key)
    {
        ev["hashes"] = new JsonObject { ["sha256"] = Base64Unpadded.Encode(ContentHash(ev)) };
        var redacted = Redaction.Redact(ev, version);
        var signature = Base64Unpadded.Encode(key.Sign(JsonSigning.SigningBytes(redacted)));
        if (ev["signatures"] is not JsonObject signatures)
        {
            signatures = new JsonObject();
            ev["signatures"] = signatures;
        }

        if (signatures[serverName] is not JsonObject mine)
        {
            mine = new JsonObject();
            signatures[serverName] = mine;
        }

        mine[key.KeyId] = signature;
    }

    /// <summary>True when <c>hashes.sha256</c> matches the event's content hash. False means the event must be served redacted.</summary>
    public static bool CheckContentHash(JsonObject ev)
    {
        if (ev["hashes"] is not JsonObject hashes
            || hashes["sha256"] is not JsonValue h
            || !h.TryGetValue<string>(out var text)
            || !Base64Unpadded.TryDecode(text, out var expected))
        {
            return false;
        }

        return CryptographicOperations.FixedTimeEquals(expected, ContentHash(ev));
    }

    /// <summary>True when the redacted event carries a valid signature by <paramref name="serverName"/> with the given key.</summary>
    public static bool VerifySignature(JsonObject ev, RoomVersion version, string serverName, string keyId, ReadOnlySpan<byte> publicKey) =>
        JsonSigning.Verify(Redaction.Redact(ev, version), serverName, keyId, publicKey);
}

/// <summary>Raised when an event does not have the shape its room version requires.</summary>
public sealed class EventFormatException(string message) : Exception(message);
