using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Privacy;

/// <summary>Server notices: an admin reaches one user in a room of its own that the user can read but not write in.</summary>
public abstract class ServerNoticeTests(DatabaseEngine engine)
{
    private const string Notices = """
        server_notices:
          system_mxid_localpart: notices
          system_mxid_display_name: "Server"
          room_name: "Notices"
          room_topic: "From the admins"

        """;

    private async Task<(TestHomeserver Server, MatrixClient Root, MatrixClient Bob)> StartAsync(string yaml)
    {
        var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + yaml);
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var root = server.NewClient();
        await root.LoginAsync("root");
        return (server, root, await server.RegisterAsync("bob"));
    }

    private static JsonObject Notice(string userId, string body) => new()
    {
        ["user_id"] = userId,
        ["content"] = new JsonObject { ["msgtype"] = "m.text", ["body"] = body },
    };

    [Fact]
    public async Task ANoticeArrivesInARoomTheUserCanReadButNotWriteIn()
    {
        var (server, root, bob) = await StartAsync(Notices);
        await using var _ = server;
        var first = (await root.PostAsync("/_synapse/admin/v1/send_server_notice", Notice(bob.UserId, "zq-notice-1"))).Ok()["event_id"]!.GetValue<string>();

        var sync = await bob.SyncAsync();
        var (roomId, invite) = sync["rooms"]!["invite"]!.AsObject().Single();
        Assert.Contains(invite!["invite_state"]!["events"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.name" && e["content"]!["name"]!.GetValue<string>() == "Notices");
        Assert.NotNull((await bob.GetAsync($"/_matrix/client/v3/user/{bob.UserId}/rooms/{roomId}/tags")).Ok()["tags"]!["m.server_notice"]);
        await bob.JoinAsync(roomId);
        var message = (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{first}")).Ok();
        Assert.Equal("zq-notice-1", message["content"]!["body"]!.GetValue<string>());
        Assert.Equal("@notices:test.local", message["sender"]!.GetValue<string>());
        (await bob.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "reply" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");

        // The next notice goes to the same room; a retried transaction gives the same event.
        var second = (await root.PutAsync("/_synapse/admin/v1/send_server_notice/t1", Notice(bob.UserId, "zq-notice-2"))).Ok()["event_id"]!.GetValue<string>();
        Assert.Equal(second, (await root.PutAsync("/_synapse/admin/v1/send_server_notice/t1", Notice(bob.UserId, "zq-notice-2"))).Ok()["event_id"]!.GetValue<string>());
        Assert.Equal(roomId, (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{second}")).Ok()["room_id"]!.GetValue<string>());

        // If the user leaves, the next notice opens a new room.
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/leave", new JsonObject())).Ok();
        var third = (await root.PostAsync("/_synapse/admin/v1/send_server_notice", Notice(bob.UserId, "zq-notice-3"))).Ok()["event_id"]!.GetValue<string>();
        var newRoom = (await bob.SyncAsync())["rooms"]!["invite"]!.AsObject().Single().Key;
        Assert.NotEqual(roomId, newRoom);
        await bob.JoinAsync(newRoom);
        Assert.Equal(newRoom, (await bob.GetAsync($"/_matrix/client/v3/rooms/{newRoom}/event/{third}")).Ok()["room_id"]!.GetValue<string>());

        // The system user is not a person: it is kept out of the user directory, even for users who share its room.
        var found = (await bob.PostAsync("/_matrix/client/v3/user_directory/search", new JsonObject { ["search_term"] = "notices" })).Ok()["results"]!.AsArray();
        Assert.Empty(found);
    }

    [Fact]
    public async Task BadRequestsAndUnconfiguredServersGetClearErrors()
    {
        var (server, root, bob) = await StartAsync(Notices);
        await using (server)
        {
            (await bob.PostAsync("/_synapse/admin/v1/send_server_notice", Notice(bob.UserId, "x"))).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
            (await root.PostAsync("/_synapse/admin/v1/send_server_notice", Notice("@bob:elsewhere.org", "x"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
            (await root.PostAsync("/_synapse/admin/v1/send_server_notice", Notice("@nobody:test.local", "x"))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
            (await root.PostAsync("/_synapse/admin/v1/send_server_notice", new JsonObject { ["user_id"] = bob.UserId })).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        }

        var (plain, plainRoot, plainBob) = await StartAsync("");
        await using (plain)
        {
            (await plainRoot.PostAsync("/_synapse/admin/v1/send_server_notice", Notice(plainBob.UserId, "x"))).Error(HttpStatusCode.BadRequest, "M_UNKNOWN");
        }
    }
}

public sealed class SqliteServerNoticeTests() : ServerNoticeTests(DatabaseEngine.Sqlite);

public sealed class PostgresServerNoticeTests() : ServerNoticeTests(DatabaseEngine.Postgres);
