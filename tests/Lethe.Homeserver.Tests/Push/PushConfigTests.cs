using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Tests.Infrastructure;

namespace Lethe.Homeserver.Tests.Push;

/// <summary>The push and outbound address configuration, read and in force.</summary>
public sealed class PushConfigTests
{
    private static HomeserverConfig Load(string yaml) => ConfigLoader.Load("server_name: example.org\n" + yaml, "/etc/lethe");

    [Fact]
    public void PushKeysAndIpRangesAreReadWithSynapsesDefaults()
    {
        var defaults = Load("");
        Assert.True(defaults.Push.Enabled);
        Assert.True(defaults.Push.IncludeContent);
        Assert.Contains(IPNetwork.Parse("127.0.0.0/8"), defaults.IpRangeBlacklist);
        Assert.Empty(defaults.IpRangeWhitelist);

        var set = Load("push:\n  include_content: false\n  jitter_delay: 5s\nip_range_blacklist: ['10.0.0.0/8']\nip_range_whitelist: ['10.1.2.3', 'fd00::/8']\n");
        Assert.False(set.Push.IncludeContent);
        Assert.Equal([IPNetwork.Parse("10.0.0.0/8")], set.IpRangeBlacklist);
        Assert.Equal([IPNetwork.Parse("10.1.2.3/32"), IPNetwork.Parse("fd00::/8")], set.IpRangeWhitelist);
        Assert.DoesNotContain(set.Warnings, w => w.StartsWith("push", StringComparison.Ordinal));

        var e = Assert.Throws<ConfigException>(() => Load("ip_range_whitelist: ['not-an-address']\n"));
        Assert.Contains("ip_range_whitelist[0]", e.Message, StringComparison.Ordinal);
        Assert.Throws<ConfigException>(() => Load("push:\n  include_content: maybe\n"));
    }

    [Fact]
    public async Task IncludeContentFalseSendsNoContentAndBlockedGatewaysAreNotCalled()
    {
        await using var gateway = await TestPushGateway.StartAsync();
        // Only 127.0.0.1 is let through; 127.0.0.2 stays behind the default blacklist.
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration + "push:\n  include_content: false\nip_range_whitelist: ['127.0.0.1']\n");
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        JsonObject Pusher(string key, string url) => new()
        {
            ["pushkey"] = key, ["kind"] = "http", ["app_id"] = "org.example", ["app_display_name"] = "a", ["device_display_name"] = "d", ["lang"] = "en",
            ["data"] = new JsonObject { ["url"] = url },
        };
        (await bob.PostAsync("/_matrix/client/v3/pushers/set", Pusher("ok", gateway.NotifyUrl))).Ok();
        (await bob.PostAsync("/_matrix/client/v3/pushers/set", Pusher("blocked", gateway.NotifyUrl.Replace("127.0.0.1", "127.0.0.2", StringComparison.Ordinal)))).Ok();

        await alice.SendTextAsync(roomId, "top secret");
        Assert.True(await server.Host.Services.Push.Delivery!.IdleAsync(TimeSpan.FromSeconds(15)), "a blocked destination is not retried");
        var (body, _, _) = Assert.Single(gateway.Received);
        var n = body["notification"]!;
        Assert.Equal("ok", n["devices"]![0]!["pushkey"]!.GetValue<string>());
        Assert.Null(n["content"]);
        Assert.Equal(alice.UserId, n["sender"]!.GetValue<string>());
        Assert.Contains("ip_range_blacklist", server.Log.Text, StringComparison.Ordinal);
    }
}
