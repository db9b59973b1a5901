using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Tests.Infrastructure;

namespace Lethe.Homeserver.Tests.Privacy;

/// <summary>Runs alone, so every connection the process makes during it belongs to the server under test or its client.</summary>
[CollectionDefinition(nameof(NoParallelCollection), DisableParallelization = true)]
public sealed class NoParallelCollection;

/// <summary>
/// A server started with the default config talks to nobody: through a whole client session it opens no connection,
/// resolves no host name and sends no HTTP request, except to itself. Every outbound path in .NET (sockets, DNS,
/// HttpClient) reports through these event sources, so a connection made anywhere in the server shows up here.
/// </summary>
[Collection(nameof(NoParallelCollection))]
public sealed class NoOutboundConnectionsTests
{
    [Fact]
    public async Task TheDefaultConfigOpensNoOutboundConnectionDuringAFullClientSession()
    {
        var dir = TestHomeserver.NewTempDir();
        var path = Path.Combine(dir, "homeserver.yaml");
        await File.WriteAllTextAsync(path, ConfigTemplate.Generate("localhost", dir, port: 0));
        var config = ConfigLoader.LoadFile(path);
        Assert.Empty(config.Warnings);
        await Accounts.UserStoreSeed.AdminInDatabaseAsync(config, "alice");
        await Accounts.UserStoreSeed.AdminInDatabaseAsync(config, "bob");

        using var watch = new NetworkWatch();
        var host = await LetheHost.StartAsync(config);
        var server = new Uri(host.Addresses[0].Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal) + "/");
        try
        {
            using var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromSeconds(30) };
            await ClientSessionAsync(new MatrixClient(http), new MatrixClient(http));
        }
        finally
        {
            await host.StopAsync();
        }

        var self = new IPEndPoint(IPAddress.Loopback, server.Port);
        Assert.NotEmpty(watch.Connects);
        Assert.All(watch.Connects, c => Assert.Equal(self, EndPointOf(c)));
        Assert.Empty(watch.Resolutions);
        Assert.All(watch.Requests, r => Assert.Equal($"127.0.0.1:{server.Port}", r));
    }

    /// <summary>
    /// The endpoint in a <see cref="SocketAddress"/> as the sockets event source prints it, e.g.
    /// <c>InterNetworkV6:28:{176,147,0,0,0,0,…}</c>: the port in the first two bytes, then (IPv6) flow info and the
    /// address, IPv4-mapped addresses turned back into IPv4 (sockets are dual-mode).
    /// </summary>
    private static IPEndPoint EndPointOf(string socketAddress)
    {
        var open = socketAddress.IndexOf('{', StringComparison.Ordinal);
        var bytes = socketAddress[(open + 1)..socketAddress.IndexOf('}', StringComparison.Ordinal)]
            .Split(',').Select(b => byte.Parse(b, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var port = (bytes[0] << 8) | bytes[1];
        if (socketAddress.StartsWith("InterNetworkV6:", StringComparison.Ordinal))
        {
            var address = new IPAddress(bytes[6..22]);
            return new IPEndPoint(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address, port);
        }

        return new IPEndPoint(new IPAddress(bytes[2..6]), port);
    }

    /// <summary>What a person does in a first session: log in, make a room, invite, talk, react, edit, redact, look around, log out.</summary>
    private static async Task ClientSessionAsync(MatrixClient alice, MatrixClient bob)
    {
        (await alice.GetAsync("/_matrix/client/versions")).Ok();
        (await alice.GetAsync("/.well-known/matrix/client")).Raw.Dispose();
        (await alice.GetAsync("/_matrix/client/v3/login")).Ok();
        await alice.LoginAsync("alice");
        await bob.LoginAsync("bob");
        (await alice.GetAsync("/_matrix/client/v3/capabilities")).Ok();
        (await alice.GetAsync("/_matrix/client/v3/pushrules/")).Raw.Dispose();
        (await alice.PutAsync($"/_matrix/client/v3/profile/{alice.UserId}/displayname", new JsonObject { ["displayname"] = "Alice" })).Ok();
        (await alice.PutAsync($"/_matrix/client/v3/profile/{alice.UserId}/avatar_url", new JsonObject { ["avatar_url"] = "mxc://matrix.org/someone-elses-picture" })).Ok();
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["room_alias_name"] = "tea", ["name"] = "Tea", ["topic"] = "https://example.com/a-link" });
        await alice.InviteAsync(roomId, bob.UserId);
        var since = (await bob.SyncAsync())["next_batch"]!.GetValue<string>();
        await bob.JoinAsync("#tea:localhost");
        var hello = (await alice.SendEventAsync(roomId, "m.room.message", new JsonObject
        {
            ["msgtype"] = "m.text",
            ["body"] = "Have a look at https://matrix.org and https://example.com/image.png @bob:matrix.org",
        })).Ok()["event_id"]!.GetValue<string>();
        await bob.SyncAsync(since, timeout: 1000);
        (await bob.SendEventAsync(roomId, "m.reaction", new JsonObject
        {
            ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.annotation", ["event_id"] = hello, ["key"] = "👍" },
        })).Ok();
        (await alice.SendEventAsync(roomId, "m.room.message", new JsonObject
        {
            ["msgtype"] = "m.text",
            ["body"] = "* edited",
            ["m.new_content"] = new JsonObject { ["msgtype"] = "m.text", ["body"] = "edited" },
            ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.replace", ["event_id"] = hello },
        })).Ok();
        (await bob.PutAsync($"/_matrix/client/v3/rooms/{roomId}/typing/{bob.UserId}", new JsonObject { ["typing"] = true, ["timeout"] = 5000 })).Ok();
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/receipt/m.read/{hello}", new JsonObject())).Ok();
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/read_markers", new JsonObject { ["m.fully_read"] = hello })).Ok();
        (await alice.PutAsync($"/_matrix/client/v3/rooms/{roomId}/redact/{hello}/r1", new JsonObject { ["reason"] = "oops" })).Ok();
        (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=20")).Ok();
        (await alice.GetAsync($"/_matrix/client/v1/rooms/{roomId}/relations/{hello}")).Ok();
        (await alice.PutAsync($"/_matrix/client/v3/directory/list/room/{roomId}", new JsonObject { ["visibility"] = "public" })).Ok();
        (await bob.GetAsync("/_matrix/client/v3/publicRooms")).Ok();
        (await bob.PostAsync("/_matrix/client/v3/publicRooms?server=matrix.org", new JsonObject())).Raw.Dispose();
        (await bob.PostAsync("/_matrix/client/v3/user_directory/search", new JsonObject { ["search_term"] = "ali" })).Ok();
        (await bob.GetAsync("/_matrix/client/v3/profile/@someone:matrix.org")).Raw.Dispose();
        (await bob.PostAsync("/_matrix/client/v3/join/%23matrix:matrix.org", new JsonObject())).Raw.Dispose();
        (await bob.PutAsync($"/_matrix/client/v3/user/{bob.UserId}/account_data/m.direct", new JsonObject())).Ok();
        // Right after a sync this is over rc_presence's default allowance (429, as in Synapse); answered either way.
        (await bob.PutAsync($"/_matrix/client/v3/presence/{bob.UserId}/status", new JsonObject { ["presence"] = "online" })).Raw.Dispose();
        (await bob.GetAsync("/_matrix/client/v3/devices")).Ok();
        await bob.SyncAsync(since);
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/leave", new JsonObject())).Ok();
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/forget", new JsonObject())).Ok();
        (await bob.PostAsync("/_matrix/client/v3/logout", new JsonObject())).Ok();
        (await alice.PostAsync("/_matrix/client/v3/logout/all", new JsonObject())).Ok();
    }

    /// <summary>Records socket connects, DNS lookups and HTTP requests made anywhere in this process.</summary>
    private sealed class NetworkWatch : EventListener
    {
        public ConcurrentBag<string> Connects { get; } = [];

        public ConcurrentBag<string> Resolutions { get; } = [];

        public ConcurrentBag<string> Requests { get; } = [];

        protected override void OnEventSourceCreated(EventSource source)
        {
            if (source.Name is "System.Net.Sockets" or "System.Net.NameResolution" or "System.Net.Http")
            {
                EnableEvents(source, EventLevel.Informational);
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            switch (e.EventSource.Name, e.EventName)
            {
                case ("System.Net.Sockets", "ConnectStart"):
                    Connects.Add(e.Payload![0]?.ToString() ?? "");
                    break;
                case ("System.Net.NameResolution", "ResolutionStart"):
                    Resolutions.Add(e.Payload![0]?.ToString() ?? "");
                    break;
                case ("System.Net.Http", "RequestStart"):
                    // Payload: scheme, host, port, path, versionMajor, versionMinor, versionPolicy.
                    Requests.Add($"{e.Payload![1]}:{e.Payload[2]}");
                    break;
            }
        }
    }
}
