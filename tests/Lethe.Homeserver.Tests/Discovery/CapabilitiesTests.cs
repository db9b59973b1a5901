using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;

namespace Lethe.Homeserver.Tests.Discovery;

/// <summary><c>GET /capabilities</c> tells clients what they may offer; what it claims must hold.</summary>
public sealed class CapabilitiesTests
{
    [Fact]
    public async Task CapabilitiesListTheRoomVersionsAndAccountChangesThisServerSupports()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        var caps = (await alice.GetAsync("/_matrix/client/v3/capabilities")).Ok()["capabilities"]!.AsObject();

        var versions = caps["m.room_versions"]!.AsObject();
        Assert.Equal("11", versions["default"]!.GetValue<string>());
        var available = versions["available"]!.AsObject();
        Assert.Equal(Enumerable.Range(1, 12).Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)).Order(StringComparer.Ordinal), available.Select(kv => kv.Key).Order(StringComparer.Ordinal));
        Assert.All(available, kv => Assert.Equal("stable", kv.Value!.GetValue<string>()));

        Assert.True(caps["m.change_password"]!["enabled"]!.GetValue<bool>());
        Assert.True(caps["m.set_displayname"]!["enabled"]!.GetValue<bool>());
        Assert.True(caps["m.set_avatar_url"]!["enabled"]!.GetValue<bool>());
        Assert.False(caps["m.3pid_changes"]!["enabled"]!.GetValue<bool>());
        Assert.False(caps["m.get_login_token"]!["enabled"]!.GetValue<bool>());

        // What is claimed works: a room of the default version is made without naming it, and the profile can be changed ...
        var roomId = await alice.CreateRoomAsync();
        Assert.Equal("11", (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.create")).Ok()["room_version"]!.GetValue<string>());
        (await alice.PutAsync($"/_matrix/client/v3/profile/{alice.UserId}/displayname", new JsonObject { ["displayname"] = "Alice" })).Ok();
        (await alice.PutAsync($"/_matrix/client/v3/profile/{alice.UserId}/avatar_url", new JsonObject { ["avatar_url"] = "mxc://test.local/abc" })).Ok();
        var profile = (await alice.GetAsync($"/_matrix/client/v3/profile/{alice.UserId}")).Ok();
        Assert.Equal("Alice", profile["displayname"]!.GetValue<string>());
        Assert.Equal("mxc://test.local/abc", profile["avatar_url"]!.GetValue<string>());

        // ... and what is not offered is not served.
        Assert.NotEqual(HttpStatusCode.OK, (await alice.PostAsync("/_matrix/client/v3/account/3pid/add", new JsonObject())).Status);
        Assert.NotEqual(HttpStatusCode.OK, (await alice.PostAsync("/_matrix/client/v1/login/get_token", new JsonObject())).Status);

        (await server.NewClient().GetAsync("/_matrix/client/v3/capabilities")).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
    }
}
