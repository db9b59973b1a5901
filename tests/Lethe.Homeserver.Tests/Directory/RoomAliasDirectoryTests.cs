using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Accounts;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

// Not "...Tests.Directory": that namespace would hide System.IO.Directory from the rest of the test project.
namespace Lethe.Homeserver.Tests.Directories;

/// <summary>Room aliases: creating, resolving, listing and deleting them, on both database engines.</summary>
public abstract class RoomAliasDirectoryTests(DatabaseEngine engine) : IAsyncLifetime
{
    protected TestHomeserver Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    private static string AliasPath(string alias) => "/_matrix/client/v3/directory/room/" + Uri.EscapeDataString(alias);

    private static JsonObject RoomIdBody(string roomId) => new() { ["room_id"] = roomId };

    [Fact]
    public async Task AnAliasCanBeCreatedResolvedListedAndJoinedThrough()
    {
        var alice = await Server.RegisterAsync("alice");
        var bob = await Server.RegisterAsync("bob");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        Assert.Empty((await alice.PutAsync(AliasPath("#tea:test.local"), RoomIdBody(roomId))).Ok());

        // Resolving needs no access token.
        var resolved = (await Server.NewClient().GetAsync(AliasPath("#tea:test.local"))).Ok();
        Assert.Equal(roomId, resolved["room_id"]!.GetValue<string>());
        Assert.Equal(["test.local"], resolved["servers"]!.AsArray().Select(s => s!.GetValue<string>()));

        // The legacy r0 prefix resolves it too (older clients).
        var viaR0 = (await Server.NewClient().GetAsync("/_matrix/client/r0/directory/room/" + Uri.EscapeDataString("#tea:test.local"))).Ok();
        Assert.Equal(roomId, viaR0["room_id"]!.GetValue<string>());

        (await alice.PutAsync(AliasPath("#chai:test.local"), RoomIdBody(roomId))).Ok();
        var aliases = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/aliases")).Ok()["aliases"]!.AsArray();
        Assert.Equal(["#chai:test.local", "#tea:test.local"], aliases.Select(a => a!.GetValue<string>()).Order(StringComparer.Ordinal));

        await bob.JoinAsync("#chai:test.local");
        var joined = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/joined_members")).Ok()["joined"]!.AsObject();
        Assert.Contains(bob.UserId, joined.Select(kv => kv.Key));
    }

