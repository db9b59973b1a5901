using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Relations;

/// <summary>POST /rooms/{roomId}/upgrade: permissions, what the new room gets, and what happens to the old one.</summary>
public abstract class RoomUpgradeTests(DatabaseEngine engine) : IAsyncLifetime
{
    private TestHomeserver _server = null!;

    public async ValueTask InitializeAsync() => _server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    private static Task<MatrixClient.Response> UpgradeAsync(MatrixClient c, string roomId, JsonObject body) =>
        c.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/upgrade", body);

    private static async Task<JsonObject?> StateAsync(MatrixClient c, string roomId, string type, string stateKey = "")
    {
        var r = await c.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/state/{Uri.EscapeDataString(type)}/{Uri.EscapeDataString(stateKey)}");
        return r.Status == HttpStatusCode.NotFound ? null : r.Ok();
    }

    [Theory]
    [InlineData("10", "11")]
    [InlineData("11", "12")]
    [InlineData("12", "12")]
    [InlineData("12", "10")]
    public async Task UpgradeCopiesStateMovesAliasesAndRetiresTheOldRoom(string from, string to)
    {
        var suffix = from + "to" + to;
        var alice = await _server.RegisterAsync("alice" + suffix);
        var bob = await _server.RegisterAsync("bob" + suffix);
        var carol = await _server.RegisterAsync("carol" + suffix);
        var dave = await _server.RegisterAsync("dave" + suffix);
        var alias = $"#up{suffix}:test.local";
        var oldRoom = await alice.CreateRoomAsync(new JsonObject
        {
            ["room_version"] = from,
            ["preset"] = "public_chat",
            ["visibility"] = "public",
            ["name"] = "Old name",
            ["topic"] = "Old topic",
            ["room_alias_name"] = "up" + suffix,
            ["creation_content"] = new JsonObject { ["type"] = "org.example.kind" },
            ["initial_state"] = new JsonArray(
                new JsonObject { ["type"] = "m.room.avatar", ["content"] = new JsonObject { ["url"] = "mxc://test.local/avatar" } },
                new JsonObject { ["type"] = "m.room.encryption", ["content"] = new JsonObject { ["algorithm"] = "m.megolm.v1.aes-sha2" } },
                new JsonObject { ["type"] = "m.room.server_acl", ["content"] = new JsonObject { ["allow"] = new JsonArray("*"), ["deny"] = new JsonArray("evil.example"), ["allow_ip_literals"] = false } },
                new JsonObject { ["type"] = "org.example.custom", ["content"] = new JsonObject { ["sender_sensitive"] = true } }),
        });
        await bob.JoinAsync(oldRoom);
        await dave.JoinAsync(oldRoom);
        await carol.JoinAsync(oldRoom);
        (await alice.PostAsync($"/_matrix/client/v3/rooms/{oldRoom}/ban", new JsonObject { ["user_id"] = carol.UserId, ["reason"] = "spam" })).Ok();
        var levels = (await StateAsync(alice, oldRoom, "m.room.power_levels"))!;
        levels["users"]![bob.UserId] = 50;
        (await alice.SetStateAsync(oldRoom, "m.room.power_levels", levels)).Ok();
        await alice.SetHistoryVisibilityAsync(oldRoom, "joined");
        (await alice.PutAsync($"/_matrix/client/v3/user/{Uri.EscapeDataString(alice.UserId)}/rooms/{oldRoom}/tags/u.work", new JsonObject { ["order"] = 0.5 })).Ok();
        var lastOld = await alice.SendTextAsync(oldRoom, "last words");

        var newRoom = (await UpgradeAsync(alice, oldRoom, new JsonObject { ["new_version"] = to })).Ok()["replacement_room"]!.GetValue<string>();
        Assert.NotEqual(oldRoom, newRoom);

        // The new room points back at the old one and keeps its type.
        var create = (await StateAsync(alice, newRoom, "m.room.create"))!;
        Assert.Equal(to, create["room_version"]!.GetValue<string>());
        Assert.Equal(oldRoom, create["predecessor"]!["room_id"]!.GetValue<string>());
        Assert.Equal(lastOld, create["predecessor"]!["event_id"]!.GetValue<string>());
        Assert.Equal("org.example.kind", create["type"]!.GetValue<string>());

        // Transferable state is copied; sender-sensitive custom state is not.
        Assert.Equal("Old name", (await StateAsync(alice, newRoom, "m.room.name"))!["name"]!.GetValue<string>());
        Assert.Equal("Old topic", (await StateAsync(alice, newRoom, "m.room.topic"))!["topic"]!.GetValue<string>());
        Assert.Equal("public", (await StateAsync(alice, newRoom, "m.room.join_rules"))!["join_rule"]!.GetValue<string>());
        Assert.Equal("joined", (await StateAsync(alice, newRoom, "m.room.history_visibility"))!["history_visibility"]!.GetValue<string>());
        Assert.Equal("mxc://test.local/avatar", (await StateAsync(alice, newRoom, "m.room.avatar"))!["url"]!.GetValue<string>());
        Assert.Equal("m.megolm.v1.aes-sha2", (await StateAsync(alice, newRoom, "m.room.encryption"))!["algorithm"]!.GetValue<string>());
        Assert.Equal("evil.example", (await StateAsync(alice, newRoom, "m.room.server_acl"))!["deny"]![0]!.GetValue<string>());
        Assert.Null(await StateAsync(alice, newRoom, "org.example.custom"));
        Assert.Equal("ban", (await StateAsync(alice, newRoom, "m.room.member", carol.UserId))!["membership"]!.GetValue<string>());

        // Power levels: bob keeps his 50; alice keeps her power (listed before v12, implicit as creator in v12).
        var newLevels = (await StateAsync(alice, newRoom, "m.room.power_levels"))!;
        Assert.Equal(50, newLevels["users"]![bob.UserId]!.GetValue<long>());
        if (to == "12")
        {
            Assert.Null(newLevels["users"]![alice.UserId]);
        }
        else
        {
            Assert.True(newLevels["users"]![alice.UserId]!.GetValue<long>() >= 100);
        }

        // The old room is tombstoned, and ordinary members can no longer speak or invite there.
        var tombstone = (await StateAsync(bob, oldRoom, "m.room.tombstone"))!;
        Assert.Equal(newRoom, tombstone["replacement_room"]!.GetValue<string>());
        var oldLevels = (await StateAsync(alice, oldRoom, "m.room.power_levels"))!;
        Assert.Equal(50, oldLevels["events_default"]!.GetValue<long>());
        Assert.Equal(50, oldLevels["invite"]!.GetValue<long>());
        (await dave.SendEventAsync(oldRoom, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "hello?" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        await bob.SendTextAsync(oldRoom, "moderators still can");

        // The alias now leads to the new room, with the canonical alias moved across.
        Assert.Equal(newRoom, (await _server.Host.Services.RoomStore.GetAliasAsync(alias))!.Value.RoomId);
        Assert.Equal(alias, (await StateAsync(alice, newRoom, "m.room.canonical_alias"))!["alias"]!.GetValue<string>());
        Assert.Null((await StateAsync(alice, oldRoom, "m.room.canonical_alias"))!["alias"]);
        await dave.JoinAsync(alias);
        Assert.Contains(newRoom, (await dave.GetAsync("/_matrix/client/v3/joined_rooms")).Ok()["joined_rooms"]!.AsArray().Select(r => r!.GetValue<string>()));

        // The directory lists the new room instead of the old one, and alice's tag followed her.
        var published = await _server.Host.Services.RoomStore.PublicRoomsAsync();
        Assert.Contains(newRoom, published);
        Assert.DoesNotContain(oldRoom, published);
        var tags = (await alice.GetAsync($"/_matrix/client/v3/user/{Uri.EscapeDataString(alice.UserId)}/rooms/{newRoom}/tags")).Ok();
        Assert.NotNull(tags["tags"]!["u.work"]);
    }

    [Fact]
    public async Task OnlyUsersWhoMayTombstoneCanUpgrade()
    {
        var alice = await _server.RegisterAsync("admin");
        var bob = await _server.RegisterAsync("member");
        var outsider = await _server.RegisterAsync("nonmember");
        var roomId = await alice.CreatePublicRoomAsync();
        await bob.JoinAsync(roomId);

        (await UpgradeAsync(bob, roomId, new JsonObject { ["new_version"] = "11" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await UpgradeAsync(outsider, roomId, new JsonObject { ["new_version"] = "11" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await UpgradeAsync(alice, "!missing:test.local", new JsonObject { ["new_version"] = "11" })).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await UpgradeAsync(alice, roomId, new JsonObject { ["new_version"] = "99" })).Error(HttpStatusCode.BadRequest, "M_UNSUPPORTED_ROOM_VERSION");
        (await UpgradeAsync(alice, roomId, new JsonObject())).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await UpgradeAsync(alice, roomId, new JsonObject { ["new_version"] = 11 })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await UpgradeAsync(alice, roomId, new JsonObject { ["new_version"] = "12", ["additional_creators"] = new JsonArray("nobody") })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        Assert.Null(await StateAsync(alice, roomId, "m.room.tombstone"));

        // Once the tombstone needs less power, bob may upgrade; he gets enough power to copy the state over, then
        // his own level back.
        var levels = (await StateAsync(alice, roomId, "m.room.power_levels"))!;
        levels["users"]![bob.UserId] = 50;
        levels["events"]!["m.room.tombstone"] = 50;
        (await alice.SetStateAsync(roomId, "m.room.power_levels", levels)).Ok();
        await alice.SetHistoryVisibilityAsync(roomId, "invited");
        var newRoom = (await UpgradeAsync(bob, roomId, new JsonObject { ["new_version"] = "11" })).Ok()["replacement_room"]!.GetValue<string>();
        Assert.Equal("invited", (await StateAsync(bob, newRoom, "m.room.history_visibility"))!["history_visibility"]!.GetValue<string>());
        var newLevels = (await StateAsync(bob, newRoom, "m.room.power_levels"))!;
        Assert.Equal(50, newLevels["users"]![bob.UserId]!.GetValue<long>());
        Assert.Equal(100, newLevels["users"]![alice.UserId]!.GetValue<long>());
        Assert.Equal(newRoom, (await StateAsync(alice, roomId, "m.room.tombstone"))!["replacement_room"]!.GetValue<string>());
    }

    [Fact]
    public async Task UpgradeToVersion12NamesTheRequestedCreators()
    {
        var alice = await _server.RegisterAsync("founder");
        var bob = await _server.RegisterAsync("cofounder");
        var roomId = await alice.CreatePublicRoomAsync();
        await bob.JoinAsync(roomId);
        var levels = (await StateAsync(alice, roomId, "m.room.power_levels"))!;
        levels["users"]![bob.UserId] = 100;
        (await alice.SetStateAsync(roomId, "m.room.power_levels", levels)).Ok();

        var newRoom = (await UpgradeAsync(alice, roomId, new JsonObject { ["new_version"] = "12", ["additional_creators"] = new JsonArray(bob.UserId) })).Ok()["replacement_room"]!.GetValue<string>();
        var create = (await StateAsync(alice, newRoom, "m.room.create"))!;
        Assert.Equal([bob.UserId], create["additional_creators"]!.AsArray().Select(u => u!.GetValue<string>()));
        // Creators are not listed in a v12 room's power levels.
        var newLevels = (await StateAsync(alice, newRoom, "m.room.power_levels"))!;
        Assert.Null(newLevels["users"]![alice.UserId]);
        Assert.Null(newLevels["users"]![bob.UserId]);
        // Bob joins and, as a creator, can change anything.
        await bob.JoinAsync(newRoom);
        (await bob.SetStateAsync(newRoom, "m.room.name", new JsonObject { ["name"] = "Ours" })).Ok();
    }
}

public sealed class SqliteRoomUpgradeTests() : RoomUpgradeTests(DatabaseEngine.Sqlite);

public sealed class PostgresRoomUpgradeTests() : RoomUpgradeTests(DatabaseEngine.Postgres);
