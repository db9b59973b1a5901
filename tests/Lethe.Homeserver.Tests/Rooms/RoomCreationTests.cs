using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Rooms;

/// <summary>The createRoom options that shape a new room: power level overrides, presets, direct chats, initial state, creation content.</summary>
public abstract class RoomCreationTests(DatabaseEngine engine) : IAsyncLifetime
{
    protected TestHomeserver Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    [Fact]
    public async Task APowerLevelOverrideWinsOverThePresetAndItsLevelsAreEnforced()
    {
        var alice = await Server.RegisterAsync("alice");
        var bob = await Server.RegisterAsync("bob");
        var carol = await Server.RegisterAsync("carol");
        var roomId = await alice.CreateRoomAsync(new JsonObject
        {
            ["preset"] = "public_chat",
            ["power_level_content_override"] = new JsonObject
            {
                ["users"] = new JsonObject { [alice.UserId] = 100, [bob.UserId] = 100 },
                ["events_default"] = 10,
                ["events"] = new JsonObject { ["m.room.name"] = 100, ["m.room.power_levels"] = 100 },
            },
        });
        var levels = await StateAsync(alice, roomId, "m.room.power_levels");
        Assert.Equal(10, levels["events_default"]!.GetValue<int>());
        Assert.Equal(100, levels["events"]!["m.room.name"]!.GetValue<int>());
        Assert.Equal(100, levels["users"]![bob.UserId]!.GetValue<int>());
        Assert.Equal(50, levels["ban"]!.GetValue<int>());

        await bob.JoinAsync(roomId);
        await carol.JoinAsync(roomId);

        // Carol, at level 0, may no longer talk or rename; Bob, given 100, can do what an admin does.
        (await carol.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "hi" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await carol.SetStateAsync(roomId, "m.room.name", new JsonObject { ["name"] = "Carol's" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await bob.SetStateAsync(roomId, "m.room.name", new JsonObject { ["name"] = "Bob's" })).Ok();
        levels["users"]![carol.UserId] = 10;
        (await bob.SetStateAsync(roomId, "m.room.power_levels", levels)).Ok();
        await carol.SendTextAsync(roomId, "now I may");
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/ban", new JsonObject { ["user_id"] = carol.UserId })).Ok();
        (await carol.PostAsync($"/_matrix/client/v3/join/{Uri.EscapeDataString(roomId)}", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
    }

    [Fact]
    public async Task AnInvalidPowerLevelOverrideIsRefusedBeforeAnyRoomExists()
    {
        var alice = await Server.RegisterAsync("dora");
        var bob = await Server.RegisterAsync("ed");
        var cases = new (JsonNode Override, string Version, string ErrCode)[]
        {
            (new JsonObject { ["ban"] = "fifty" }, "11", "M_BAD_JSON"),
            (new JsonObject { ["events"] = new JsonObject { ["m.room.name"] = true } }, "11", "M_BAD_JSON"),
            (new JsonObject { ["users"] = new JsonObject { ["not a user"] = 100 } }, "11", "M_BAD_JSON"),
            (new JsonObject { ["users"] = new JsonArray() }, "11", "M_BAD_JSON"),
            (5, "11", "M_BAD_JSON"),
            // The creator left out (level 0) could not even set the join rules.
            (new JsonObject { ["users"] = new JsonObject { [bob.UserId] = 100 } }, "11", "M_INVALID_PARAM"),
            (new JsonObject { ["state_default"] = 101 }, "11", "M_INVALID_PARAM"),
            (new JsonObject { ["invite"] = 101 }, "11", "M_INVALID_PARAM"),
            // Room version 12 creators are above all levels and may not be listed.
            (new JsonObject { ["users"] = new JsonObject { [alice.UserId] = 100 } }, "12", "M_INVALID_PARAM"),
        };
        foreach (var (levels, version, errcode) in cases)
        {
            var response = await alice.PostAsync("/_matrix/client/v3/createRoom", new JsonObject
            {
                ["room_version"] = version,
                ["invite"] = new JsonArray(bob.UserId),
                ["power_level_content_override"] = levels.DeepClone(),
            });
            Assert.True(response.Status == HttpStatusCode.BadRequest && response.ErrCode == errcode, $"{levels.ToJsonString()} in v{version}: {(int)response.Status} {response.Body.ToJsonString()}");
        }

        Assert.Empty((await alice.GetAsync("/_matrix/client/v3/joined_rooms")).Ok()["joined_rooms"]!.AsArray());
        Assert.Empty((await bob.SyncAsync())["rooms"]!["invite"]!.AsObject());

        // In older versions a users map that keeps the creator is fine.
        await alice.CreateRoomAsync(new JsonObject { ["room_version"] = "9", ["power_level_content_override"] = new JsonObject { ["users"] = new JsonObject { [alice.UserId] = 100, [bob.UserId] = 50 } } });
    }

    [Fact]
    public async Task TrustedPrivateChatGivesInviteesTheCreatorsPower()
    {
        var alice = await Server.RegisterAsync("fay");
        var bob = await Server.RegisterAsync("gus");
        var carol = await Server.RegisterAsync("hal");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "trusted_private_chat", ["invite"] = new JsonArray(bob.UserId), ["room_version"] = "11" });
        var levels = await StateAsync(alice, roomId, "m.room.power_levels");
        Assert.Equal(100, levels["users"]![alice.UserId]!.GetValue<int>());
        Assert.Equal(100, levels["users"]![bob.UserId]!.GetValue<int>());
        Assert.Equal("invite", (await StateAsync(alice, roomId, "m.room.join_rules"))["join_rule"]!.GetValue<string>());

        await bob.JoinAsync(roomId);
        // Bob can do what only admins may: invite, then change the history visibility (level 100).
        await bob.InviteAsync(roomId, carol.UserId);
        (await bob.SetStateAsync(roomId, "m.room.history_visibility", new JsonObject { ["history_visibility"] = "joined" })).Ok();

        // In room version 12 the invitees become creators alongside the creator.
        var v12 = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "trusted_private_chat", ["invite"] = new JsonArray(bob.UserId), ["room_version"] = "12" });
        var create = await StateAsync(alice, v12, "m.room.create");
        Assert.Equal([bob.UserId], create["additional_creators"]!.AsArray().Select(u => u!.GetValue<string>()));
        await bob.JoinAsync(v12);
        (await bob.SetStateAsync(v12, "m.room.history_visibility", new JsonObject { ["history_visibility"] = "joined" })).Ok();
    }