    [Fact]
    public async Task CreatingAnAliasIsRefusedWithTheSpecsErrors()
    {
        var alice = await Server.RegisterAsync("alice");
        var eve = await Server.RegisterAsync("eve");
        var roomId = await alice.CreateRoomAsync();
        (await alice.PutAsync(AliasPath("#taken:test.local"), RoomIdBody(roomId))).Ok();

        (await alice.PutAsync(AliasPath("#taken:test.local"), RoomIdBody(roomId))).Error(HttpStatusCode.Conflict, "M_UNKNOWN");
        (await alice.PutAsync(AliasPath("no-hash:test.local"), RoomIdBody(roomId))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PutAsync(AliasPath("#elsewhere:other.example"), RoomIdBody(roomId))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PutAsync(AliasPath("#has space:test.local"), RoomIdBody(roomId))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PutAsync(AliasPath("#:test.local"), RoomIdBody(roomId))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PutAsync(AliasPath("#new:test.local"), new JsonObject())).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await alice.PutAsync(AliasPath("#new:test.local"), new JsonObject { ["room_id"] = 42 })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.PutAsync(AliasPath("#new:test.local"), RoomIdBody("not-a-room"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PutAsync(AliasPath("#new:test.local"), "{\"room_id\":")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
        (await alice.PutAsync(AliasPath("#new:test.local"), RoomIdBody("!nowhere:test.local"))).Error(HttpStatusCode.BadRequest, "M_UNKNOWN");
        // Only members may name a room.
        (await eve.PutAsync(AliasPath("#hijack:test.local"), RoomIdBody(roomId))).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await Server.NewClient().PutAsync(AliasPath("#anon:test.local"), RoomIdBody(roomId))).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");

        // None of the refused requests created anything.
        foreach (var alias in new[] { "#new:test.local", "#hijack:test.local", "#anon:test.local", "#has space:test.local" })
        {
            (await alice.GetAsync(AliasPath(alias))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        }
    }

    [Fact]
    public async Task ServerAdminsMayNameRoomsTheyAreNotIn()
    {
        await UserStoreSeed.AdminAsync(Server, "root");
        var admin = Server.NewClient();
        await admin.LoginAsync("root");
        var alice = await Server.RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync();
        (await admin.PutAsync(AliasPath("#official:test.local"), RoomIdBody(roomId))).Ok();
        Assert.Equal(roomId, (await alice.GetAsync(AliasPath("#official:test.local"))).Ok()["room_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task UnknownRemoteAndMalformedAliasesDoNotResolve()
    {
        var c = Server.NewClient();
        (await c.GetAsync(AliasPath("#nothing:test.local"))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        // Other servers' aliases would need federation.
        (await c.GetAsync(AliasPath("#room:other.example"))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await c.GetAsync(AliasPath("nothing"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await c.GetAsync(AliasPath("#no-server"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }

    [Fact]
    public async Task AliasesAreDeletedByTheirCreatorARoomModeratorOrAnAdmin()
    {
        await UserStoreSeed.AdminAsync(Server, "root");
        var admin = Server.NewClient();
        await admin.LoginAsync("root");
        var alice = await Server.RegisterAsync("alice");
        var bob = await Server.RegisterAsync("bob");
        var eve = await Server.RegisterAsync("eve");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        (await alice.PutAsync(AliasPath("#alices:test.local"), RoomIdBody(roomId))).Ok();
        (await bob.PutAsync(AliasPath("#bobs:test.local"), RoomIdBody(roomId))).Ok();
        (await bob.PutAsync(AliasPath("#bobs2:test.local"), RoomIdBody(roomId))).Ok();
        (await alice.PutAsync(AliasPath("#admins:test.local"), RoomIdBody(roomId))).Ok();

        // Bob (power 0) may not delete Alice's alias; Eve (not in the room) may delete nothing.
        (await bob.DeleteAsync(AliasPath("#alices:test.local"))).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await eve.DeleteAsync(AliasPath("#bobs:test.local"))).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await Server.NewClient().DeleteAsync(AliasPath("#bobs:test.local"))).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");

        // Bob deletes his own; Alice, who may change the canonical alias, deletes Bob's other one; the admin any.
        (await bob.DeleteAsync(AliasPath("#bobs:test.local"))).Ok();
        (await alice.DeleteAsync(AliasPath("#bobs2:test.local"))).Ok();
        (await admin.DeleteAsync(AliasPath("#admins:test.local"))).Ok();

        foreach (var gone in new[] { "#bobs:test.local", "#bobs2:test.local", "#admins:test.local" })
        {
            (await bob.GetAsync(AliasPath(gone))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        }

        Assert.Equal(["#alices:test.local"], (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/aliases")).Ok()["aliases"]!.AsArray().Select(a => a!.GetValue<string>()));
        (await alice.DeleteAsync(AliasPath("#bobs:test.local"))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await alice.DeleteAsync(AliasPath("bobs"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }

    [Fact]
    public async Task DeletingAnAdvertisedAliasTakesItOutOfTheCanonicalAliasEvent()
    {
        var alice = await Server.RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["room_alias_name"] = "main" });
        (await alice.PutAsync(AliasPath("#alt:test.local"), RoomIdBody(roomId))).Ok();
        (await alice.PutAsync(AliasPath("#other:test.local"), RoomIdBody(roomId))).Ok();
        (await alice.SetStateAsync(roomId, "m.room.canonical_alias", new JsonObject
        {
            ["alias"] = "#main:test.local",
            ["alt_aliases"] = new JsonArray("#alt:test.local", "#other:test.local"),
        })).Ok();
        async Task<JsonObject> Canonical() => (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.canonical_alias")).Ok();

        (await alice.DeleteAsync(AliasPath("#main:test.local"))).Ok();
        var content = await Canonical();
        Assert.Null(content["alias"]);
        Assert.Equal(["#alt:test.local", "#other:test.local"], content["alt_aliases"]!.AsArray().Select(a => a!.GetValue<string>()));

        (await alice.DeleteAsync(AliasPath("#alt:test.local"))).Ok();
        Assert.Equal(["#other:test.local"], (await Canonical())["alt_aliases"]!.AsArray().Select(a => a!.GetValue<string>()));

        (await alice.DeleteAsync(AliasPath("#other:test.local"))).Ok();
        Assert.Empty(await Canonical());

        // Each change reached the room as an ordinary state event: createRoom's, Alice's, and one per deletion.
        var history = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=100")).Ok()["chunk"]!.AsArray();
        Assert.Equal(5, history.Count(e => e!["type"]!.GetValue<string>() == "m.room.canonical_alias"));
    }

    [Fact]
    public async Task ACreatorWithoutPowerStillDeletesButTheCanonicalAliasStays()
    {
        var alice = await Server.RegisterAsync("alice");
        var bob = await Server.RegisterAsync("bob");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        (await bob.PutAsync(AliasPath("#bobs:test.local"), RoomIdBody(roomId))).Ok();
        (await alice.SetStateAsync(roomId, "m.room.canonical_alias", new JsonObject { ["alt_aliases"] = new JsonArray("#bobs:test.local") })).Ok();

        // Bob may not send m.room.canonical_alias (power 0 < 50): his alias goes, the event is left as it was.
        (await bob.DeleteAsync(AliasPath("#bobs:test.local"))).Ok();
        (await bob.GetAsync(AliasPath("#bobs:test.local"))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        var content = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.canonical_alias")).Ok();
        Assert.Equal(["#bobs:test.local"], content["alt_aliases"]!.AsArray().Select(a => a!.GetValue<string>()));
    }

    [Fact]
    public async Task ARoomsAliasesAreShownToMembersWorldReadersAndAdminsOnly()
    {
        await UserStoreSeed.AdminAsync(Server, "root");
        var admin = Server.NewClient();
        await admin.LoginAsync("root");
        var alice = await Server.RegisterAsync("alice");
        var eve = await Server.RegisterAsync("eve");
        var closed = await alice.CreateRoomAsync(new JsonObject { ["room_alias_name"] = "closed" });
        var readable = await alice.CreateRoomAsync(new JsonObject
        {
            ["room_alias_name"] = "readable",
            ["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.history_visibility", ["content"] = new JsonObject { ["history_visibility"] = "world_readable" } }),
        });

        (await eve.GetAsync($"/_matrix/client/v3/rooms/{closed}/aliases")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        Assert.Equal(["#readable:test.local"], (await eve.GetAsync($"/_matrix/client/v3/rooms/{readable}/aliases")).Ok()["aliases"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Equal(["#closed:test.local"], (await admin.GetAsync($"/_matrix/client/v3/rooms/{closed}/aliases")).Ok()["aliases"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Empty((await alice.GetAsync($"/_matrix/client/v3/rooms/{await alice.CreateRoomAsync()}/aliases")).Ok()["aliases"]!.AsArray());

        // An unknown room looks like a room you are not in.
        (await eve.GetAsync("/_matrix/client/v3/rooms/!nowhere:test.local/aliases")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await eve.GetAsync("/_matrix/client/v3/rooms/nonsense/aliases")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Server.NewClient().GetAsync($"/_matrix/client/v3/rooms/{readable}/aliases")).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");

        // After leaving, a member no longer sees a closed room's aliases.
        var bob = await Server.RegisterAsync("bob");
        await alice.InviteAsync(closed, bob.UserId);
        await bob.JoinAsync(closed);
        (await bob.GetAsync($"/_matrix/client/v3/rooms/{closed}/aliases")).Ok();
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{closed}/leave", new JsonObject())).Ok();
        (await bob.GetAsync($"/_matrix/client/v3/rooms/{closed}/aliases")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
    }
}

public sealed class SqliteRoomAliasDirectoryTests() : RoomAliasDirectoryTests(DatabaseEngine.Sqlite);

public sealed class PostgresRoomAliasDirectoryTests() : RoomAliasDirectoryTests(DatabaseEngine.Postgres);
