using System.Text.Json.Nodes;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Tests.Events;

public class RedactionTests
{
    private static JsonObject Event(string type, string content, string extra = "") => CanonicalJson.ParseObject(
        $$"""{"type":"{{type}}","room_id":"!r:hs","sender":"@u:hs","state_key":"","origin":"hs","membership":"join","prev_state":[],"unsigned":{"age":1},"event_id":"$e:hs","origin_server_ts":1,"depth":1,"prev_events":[],"auth_events":[],"hashes":{"sha256":"x"},"signatures":{}{{extra}},"content":{{content}}}""");

    private static string[] Keys(JsonObject o) => o.Select(kv => kv.Key).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void MessageContentIsStrippedAndUnknownTopLevelKeysGo()
    {
        var r = Redaction.Redact(Event("m.room.message", """{"body":"secret"}""", ",\"extra\":1"), RoomVersion.V1);
        Assert.Empty((JsonObject)r["content"]!);
        Assert.False(r.ContainsKey("unsigned"));
        Assert.False(r.ContainsKey("extra"));
        Assert.True(r.ContainsKey("origin"));
        Assert.True(r.ContainsKey("membership"));
        Assert.True(r.ContainsKey("prev_state"));
    }

    [Fact]
    public void V11DropsOriginMembershipAndPrevState()
    {
        var r = Redaction.Redact(Event("m.room.message", "{}"), RoomVersion.V11);
        Assert.False(r.ContainsKey("origin"));
        Assert.False(r.ContainsKey("membership"));
        Assert.False(r.ContainsKey("prev_state"));
        Assert.True(r.ContainsKey("origin_server_ts"));
    }

    [Theory]
    [InlineData("1", new[] { "creator" })]
    [InlineData("10", new[] { "creator" })]
    [InlineData("11", new[] { "creator", "m.federate", "room_version" })]
    public void CreateContentPerVersion(string version, string[] kept)
    {
        RoomVersion.TryGet(version, out var v);
        var r = Redaction.Redact(Event("m.room.create", """{"creator":"@u:hs","m.federate":false,"room_version":"1"}"""), v!);
        Assert.Equal(kept, Keys((JsonObject)r["content"]!));
    }

    [Theory]
    [InlineData("8", new[] { "membership" })]
    [InlineData("9", new[] { "join_authorised_via_users_server", "membership" })]
    [InlineData("11", new[] { "join_authorised_via_users_server", "membership", "third_party_invite" })]
    public void MemberContentPerVersion(string version, string[] kept)
    {
        RoomVersion.TryGet(version, out var v);
        var r = Redaction.Redact(Event("m.room.member", """{"membership":"join","displayname":"U","join_authorised_via_users_server":"@a:hs","third_party_invite":{"signed":{"token":"t"},"display_name":"x"}}"""), v!);
        Assert.Equal(kept, Keys((JsonObject)r["content"]!));
        if (v!.Redaction == RedactionRules.V11)
        {
            Assert.Equal(["signed"], Keys((JsonObject)r["content"]!["third_party_invite"]!));
        }
    }

    [Theory]
    [InlineData("8", new[] { "join_rule" })]
    [InlineData("9", new[] { "allow", "join_rule" })]
    public void JoinRulesContentPerVersion(string version, string[] kept)
    {
        RoomVersion.TryGet(version, out var v);
        var r = Redaction.Redact(Event("m.room.join_rules", """{"join_rule":"restricted","allow":[],"other":1}"""), v!);
        Assert.Equal(kept, Keys((JsonObject)r["content"]!));
    }

    [Theory]
    [InlineData("10", false)]
    [InlineData("11", true)]
    public void PowerLevelsKeepInviteFromV11(string version, bool keepsInvite)
    {
        RoomVersion.TryGet(version, out var v);
        var r = Redaction.Redact(Event("m.room.power_levels", """{"ban":50,"events":{},"events_default":0,"invite":0,"kick":50,"redact":50,"state_default":50,"users":{},"users_default":0,"notifications":{"room":50}}"""), v!);
        var content = (JsonObject)r["content"]!;
        Assert.Equal(keepsInvite, content.ContainsKey("invite"));
        Assert.False(content.ContainsKey("notifications"));
        Assert.Equal(8 + (keepsInvite ? 1 : 0), content.Count);
    }

    [Theory]
    [InlineData("5", true)]
    [InlineData("6", false)]
    public void AliasesSpecialOnlyBeforeV6(string version, bool kept)
    {
        RoomVersion.TryGet(version, out var v);
        var r = Redaction.Redact(Event("m.room.aliases", """{"aliases":["#a:hs"]}"""), v!);
        Assert.Equal(kept, ((JsonObject)r["content"]!).ContainsKey("aliases"));
    }

    [Theory]
    [InlineData("10", false)]
    [InlineData("11", true)]
    public void RedactionKeepsRedactsFromV11(string version, bool kept)
    {
        RoomVersion.TryGet(version, out var v);
        var r = Redaction.Redact(Event("m.room.redaction", """{"redacts":"$x","reason":"spam"}"""), v!);
        Assert.Equal(kept ? ["redacts"] : [], Keys((JsonObject)r["content"]!));
    }

    [Fact]
    public void HistoryVisibilityIsKept()
    {
        var r = Redaction.Redact(Event("m.room.history_visibility", """{"history_visibility":"joined","x":1}"""), RoomVersion.V11);
        Assert.Equal(["history_visibility"], Keys((JsonObject)r["content"]!));
    }

    [Fact]
    public void RedactionDoesNotChangeTheInput()
    {
        var ev = Event("m.room.message", """{"body":"secret"}""");
        Redaction.Redact(ev, RoomVersion.V11);
        Assert.Equal("secret", ev["content"]!["body"]!.GetValue<string>());
    }
}
