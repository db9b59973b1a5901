using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Privacy;

/// <summary>Whole rooms leave the server: forgotten by every local member, or deleted by an admin.</summary>
public abstract class RoomPurgeTests(DatabaseEngine engine)
{
    private static readonly TimeSpan Day = TimeSpan.FromDays(1);

    private async Task<bool> StoredAnywhereAsync(TestHomeserver server, string roomId, string marker)
    {
        var rows = await server.Host.Database.ReadAsync(async c =>
            await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM events WHERE room_id = @roomId", new { roomId })
            + await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM current_state WHERE room_id = @roomId", new { roomId })
            + await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM rooms WHERE room_id = @roomId", new { roomId }));
        if (rows > 0)
        {
            return true;
        }

        if (engine == DatabaseEngine.Sqlite)
        {
            var all = new StringBuilder();
            foreach (var file in Directory.GetFiles(server.Dir, "*", SearchOption.AllDirectories))
            {
                all.Append(Encoding.UTF8.GetString(await File.ReadAllBytesAsync(file)));
            }

            return all.ToString().Contains(marker, StringComparison.Ordinal);
        }

        return false;
    }

    [Fact]
    public async Task ARoomEveryLocalMemberForgotIsDeletedAfterThePeriod()
    {
        var clock = new TestClock();
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + "forgotten_room_retention_period: 7d\n", clock: clock);
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var root = server.NewClient();
        await root.LoginAsync("root");
        async Task<long> GcAsync() => (await root.PostAsync("/_lethe/admin/v1/privacy/gc", new JsonObject())).Ok()["forgotten_rooms_purged"]!.GetValue<long>();

        var marker = $"zq-forgotten-{Guid.NewGuid():N}";
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["name"] = marker, ["room_alias_name"] = "forgotten" });
        await bob.JoinAsync(roomId);
        await alice.SendTextAsync(roomId, marker);
        var kept = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await alice.SendTextAsync(kept, "this room stays");

        (await alice.PostAsync($"/_matrix/client/v3/rooms/{roomId}/leave", new JsonObject())).Ok();
        (await alice.PostAsync($"/_matrix/client/v3/rooms/{roomId}/forget", new JsonObject())).Ok();
        clock.Advance(Day * 8);
        Assert.Equal(0, await GcAsync());

        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/leave", new JsonObject())).Ok();
        clock.Advance(Day * 8);
        Assert.Equal(0, await GcAsync());
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/forget", new JsonObject())).Ok();
        clock.Advance(Day * 6);
        Assert.Equal(0, await GcAsync());
        Assert.True(await StoredAnywhereAsync(server, roomId, marker));

        clock.Advance(Day * 2);
        Assert.Equal(1, await GcAsync());
        Assert.False(await StoredAnywhereAsync(server, roomId, marker));

        // The other room and everyone's sync are unaffected; the deleted room is simply unknown now.
        Assert.Equal(["this room stays"], (await alice.GetAsync($"/_matrix/client/v3/rooms/{kept}/messages?dir=b&limit=10")).Ok()["chunk"]!.AsArray()
            .Where(e => e!["type"]!.GetValue<string>() == "m.room.message").Select(e => e!["content"]!["body"]!.GetValue<string>()));
        await bob.SyncAsync();
        await alice.SyncAsync(filter: """{"room":{"include_leave":true}}""");
        (await bob.PostAsync($"/_matrix/client/v3/join/{Uri.EscapeDataString(roomId)}", new JsonObject())).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await bob.GetAsync("/_matrix/client/v3/directory/room/%23forgotten:test.local")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }

    [Fact]
    public async Task AnAdminCanDeleteARoom()
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var root = server.NewClient();
        await root.LoginAsync("root");
        var marker = $"zq-deleted-{Guid.NewGuid():N}";
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        await bob.SendTextAsync(roomId, marker);
        var since = (await bob.SyncAsync())["next_batch"]!.GetValue<string>();

        (await root.DeleteAsync("/_synapse/admin/v2/rooms/!nope:test.local", new JsonObject())).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await root.DeleteAsync($"/_synapse/admin/v2/rooms/{roomId}", new JsonObject { ["block"] = true })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await bob.DeleteAsync($"/_synapse/admin/v2/rooms/{roomId}", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        var deleteId = (await root.DeleteAsync($"/_synapse/admin/v2/rooms/{roomId}", new JsonObject { ["purge"] = true })).Ok()["delete_id"]!.GetValue<string>();
        await Poll.UntilAsync(
            async () => (await root.GetAsync("/_synapse/admin/v2/rooms/delete_status/" + deleteId)).Ok()["status"]!.GetValue<string>() == "complete",
            TimeSpan.FromSeconds(30), "the room deletion to complete");

        Assert.False(await StoredAnywhereAsync(server, roomId, marker));
        (await root.GetAsync("/_synapse/admin/v1/rooms/" + roomId)).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        Assert.Equal(deleteId, (await root.GetAsync($"/_synapse/admin/v2/rooms/{roomId}/delete_status")).Ok()["results"]![0]!["delete_id"]!.GetValue<string>());
        var sync = await bob.SyncAsync(since);
        Assert.Null(sync["rooms"]?["join"]?[roomId]);
        await alice.SyncAsync();
        Assert.Empty((await bob.GetAsync("/_matrix/client/v3/joined_rooms")).Ok()["joined_rooms"]!.AsArray());
    }
}

public sealed class SqliteRoomPurgeTests() : RoomPurgeTests(DatabaseEngine.Sqlite);

public sealed class PostgresRoomPurgeTests() : RoomPurgeTests(DatabaseEngine.Postgres);
