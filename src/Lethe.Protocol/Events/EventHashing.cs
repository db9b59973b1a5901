using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Events;

/// <summary>Content hashes, reference hashes, event IDs and event signatures (server-server API, "Signing events").</summary>
/// <remarks>
/// Each form is encoded straight from the event with the members it leaves out skipped (and, for the redacted form,
/// the redaction rules applied while writing), never from a modified deep copy: these run for every event sent.
/// </remarks>
public static class EventHashing
{
    /// <summary>Members the content hash leaves out.</summary>
    private static readonly string[] ContentHashOmits = ["unsigned", "signatures", "hashes"];

    /// <summary>Members a signature leaves out (spec: "Signing JSON"); for v1–v2 also what the reference hash leaves out.</summary>
    private static readonly string[] SignatureOmits = ["signatures", "unsigned"];

    /// <summary>What the reference hash leaves out from v3 on: hash-based event IDs are never part of the event itself.</summary>
    private static readonly string[] ReferenceOmits = ["signatures", "unsigned", "event_id"];

    /// <summary>SHA-256 of the canonical event without <c>unsigned</c>, <c>signatures</c> and <c>hashes</c>.</summary>
    public static byte[] ContentHash(JsonObject ev)
    {
        var buffer = CanonicalJson.RentBuffer();
        try
        {
            CanonicalJson.WriteWithout(buffer, ev, ContentHashOmits);
            return Sha256.Hash(buffer.WrittenSpan);
        }
        finally
        {
            CanonicalJson.ReturnBuffer(buffer);
        }
    }

    /// <summary>SHA-256 of the canonical redacted event without <c>signatures</c> and <c>unsigned</c> (and, from v3, <c>event_id</c>).</summary>
    public static byte[] ReferenceHash(JsonObject ev, RoomVersion version)
    {
        var buffer = CanonicalJson.RentBuffer();
        try
        {
            Redaction.WriteRedacted(buffer, ev, version, version.EventIdFormat == EventIdFormat.Opaque ? SignatureOmits : ReferenceOmits);
            return Sha256.Hash(buffer.WrittenSpan);
        }
        finally
        {
            CanonicalJson.ReturnBuffer(buffer);
        }
    }

    /// <summary>The event's ID: for room versions 1–2 its <c>event_id</c> member, otherwise derived from the reference hash.</summary>
    /// <exception cref="EventFormatException">A v1/v2 event has no string <c>event_id</c>.</exception>
    public static string ComputeEventId(JsonObject ev, RoomVersion version) =>
        EventIdFromReferenceHash(ev, version, version.EventIdFormat == EventIdFormat.Opaque ? null : ReferenceHash(ev, version));

    /// <summary>The event's ID given its reference hash (unused, and may be null, for room versions 1–2).</summary>
    /// <exception cref="EventFormatException">A v1/v2 event has no string <c>event_id</c>.</exception>
    internal static string EventIdFromReferenceHash(JsonObject ev, RoomVersion version, byte[]? referenceHash) => version.EventIdFormat switch
    {
        EventIdFormat.Opaque => ev["event_id"] is JsonValue v && v.TryGetValue<string>(out var id)
            ? id
            : throw new EventFormatException("event_id is required in this room version"),
        EventIdFormat.Base64Hash => "$" + Base64Unpadded.Encode(referenceHash),
        _ => "$" + Base64Unpadded.EncodeUrlSafe(referenceHash),
    };

    /// <summary>
    /// Sets <c>hashes.sha256</c> to the content hash and signs the redacted form, adding the signature in place. Returns
    /// the event's reference hash, computed from the bytes just signed when they are the same (they differ only when
    /// a v3+ event carries an <c>event_id</c> member), for <see cref="Pdu.FromJson(JsonObject, RoomVersion, byte[])"/>.
    /// </summary>
    public static byte[] HashAndSign(JsonObject ev, RoomVersion version, string serverName, SigningKey key)
    {
        ev["hashes"] = new JsonObject { ["sha256"] = Base64Unpadded.Encode(ContentHash(ev)) };
        byte[] signature;
        byte[] referenceHash;
        var buffer = CanonicalJson.RentBuffer();
        try
        {
            Redaction.WriteRedacted(buffer, ev, version, SignatureOmits);
            signature = key.Sign(buffer.WrittenSpan);
            referenceHash = version.EventIdFormat == EventIdFormat.Opaque || !ev.ContainsKey("event_id")
                ? Sha256.Hash(buffer.WrittenSpan)
                : ReferenceHash(ev, version);
        }
        finally
        {
            CanonicalJson.ReturnBuffer(buffer);
        }

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

        mine[key.KeyId] = Base64Unpadded.Encode(signature);
        return referenceHash;
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
    public static bool VerifySignature(JsonObject ev, RoomVersion version, string serverName, string keyId, ReadOnlySpan<byte> publicKey)
    {
        // Redaction keeps signatures, so they are read from the event itself; the signed bytes are its redacted form.
        if (!JsonSigning.TryGetSignature(ev, serverName, keyId, out var signature))
        {
            return false;
        }

        var buffer = CanonicalJson.RentBuffer();
        try
        {
            Redaction.WriteRedacted(buffer, ev, version, SignatureOmits);
            return Ed25519.Verify(signature, buffer.WrittenSpan, publicKey);
        }
        catch (CanonicalJsonException)
        {
            return false;
        }
        finally
        {
            CanonicalJson.ReturnBuffer(buffer);
        }
    }
}

/// <summary>Raised when an event does not have the shape its room version requires.</summary>
public sealed class EventFormatException(string message) : Exception(message);