    [Fact]
    public async Task IsDirectMarksTheInviteSoTheInviteeSeesADirectChat()
    {
        var alice = await Server.RegisterAsync("ivy");
        var bob = await Server.RegisterAsync("jon");
        var direct = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "trusted_private_chat", ["is_direct"] = true, ["invite"] = new JsonArray(bob.UserId) });
        var group = await alice.CreateRoomAsync(new JsonObject { ["invite"] = new JsonArray(bob.UserId) });

        var invites = (await bob.SyncAsync())["rooms"]!["invite"]!.AsObject();
        JsonObject InviteOf(string roomId) => invites[roomId]!["invite_state"]!["events"]!.AsArray()
            .Single(e => e!["type"]!.GetValue<string>() == "m.room.member" && e["state_key"]!.GetValue<string>() == bob.UserId)!["content"]!.AsObject();
        Assert.Equal("invite", InviteOf(direct)["membership"]!.GetValue<string>());
        Assert.True(InviteOf(direct)["is_direct"]!.GetValue<bool>());
        Assert.Null(InviteOf(group)["is_direct"]);
        Assert.True((await StateAsync(alice, direct, "m.room.member", bob.UserId))["is_direct"]!.GetValue<bool>());
    }

    [Fact]
    public async Task InitialStateReplacesThePresetsStateAndNameAndTopicReplaceInitialState()
    {
        var alice = await Server.RegisterAsync("kim");
        var bob = await Server.RegisterAsync("lou");
        var roomId = await alice.CreateRoomAsync(new JsonObject
        {
            ["preset"] = "private_chat",
            ["name"] = "From name",
            ["initial_state"] = new JsonArray(
                new JsonObject { ["type"] = "m.room.join_rules", ["content"] = new JsonObject { ["join_rule"] = "public" } },
                new JsonObject { ["type"] = "m.room.history_visibility", ["state_key"] = "", ["content"] = new JsonObject { ["history_visibility"] = "world_readable" } },
                new JsonObject { ["type"] = "m.room.name", ["content"] = new JsonObject { ["name"] = "From initial_state" } },
                new JsonObject { ["type"] = "org.example.setting", ["state_key"] = "colour", ["content"] = new JsonObject { ["value"] = "teal" } }),
        });

        // private_chat would make it invite-only; initial_state made it public, so Bob joins uninvited.
        await bob.JoinAsync(roomId);
        Assert.Equal("world_readable", (await StateAsync(bob, roomId, "m.room.history_visibility"))["history_visibility"]!.GetValue<string>());
        Assert.Equal("teal", (await StateAsync(bob, roomId, "org.example.setting", "colour"))["value"]!.GetValue<string>());
        Assert.Equal("From name", (await StateAsync(bob, roomId, "m.room.name"))["name"]!.GetValue<string>());

        // The preset's own join rules and history visibility were never sent; guest access, not overridden, was.
        var history = (await alice.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/messages?dir=b&limit=50")).Ok()["chunk"]!.AsArray();
        var types = history.Select(e => e!["type"]!.GetValue<string>()).ToList();
        Assert.Equal(1, types.Count(t => t == "m.room.join_rules"));
        Assert.Equal(1, types.Count(t => t == "m.room.history_visibility"));
        Assert.Equal("can_join", (await StateAsync(alice, roomId, "m.room.guest_access"))["guest_access"]!.GetValue<string>());
    }

    [Fact]
    public async Task APowerLevelsEventInInitialStateReplacesTheGeneratedOne()
    {
        var alice = await Server.RegisterAsync("nia");
        var bob = await Server.RegisterAsync("oli");
        var carol = await Server.RegisterAsync("pam");
        var levels = new JsonObject
        {
            ["users"] = new JsonObject { [alice.UserId] = 100, [bob.UserId] = 30 },
            ["events_default"] = 20,
            ["state_default"] = 60,
            ["invite"] = 0,
        };
        var roomId = await alice.CreateRoomAsync(new JsonObject
        {
            ["preset"] = "public_chat",
            ["name"] = "Levels from initial_state",
            ["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.power_levels", ["state_key"] = "", ["content"] = levels.DeepClone() }),
        });
        Assert.True(JsonNode.DeepEquals(levels, await StateAsync(alice, roomId, "m.room.power_levels")));
        await bob.JoinAsync(roomId);
        await carol.JoinAsync(roomId);
        await bob.SendTextAsync(roomId, "level 30 may talk");
        (await carol.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "level 0 may not" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await bob.SetStateAsync(roomId, "m.room.topic", new JsonObject { ["topic"] = "state needs 60" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
    }

    [Fact]
    public async Task PowerLevelsInInitialStateThatWouldStopTheRoomBeingBuiltAreRefusedBeforeAnyRoomExists()
    {
        var alice = await Server.RegisterAsync("quin");
        var bob = await Server.RegisterAsync("rex");
        var cases = new (JsonObject Request, string ErrCode)[]
        {
            // The creator, left at level 0, could not then set the name it asked for.
            (new JsonObject { ["name"] = "n", ["levels"] = new JsonObject { ["users"] = new JsonObject { [bob.UserId] = 100 } } }, "M_INVALID_PARAM"),
            // ... nor invite when inviting takes 50.
            (new JsonObject { ["invite"] = new JsonArray(bob.UserId), ["levels"] = new JsonObject { ["users"] = new JsonObject { [alice.UserId] = 10 }, ["invite"] = 50 } }, "M_INVALID_PARAM"),
            // Nobody may set a level above their own, even in a new room.
            (new JsonObject { ["levels"] = new JsonObject { ["users"] = new JsonObject { [alice.UserId] = 100 }, ["ban"] = 101 } }, "M_INVALID_PARAM"),
            (new JsonObject { ["levels"] = new JsonObject { ["users"] = new JsonObject { [alice.UserId] = 100, [bob.UserId] = 150 } } }, "M_INVALID_PARAM"),
            (new JsonObject { ["levels"] = new JsonObject { ["ban"] = "lots" } }, "M_BAD_JSON"),
        };
        foreach (var (request, errcode) in cases)
        {
            var levels = request["levels"]!.DeepClone();
            request.Remove("levels");
            request["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.power_levels", ["content"] = levels });
            var response = await alice.PostAsync("/_matrix/client/v3/createRoom", request);
            Assert.True(response.Status == HttpStatusCode.BadRequest && response.ErrCode == errcode, $"{request.ToJsonString()}: {(int)response.Status} {response.Body.ToJsonString()}");
        }

        var twice = new JsonObject { ["type"] = "m.room.power_levels", ["content"] = new JsonObject() };
        (await alice.PostAsync("/_matrix/client/v3/createRoom", new JsonObject { ["initial_state"] = new JsonArray(twice.DeepClone(), twice.DeepClone()) })).Error(HttpStatusCode.BadRequest, "M_INVALID_ROOM_STATE");
        (await alice.PostAsync("/_matrix/client/v3/createRoom", new JsonObject { ["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.power_levels", ["state_key"] = "x", ["content"] = new JsonObject() }) }))
            .Error(HttpStatusCode.BadRequest, "M_INVALID_ROOM_STATE");
        Assert.Empty((await alice.GetAsync("/_matrix/client/v3/joined_rooms")).Ok()["joined_rooms"]!.AsArray());
        Assert.Empty((await bob.SyncAsync())["rooms"]!["invite"]!.AsObject());
    }

    [Fact]
    public async Task InPublicRoomsInvitingTakesAModeratorInPrivateOnesAnyMember()
    {
        var alice = await Server.RegisterAsync("sal");
        var bob = await Server.RegisterAsync("tia");
        var carol = await Server.RegisterAsync("uma");
        var publicRoom = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        Assert.Equal(50, (await StateAsync(alice, publicRoom, "m.room.power_levels"))["invite"]!.GetValue<int>());
        await bob.JoinAsync(publicRoom);
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(publicRoom)}/invite", new JsonObject { ["user_id"] = carol.UserId })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");

        var privateRoom = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "private_chat", ["invite"] = new JsonArray(bob.UserId) });
        Assert.Equal(0, (await StateAsync(alice, privateRoom, "m.room.power_levels"))["invite"]!.GetValue<int>());
        await bob.JoinAsync(privateRoom);
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(privateRoom)}/invite", new JsonObject { ["user_id"] = carol.UserId })).Ok();
    }

    [Fact]
    public async Task CreationContentAppearsInTheCreateEvent()
    {
        var alice = await Server.RegisterAsync("max");
        var roomId = await alice.CreateRoomAsync(new JsonObject
        {
            ["creation_content"] = new JsonObject { ["m.federate"] = false, ["type"] = "m.space", ["room_version"] = "1" },
        });
        var create = await StateAsync(alice, roomId, "m.room.create");
        Assert.False(create["m.federate"]!.GetValue<bool>());
        Assert.Equal("m.space", create["type"]!.GetValue<string>());
        // room_version comes from the request's room_version (default 11), not from creation_content.
        Assert.Equal("11", create["room_version"]!.GetValue<string>());
        (await alice.PostAsync("/_matrix/client/v3/createRoom", new JsonObject { ["creation_content"] = "m.federate" })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
    }

    private static async Task<JsonObject> StateAsync(MatrixClient c, string roomId, string type, string stateKey = "") =>
        (await c.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/state/{Uri.EscapeDataString(type)}/{Uri.EscapeDataString(stateKey)}")).Ok();
}

public sealed class SqliteRoomCreationTests() : RoomCreationTests(DatabaseEngine.Sqlite);

public sealed class PostgresRoomCreationTests() : RoomCreationTests(DatabaseEngine.Postgres);
