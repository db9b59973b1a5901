using System.Text.Json.Nodes;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Tests.Events;

public class EventFormatTests
{
    private static readonly SigningKey Key = SigningKey.Generate();

    private static JsonObject Message(string roomId = "!r:hs") => new()
    {
        ["room_id"] = roomId,
        ["sender"] = "@u:hs",
        ["type"] = "m.room.message",
        ["content"] = new JsonObject { ["body"] = "hi", ["msgtype"] = "m.text" },
        ["origin_server_ts"] = 1700000000000L,
        ["depth"] = 5L,
        ["prev_events"] = new JsonArray("$a"),
        ["auth_events"] = new JsonArray("$b", "$c"),
    };

    [Fact]
    public void EventIdFormatFollowsRoomVersion()
    {
        var ev = Message();
        EventHashing.HashAndSign(ev, RoomVersion.V3, "hs", Key);
        var v3 = EventHashing.ComputeEventId(ev, RoomVersion.V3);
        var v4 = EventHashing.ComputeEventId(ev, RoomVersion.V4);
        Assert.Matches("^\\$[A-Za-z0-9+/]{43}$", v3);
        Assert.Matches("^\\$[A-Za-z0-9_-]{43}$", v4);
        Assert.Equal(v3.Replace('+', '-').Replace('/', '_'), v4);
    }

    [Fact]
    public void EventIdIgnoresUnsignedAndSignaturesButNotContent()
    {
        var ev = Message();
        EventHashing.HashAndSign(ev, RoomVersion.V11, "hs", Key);
        var id = EventHashing.ComputeEventId(ev, RoomVersion.V11);
        ev["unsigned"] = new JsonObject { ["age"] = 3 };
        ev["signatures"]!["other"] = new JsonObject { ["ed25519:x"] = "abc" };
        Assert.Equal(id, EventHashing.ComputeEventId(ev, RoomVersion.V11));

        // Content is covered through the content hash, which the reference hash includes.
        ev["content"]!["body"] = "changed";
        EventHashing.HashAndSign(ev, RoomVersion.V11, "hs", Key);
        Assert.NotEqual(id, EventHashing.ComputeEventId(ev, RoomVersion.V11));
    }

    [Fact]
    public void PduParsesAndExposesFields()
    {
        var ev = Message();
        EventHashing.HashAndSign(ev, RoomVersion.V11, "hs", Key);
        var pdu = Pdu.FromJson(ev, RoomVersion.V11);
        Assert.Equal("m.room.message", pdu.Type);
        Assert.False(pdu.IsState);
        Assert.Equal(["$a"], pdu.PrevEvents);
        Assert.Equal(["$b", "$c"], pdu.AuthEvents);
        Assert.Equal(5, pdu.Depth);
        Assert.Equal(pdu.EventId, pdu.ToClientFormat()["event_id"]!.GetValue<string>());
        Assert.False(pdu.ToClientFormat().ContainsKey("hashes"));
    }

    [Fact]
    public void V1EventsCarryTheirIdAndUsePairReferences()
    {
        var ev = Message();
        ev["event_id"] = "$abc:hs";
        ev["prev_events"] = new JsonArray(new JsonArray("$p:hs", new JsonObject { ["sha256"] = "x" }));
        ev["auth_events"] = new JsonArray();
        EventHashing.HashAndSign(ev, RoomVersion.V1, "hs", Key);
        var pdu = Pdu.FromJson(ev, RoomVersion.V1);
        Assert.Equal("$abc:hs", pdu.EventId);
        Assert.Equal(["$p:hs"], pdu.PrevEvents);
        Assert.Throws<EventFormatException>(() => Pdu.FromJson(ev, RoomVersion.V4));
    }

    [Fact]
    public void V12CreateEventDerivesTheRoomId()
    {
        var create = new JsonObject
        {
            ["sender"] = "@u:hs",
            ["type"] = EventTypes.Create,
            ["state_key"] = "",
            ["content"] = new JsonObject { ["room_version"] = "12" },
            ["origin_server_ts"] = 1L,
            ["depth"] = 1L,
            ["prev_events"] = new JsonArray(),
            ["auth_events"] = new JsonArray(),
        };
        EventHashing.HashAndSign(create, RoomVersion.V12, "hs", Key);
        var pdu = Pdu.FromJson(create, RoomVersion.V12);
        Assert.Equal("!" + pdu.EventId[1..], pdu.RoomId);

        // Other v12 events use that domain-less room ID; one with a server part is malformed.
        var msg = Message(pdu.RoomId);
        EventHashing.HashAndSign(msg, RoomVersion.V12, "hs", Key);
        Assert.Equal(pdu.RoomId, Pdu.FromJson(msg, RoomVersion.V12).RoomId);
        var bad = Message("!r:hs");
        EventHashing.HashAndSign(bad, RoomVersion.V12, "hs", Key);
        Assert.Throws<EventFormatException>(() => Pdu.FromJson(bad, RoomVersion.V12));
    }

    [Theory]
    [InlineData("type", null, "type must be a string")]
    [InlineData("sender", "not-a-user", "sender is not a valid user ID")]
    [InlineData("depth", -1L, "depth must not be negative")]
    [InlineData("content", "str", "content must be an object")]
    [InlineData("origin_server_ts", "x", "origin_server_ts must be an integer")]
    public void MalformedEventsAreRejectedWithTheField(string field, object? value, string message)
    {
        var ev = Message();
        EventHashing.HashAndSign(ev, RoomVersion.V11, "hs", Key);
        ev[field] = value switch { null => null, string s => JsonValue.Create(s), long l => JsonValue.Create(l), _ => throw new ArgumentException("unexpected value", nameof(value)) };
        var e = Assert.Throws<EventFormatException>(() => Pdu.FromJson(ev, RoomVersion.V11));
        Assert.Equal(message, e.Message);
    }

    [Fact]
    public void OversizedEventsAreRejected()
    {
        var ev = Message();
        ev["content"]!["body"] = new string('x', 65536);
        EventHashing.HashAndSign(ev, RoomVersion.V11, "hs", Key);
        Assert.Contains("limit is 65536", Assert.Throws<EventFormatException>(() => Pdu.FromJson(ev, RoomVersion.V11)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TooManyPrevEventsAreRejected()
    {
        var ev = Message();
        var prev = new JsonArray();
        for (var i = 0; i < 21; i++)
        {
            prev.Add("$e" + i);
        }

        ev["prev_events"] = prev;
        EventHashing.HashAndSign(ev, RoomVersion.V11, "hs", Key);
        Assert.Throws<EventFormatException>(() => Pdu.FromJson(ev, RoomVersion.V11));
    }

    [Fact]
    public void AllTwelveVersionsAreKnown()
    {
        for (var i = 1; i <= 12; i++)
        {
            Assert.True(RoomVersion.TryGet(i.ToString(System.Globalization.CultureInfo.InvariantCulture), out var v));
            Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), v.Identifier);
        }

        Assert.False(RoomVersion.TryGet("13", out _));
        Assert.Equal("11", RoomVersion.Default.Identifier);
    }
}
