using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Push;
using Lethe.Protocol.Events;

namespace Lethe.Homeserver.Tests.Push;

/// <summary>Rule evaluation, globs and the outbound address rules, without a server.</summary>
public sealed class PushRuleEvaluationTests
{
    private static readonly PushUser Bob = new("@bob:hs", "bob", "Bobby Tables");

    private static PushEvent Event(string type, JsonObject content, string sender = "@alice:hs", string? stateKey = null, int members = 5)
    {
        var json = new JsonObject
        {
            ["room_id"] = "!room:hs",
            ["sender"] = sender,
            ["type"] = type,
            ["content"] = content,
            ["origin_server_ts"] = 1L,
            ["depth"] = 3L,
            ["prev_events"] = new JsonArray(),
            ["auth_events"] = new JsonArray(),
            ["hashes"] = new JsonObject { ["sha256"] = "aaaa" },
            ["signatures"] = new JsonObject(),
        };
        if (stateKey is not null)
        {
            json["state_key"] = stateKey;
        }

        return new PushEvent(Pdu.FromJson(json, RoomVersion.V11), members, () => null);
    }

    private static PushActions Evaluate(PushEvent e, PushUser? user = null) => PushRuleSet.Defaults("@bob:hs").Compile().Evaluate(e, user ?? Bob);

    [Fact]
    public void DefaultRulesDecideAsTheSpecSays()
    {
        var plain = Evaluate(Event("m.room.message", new JsonObject { ["body"] = "hi all" }));
        Assert.True(plain.Notify);
        Assert.False(plain.Highlight);
        Assert.True(Evaluate(Event("m.room.message", new JsonObject { ["body"] = "hello bobby tables!" })).Highlight);
        Assert.True(Evaluate(Event("m.room.message", new JsonObject { ["body"] = "is Bob around?" })).Highlight);
        Assert.False(Evaluate(Event("m.room.message", new JsonObject { ["body"] = "bobcat" })).Highlight);
        Assert.False(Evaluate(Event("m.room.message", new JsonObject { ["body"] = "hello bob", ["m.mentions"] = new JsonObject() })).Highlight);
        Assert.True(Evaluate(Event("m.room.message", new JsonObject { ["body"] = "x", ["m.mentions"] = new JsonObject { ["user_ids"] = new JsonArray("@bob:hs") } })).Highlight);
        Assert.False(Evaluate(Event("m.room.message", new JsonObject { ["body"] = "n", ["msgtype"] = "m.notice" })).Notify);
        Assert.False(Evaluate(Event("m.reaction", new JsonObject())).Notify);
        Assert.False(Evaluate(Event("m.room.message", new JsonObject { ["body"] = "*fix", ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.replace", ["event_id"] = "$x" } })).Notify);
        Assert.Equal("ring", Evaluate(Event("m.call.invite", new JsonObject())).Sound);
        Assert.Equal("default", Evaluate(Event("m.room.message", new JsonObject { ["body"] = "dm" }, members: 2)).Sound);
        Assert.True(Evaluate(Event("m.room.encrypted", new JsonObject())).Notify);
        Assert.True(Evaluate(Event("m.room.member", new JsonObject { ["membership"] = "invite" }, stateKey: "@bob:hs")).Notify);
        Assert.False(Evaluate(Event("m.room.member", new JsonObject { ["membership"] = "invite" }, stateKey: "@carol:hs")).Notify);
        Assert.True(Evaluate(Event("m.room.tombstone", new JsonObject { ["body"] = "moved" }, stateKey: "")).Highlight);
        Assert.False(Evaluate(Event("m.room.server_acl", new JsonObject(), stateKey: "")).Notify);
    }

    [Fact]
    public void GlobsMatchWholeValuesOrWords()
    {
        Assert.True(Glob.Whole("lunc?*").IsMatch("LUNCH"));
        Assert.False(Glob.Whole("lunc?*").IsMatch(" lunch"));
        Assert.False(Glob.Whole("lunc?*").IsMatch("lunc"));
        Assert.True(Glob.Words("ex*ple").IsMatch("An example event."));
        Assert.True(Glob.Words("ex*ple").IsMatch("exple"));
        Assert.True(Glob.Words("ex*ple").IsMatch("An exciting triple-whammy"));
        Assert.False(Glob.Words("cake").IsMatch("cakes"));
        Assert.True(Glob.Words("cake").IsMatch("CAKE!"));
        Assert.True(Glob.Whole("[a-c]at").IsMatch("bat"));
        Assert.False(Glob.Whole("[!a-c]at").IsMatch("bat"));
        Assert.True(Glob.Words("@room").IsMatch("hey @room look"));
    }

    [Fact]
    public void PropertyConditionsCompareExactly()
    {
        var e = Event("m.room.create", new JsonObject { ["m.federate"] = true, ["alt_aliases"] = new JsonArray("#a:hs", "#b:hs"), ["n"] = 5 }, stateKey: "");
        PushCondition Cond(string kind, string key, JsonNode? value) =>
            PushCondition.Compile(new JsonObject { ["kind"] = kind, ["key"] = key, ["value"] = value }, "@bob:hs", "bob");
        Assert.True(Cond("event_property_is", @"content.m\.federate", true).Matches(e, Bob));
        Assert.False(Cond("event_property_is", @"content.m\.federate", "true").Matches(e, Bob));
        Assert.True(Cond("event_property_is", "content.n", 5).Matches(e, Bob));
        Assert.True(Cond("event_property_contains", "content.alt_aliases", "#b:hs").Matches(e, Bob));
        Assert.False(Cond("event_property_contains", "content.alt_aliases", ":hs").Matches(e, Bob));
        Assert.False(Cond("event_property_contains", "content.n", 5).Matches(e, Bob));
        Assert.False(PushCondition.Compile(new JsonObject { ["kind"] = "future_condition" }, "@bob:hs", "bob").Matches(e, Bob));
    }

    [Fact]
    public void OutboundRulesBlockPrivateRangesUnlessWhitelisted()
    {
        var rules = new OutboundAddressRules(OutboundAddressRules.DefaultBlacklist, []);
        Assert.False(rules.IsAllowed(IPAddress.Loopback));
        Assert.False(rules.IsAllowed(IPAddress.Parse("10.1.2.3")));
        Assert.False(rules.IsAllowed(IPAddress.Parse("169.254.169.254")));
        Assert.False(rules.IsAllowed(IPAddress.Parse("::ffff:192.168.1.1")));
        Assert.False(rules.IsAllowed(IPAddress.IPv6Loopback));
        Assert.False(rules.IsAllowed(IPAddress.Any));
        Assert.True(rules.IsAllowed(IPAddress.Parse("93.184.215.14")));
        var open = new OutboundAddressRules(OutboundAddressRules.DefaultBlacklist, [IPNetwork.Parse("127.0.0.1/32")]);
        Assert.True(open.IsAllowed(IPAddress.Loopback));
        Assert.False(open.IsAllowed(IPAddress.Parse("127.0.0.2")));
    }
}
