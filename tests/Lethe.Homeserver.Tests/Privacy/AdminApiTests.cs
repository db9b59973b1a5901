using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Privacy;

/// <summary>Synapse's admin API for accounts, rooms and purges: admins only, Synapse's shapes, and the same guarantees as retention.</summary>
public abstract class AdminApiTests(DatabaseEngine engine)
{
    private async Task<(TestHomeserver Server, MatrixClient Root, MatrixClient Bob)> StartAsync(string yaml = "", TestClock? clock = null)
    {
        var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + yaml, clock: clock);
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var root = server.NewClient();
        await root.LoginAsync("root");
        return (server, root, await server.RegisterAsync("bob"));
    }

    [Fact]
    public async Task OnlyServerAdminsMayUseIt()
    {
        var (server, _, bob) = await StartAsync();
        await using var _ = server;
        foreach (var path in new[] { "/_synapse/admin/v2/users", "/_synapse/admin/v1/rooms", "/_synapse/admin/v1/server_version", $"/_synapse/admin/v1/whois/{bob.UserId}" })
        {
            (await bob.GetAsync(path)).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
            (await server.NewClient().GetAsync(path)).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
        }
    }

    [Fact]
    public async Task UsersAreListedSearchedPagedAndManaged()
    {
        var (server, root, bob) = await StartAsync();
        await using var _ = server;
        for (var i = 0; i < 3; i++)
        {
            await server.RegisterAsync("user" + i);
        }

        var page = (await root.GetAsync("/_synapse/admin/v2/users?limit=2")).Ok();
        Assert.Equal(5, page["total"]!.GetValue<long>());
        Assert.Equal(2, page["users"]!.AsArray().Count);
        Assert.Equal("2", page["next_token"]!.GetValue<string>());
        var rest = (await root.GetAsync("/_synapse/admin/v2/users?limit=10&from=2")).Ok();
        Assert.Equal(3, rest["users"]!.AsArray().Count);
        Assert.Null(rest["next_token"]);
        var found = (await root.GetAsync("/_synapse/admin/v2/users?name=USER1")).Ok()["users"]!.AsArray();
        Assert.Equal("@user1:test.local", Assert.Single(found)!["name"]!.GetValue<string>());

        // Create an account with PUT (201), log in with it, then change its password (which logs its devices out).
        var created = await root.PutAsync("/_synapse/admin/v2/users/@dora:test.local", new JsonObject { ["password"] = "dora's long password", ["displayname"] = "Dora" });
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal("Dora", created.Body["displayname"]!.GetValue<string>());
        var dora = server.NewClient();
        await dora.LoginAsync("dora", "dora's long password");
        (await root.PutAsync("/_synapse/admin/v2/users/@dora:test.local", new JsonObject { ["password"] = "another long password" })).Ok();
        (await dora.GetAsync("/_matrix/client/v3/account/whoami")).Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
        await server.NewClient().LoginAsync("dora", "another long password");

        // Deactivated accounts are listed only when asked for; an erased one can never come back.
        (await root.PostAsync("/_synapse/admin/v1/deactivate/" + bob.UserId, new JsonObject { ["erase"] = true })).Ok();
        Assert.DoesNotContain(bob.UserId, (await root.GetAsync("/_synapse/admin/v2/users")).Ok().ToJsonString(), StringComparison.Ordinal);
        Assert.Contains(bob.UserId, (await root.GetAsync("/_synapse/admin/v2/users?deactivated=true")).Ok().ToJsonString(), StringComparison.Ordinal);
        (await root.PutAsync("/_synapse/admin/v2/users/" + bob.UserId, new JsonObject { ["deactivated"] = false, ["password"] = "a new long password" }))
            .Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
    }

    [Fact]
    public async Task BadRequestsGetClearErrors()
    {
        var (server, root, _) = await StartAsync();
        await using var _ = server;
        (await root.GetAsync("/_synapse/admin/v2/users?limit=zero")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await root.GetAsync("/_synapse/admin/v2/users?order_by=password_hash")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await root.GetAsync("/_synapse/admin/v2/users?dir=sideways")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await root.GetAsync("/_synapse/admin/v2/users/@nobody:test.local")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await root.GetAsync("/_synapse/admin/v2/users/@someone:elsewhere.org")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await root.GetAsync("/_synapse/admin/v2/users/not-a-user-id")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await root.PostAsync("/_synapse/admin/v1/deactivate/@nobody:test.local", new JsonObject())).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await root.PostAsync("/_synapse/admin/v1/deactivate/@root:test.local", new JsonObject { ["erase"] = "yes" })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await root.GetAsync("/_synapse/admin/v1/rooms/!nope:test.local")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await root.GetAsync("/_synapse/admin/v1/purge_history_status/nope")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await root.PostAsync("/_synapse/admin/v1/purge_history/!nope:test.local", new JsonObject { ["purge_up_to_ts"] = 1 })).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await root.PutAsync("/_synapse/admin/v2/users/@root:test.local", new JsonObject { ["admin"] = false })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }

    [Fact]
    public async Task PurgeHistoryKeepsLocalEventsUnlessAskedAndHonoursMinLifetime()
    {
        var clock = new TestClock();
        var (server, root, bob) = await StartAsync("retention:\n  enabled: true\n", clock);
        await using var _ = server;
        var roomId = await bob.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["name"] = "Purged" });
        (await bob.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["min_lifetime"] = 86_400_000 })).Ok();
        var held = (await bob.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "held" })).Ok()["event_id"]!.GetValue<string>();
        clock.Advance(TimeSpan.FromHours(1));
        var now = server.Host.Services.NowMs;
        await bob.SendTextAsync(roomId, "newest");

        async Task<string> PurgeAsync(JsonObject body)
        {
            var id = (await root.PostAsync($"/_synapse/admin/v1/purge_history/{roomId}", body)).Ok()["purge_id"]!.GetValue<string>();
            await Poll.UntilAsync(async () => (await root.GetAsync("/_synapse/admin/v1/purge_history_status/" + id)).Ok()["status"]!.GetValue<string>() != "active", TimeSpan.FromSeconds(30), "the purge to finish");
            return (await root.GetAsync("/_synapse/admin/v1/purge_history_status/" + id)).Ok()["status"]!.GetValue<string>();
        }

        // Local events stay by default; with delete_local_events the room's min_lifetime still holds the message.
        Assert.Equal("complete", await PurgeAsync(new JsonObject { ["purge_up_to_ts"] = now }));
        (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{held}")).Ok();
        Assert.Equal("complete", await PurgeAsync(new JsonObject { ["purge_up_to_ts"] = now, ["delete_local_events"] = true }));
        (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{held}")).Ok();

        clock.Advance(TimeSpan.FromDays(1));
        Assert.Equal("complete", await PurgeAsync(new JsonObject { ["purge_up_to_ts"] = now, ["delete_local_events"] = true }));
        (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{held}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");

        // State and the newest message survive; the room lists with its details.
        var details = (await root.GetAsync("/_synapse/admin/v1/rooms/" + roomId)).Ok();
        Assert.Equal("Purged", details["name"]!.GetValue<string>());
        Assert.Equal(1, details["joined_members"]!.GetValue<long>());
        Assert.Equal(bob.UserId, Assert.Single((await root.GetAsync($"/_synapse/admin/v1/rooms/{roomId}/members")).Ok()["members"]!.AsArray())!.GetValue<string>());
        await bob.SendTextAsync(roomId, "the room works on");
    }

    [Fact]
    public async Task RoomDeletionStatusSaysWhoWasMadeToLeaveAndWhichAliasesWent()
    {
        var (server, root, bob) = await StartAsync();
        await using var _ = server;
        var alice = await server.RegisterAsync("alice");
        var carol = await server.RegisterAsync("carol");

        async Task<JsonObject> DeleteAsync(string roomId, bool purge)
        {
            var id = (await root.DeleteAsync($"/_synapse/admin/v2/rooms/{roomId}", new JsonObject { ["purge"] = purge })).Ok()["delete_id"]!.GetValue<string>();
            await Poll.UntilAsync(async () => (await root.GetAsync("/_synapse/admin/v2/rooms/delete_status/" + id)).Ok()["status"]!.GetValue<string>() is "complete" or "failed",
                TimeSpan.FromSeconds(30), "the room deletion to finish");
            var status = (await root.GetAsync("/_synapse/admin/v2/rooms/delete_status/" + id)).Ok();
            Assert.Equal("complete", status["status"]!.GetValue<string>());

            // The by-room form answers the same, with the delete ID.
            var byRoom = Assert.Single((await root.GetAsync($"/_synapse/admin/v2/rooms/{roomId}/delete_status")).Ok()["results"]!.AsArray())!;
            Assert.Equal(id, byRoom["delete_id"]!.GetValue<string>());
            Assert.Equal(status["shutdown_room"]!.ToJsonString(), byRoom["shutdown_room"]!.ToJsonString());
            return status["shutdown_room"]!.AsObject();
        }

        static List<string> Strings(JsonNode? array) => array!.AsArray().Select(n => n!.GetValue<string>()).ToList();

        // Purged: the joined and the invited were made to leave, and both of the room's aliases went with it.
        var doomed = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["room_alias_name"] = "doomed" });
        (await alice.PutAsync("/_matrix/client/v3/directory/room/%23doomed-too:test.local", new JsonObject { ["room_id"] = doomed })).Ok();
        await bob.JoinAsync(doomed);
        await alice.InviteAsync(doomed, carol.UserId);
        var purged = await DeleteAsync(doomed, purge: true);
        Assert.Equal(new[] { alice.UserId, bob.UserId, carol.UserId }.Order(StringComparer.Ordinal), Strings(purged["kicked_users"]));
        Assert.Empty(Strings(purged["failed_to_kick_users"]));
        Assert.Equal(["#doomed-too:test.local", "#doomed:test.local"], Strings(purged["local_aliases"]));
        Assert.Null(purged["new_room_id"]);
        (await bob.GetAsync("/_matrix/client/v3/directory/room/%23doomed:test.local")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");

        // Shut down without purge: the members leave, the room and its alias stay.
        var closed = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["room_alias_name"] = "closed" });
        await bob.JoinAsync(closed);
        var shut = await DeleteAsync(closed, purge: false);
        Assert.Equal(new[] { alice.UserId, bob.UserId }.Order(StringComparer.Ordinal), Strings(shut["kicked_users"]));
        Assert.Empty(Strings(shut["local_aliases"]));
        Assert.Equal(closed, (await bob.GetAsync("/_matrix/client/v3/directory/room/%23closed:test.local")).Ok()["room_id"]!.GetValue<string>());
        Assert.Empty((await bob.GetAsync("/_matrix/client/v3/joined_rooms")).Ok()["joined_rooms"]!.AsArray());
        (await root.GetAsync("/_synapse/admin/v2/rooms/delete_status/nope")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }
}

public sealed class SqliteAdminApiTests() : AdminApiTests(DatabaseEngine.Sqlite);

public sealed class PostgresAdminApiTests() : AdminApiTests(DatabaseEngine.Postgres);
