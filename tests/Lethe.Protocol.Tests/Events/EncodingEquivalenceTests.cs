using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Tests.Events;

/// <summary>
/// The hashing and signing forms are written straight from the event, without copies. These tests hold them to the
/// plain definitions (deep-copy the event, remove or redact members, encode), for every room version and the event
/// shapes whose redaction differs.
/// </summary>
public class EncodingEquivalenceTests
{
    private static readonly SigningKey Key = SigningKey.Generate();

    private static readonly string[] Contents =
    [
        """{"type":"m.room.message","content":{"body":"hé \u0001 \"q\" 😀","msgtype":"m.text","n":[1,{"z":null,"a":true}]}}""",
        """{"type":"m.room.member","state_key":"@u:hs","content":{"membership":"join","displayname":"U","join_authorised_via_users_server":"@a:hs","third_party_invite":{"signed":{"token":"t","mxid":"@u:hs"},"display_name":"x"}}}""",
        """{"type":"m.room.member","state_key":"@u:hs","content":{"membership":"invite","third_party_invite":{"display_name":"no signed part"}}}""",
        """{"type":"m.room.create","state_key":"","content":{"creator":"@u:hs","m.federate":false,"room_version":"1","type":"x"}}""",
        """{"type":"m.room.join_rules","state_key":"","content":{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!a:hs"}],"other":1}}""",
        """{"type":"m.room.power_levels","state_key":"","content":{"ban":50,"events":{"m.room.name":100},"events_default":0,"invite":0,"kick":50,"redact":50,"state_default":50,"users":{"@u:hs":100},"users_default":0,"notifications":{"room":50}}}""",
        """{"type":"m.room.aliases","state_key":"hs","content":{"aliases":["#a:hs"]}}""",
        """{"type":"m.room.history_visibility","state_key":"","content":{"history_visibility":"joined","x":1}}""",
        """{"type":"m.room.redaction","redacts":"$x:hs","content":{"redacts":"$x:hs","reason":"spam"}}""",
        """{"type":"m.room.message","content":"not an object"}""",
        """{"type":"m.room.message"}""",
    ];

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var version in RoomVersion.All)
        {
            for (var i = 0; i < Contents.Length; i++)
            {
                data.Add(version.Identifier, i);
            }
        }

        return data;
    }

    private static JsonObject Event(int index, RoomVersion version)
    {
        var ev = CanonicalJson.ParseObject(Contents[index]);
        ev["room_id"] = "!r:hs";
        ev["sender"] = "@u:hs";
        ev["origin"] = "hs";
        ev["origin_server_ts"] = 1700000000000L;
        ev["depth"] = 7L;
        ev["prev_events"] = new JsonArray();
        ev["auth_events"] = new JsonArray();
        ev["membership"] = "join";
        ev["prev_state"] = new JsonArray();
        ev["unsigned"] = new JsonObject { ["age"] = 5 };
        ev["signatures"] = new JsonObject { ["other"] = new JsonObject { ["ed25519:o"] = "c2ln" } };
        ev["extra_top_level"] = new JsonObject { ["k"] = "v" };
        ev["event_id"] = "$opaque:hs";
        return ev;
    }

    private static JsonObject Without(JsonObject obj, params string[] keys)
    {
        var copy = (JsonObject)obj.DeepClone();
        foreach (var key in keys)
        {
            copy.Remove(key);
        }

        return copy;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ContentHashIsTheHashOfTheEventWithoutUnsignedSignaturesAndHashes(string versionId, int index)
    {
        var ev = Event(index, RoomVersion.TryGet(versionId, out var v) ? v : throw new InvalidOperationException());
        ev["hashes"] = new JsonObject { ["sha256"] = "old" };
        Assert.Equal(SHA256.HashData(CanonicalJson.Encode(Without(ev, "unsigned", "signatures", "hashes"))), EventHashing.ContentHash(ev));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RedactedBytesAreTheEncodingOfTheRedactedCopy(string versionId, int index)
    {
        RoomVersion.TryGet(versionId, out var version);
        var ev = Event(index, version!);
        var before = CanonicalJson.Encode(ev);
        foreach (var omit in new[] { Array.Empty<string>(), ["signatures", "unsigned"], ["signatures", "unsigned", "event_id"] })
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            Redaction.WriteRedacted(buffer, ev, version!, omit);
            Assert.Equal(CanonicalJson.Encode(Without(Redaction.Redact(ev, version!), omit)), buffer.WrittenSpan.ToArray());
        }

        Assert.Equal(before, CanonicalJson.Encode(ev));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ReferenceHashAndSignatureMatchTheirDefinitions(string versionId, int index)
    {
        RoomVersion.TryGet(versionId, out var version);
        var ev = Event(index, version!);
        if (version!.EventIdFormat != EventIdFormat.Opaque && index % 2 == 0)
        {
            // Built events of v3+ have no event_id; received ones may, and it must not count.
            ev.Remove("event_id");
        }

        var referenceHash = EventHashing.HashAndSign(ev, version, "hs", Key);

        var redacted = Without(Redaction.Redact(ev, version), "signatures", "unsigned");
        var signed = CanonicalJson.Encode(redacted);
        Assert.True(Ed25519.Verify(Base64Unpadded.TryDecode(ev["signatures"]!["hs"]![Key.KeyId]!.GetValue<string>(), out var sig) ? sig : [], signed, Key.PublicKey));
        if (version.EventIdFormat != EventIdFormat.Opaque)
        {
            redacted.Remove("event_id");
        }

        Assert.Equal(SHA256.HashData(CanonicalJson.Encode(redacted)), referenceHash);
        Assert.Equal(referenceHash, EventHashing.ReferenceHash(ev, version));
        Assert.True(EventHashing.VerifySignature(ev, version, "hs", Key.KeyId, Key.PublicKey));
        Assert.True(EventHashing.CheckContentHash(ev));
        Assert.Equal("c2ln", ev["signatures"]!["other"]!["ed25519:o"]!.GetValue<string>());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SigningBytesLeaveOutSignaturesAndUnsignedOnly(string versionId, int index)
    {
        RoomVersion.TryGet(versionId, out var version);
        var ev = Event(index, version!);
        Assert.Equal(CanonicalJson.Encode(Without(ev, "signatures", "unsigned")), JsonSigning.SigningBytes(ev));
    }

    [Fact]
    public void StoredEventsReadBackAsTheyWereValidated()
    {
        foreach (var version in RoomVersion.All)
        {
            foreach (var index in new[] { 0, 1, 3, 5, 8 })
            {
                var ev = Event(index, version);
                ev.Remove("unsigned");
                ev["prev_events"] = version.EventIdFormat == EventIdFormat.Opaque
                    ? new JsonArray(new JsonArray("$p:hs", new JsonObject { ["sha256"] = "x" }))
                    : new JsonArray("$p");
                if (version.EventIdFormat != EventIdFormat.Opaque)
                {
                    ev.Remove("event_id");
                }

                if (version.RoomIdIsCreateEventHash && index == 3)
                {
                    ev.Remove("room_id");
                }
                else if (version.RoomIdIsCreateEventHash)
                {
                    ev["room_id"] = "!abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
                }

                var referenceHash = EventHashing.HashAndSign(ev, version, "hs", Key);
                var validated = Pdu.FromJson(ev, version);
                var signed = Pdu.FromJson(ev, version, referenceHash);
                Assert.Equal(CanonicalJson.Encode(ev), validated.ToCanonicalBytes());
                Assert.Equal(validated.ToCanonicalBytes(), signed.ToCanonicalBytes());

                var stored = CanonicalJson.ParseObject(validated.ToCanonicalBytes());
                foreach (var form in new[] { stored, Redaction.Redact(stored, version) })
                {
                    var reread = Pdu.FromStoredBytes(CanonicalJson.Encode(form), version, validated.EventId);
                    var checkedAgain = Pdu.FromJson(form, version);
                    foreach (var (pdu, expected) in new[] { (reread, checkedAgain), (signed, validated), (signed.Compact(), validated), (reread.Compact(), checkedAgain) })
                    {
                        Assert.Equal(expected.EventId, pdu.EventId);
                        Assert.Equal(expected.RoomId, pdu.RoomId);
                        Assert.Equal(expected.Type, pdu.Type);
                        Assert.Equal(expected.StateKey, pdu.StateKey);
                        Assert.Equal(expected.Sender, pdu.Sender);
                        Assert.Equal(expected.Depth, pdu.Depth);
                        Assert.Equal(expected.OriginServerTs, pdu.OriginServerTs);
                        Assert.Equal(expected.PrevEvents, pdu.PrevEvents);
                        Assert.Equal(expected.AuthEvents, pdu.AuthEvents);
                        Assert.Equal(expected.Redacts, pdu.Redacts);
                        Assert.Equal(expected.Membership, pdu.Membership);
                        Assert.Equal(CanonicalJson.Encode(expected.Content), CanonicalJson.Encode(pdu.Content));
                        Assert.True(ReferenceEquals(pdu, signed) || pdu.Content.Parent is null, "a compact PDU keeps its content, not the tree");
                        Assert.Equal(CanonicalJson.Encode(expected.Json), CanonicalJson.Encode(pdu.Json));
                        Assert.Equal(expected.ToCanonicalBytes(), pdu.ToCanonicalBytes());
                    }

                    Assert.Equal(CanonicalJson.Encode(form), reread.ToCanonicalBytes());
                }
            }
        }
    }
}
