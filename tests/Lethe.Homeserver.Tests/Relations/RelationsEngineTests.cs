using System.Text.Json.Nodes;
using Lethe.Homeserver.Relations;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;
using Lethe.Tests.Shared;

namespace Lethe.Homeserver.Tests.Relations;

/// <summary>Every new query (recursive relations, thread windows, participation, time scans, reports, alias moves) on both database engines.</summary>
public abstract class RelationsEngineTests(DatabaseEngine engine) : IAsyncLifetime
{
    private TestHomeserver _server = null!;

    public async ValueTask InitializeAsync() => _server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task RelationsThreadsEditsAndReferences()
    {
        var alice = await _server.RegisterAsync("alice");
        var bob = await _server.RegisterAsync("bob");
        var roomId = await alice.CreatePublicRoomAsync();
        await bob.JoinAsync(roomId);
        var root = await alice.SendTextAsync(roomId, "root");
        var replies = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            replies.Add(await (i % 2 == 0 ? bob : alice).ReplyInThreadAsync(roomId, root, "r" + i));
        }

        var reaction = await bob.ReactAsync(roomId, replies[0], "+1");
        var edit = await alice.EditAsync(roomId, root, "root, edited");
        var reference = await bob.ReferenceAsync(roomId, root);
        var other = await bob.SendTextAsync(roomId, "other thread");
        await bob.ReplyInThreadAsync(roomId, other, "o1");

        var served = await bob.EventAsync(roomId, root);
        var relations = served.Relations()!;
        Assert.Equal(4, relations["m.thread"]!["count"]!.GetValue<long>());
        Assert.Equal(replies[3], relations["m.thread"]!["latest_event"]!["event_id"]!.GetValue<string>());
        Assert.True(relations["m.thread"]!["current_user_participated"]!.GetValue<bool>());
        Assert.Equal(edit, relations["m.replace"]!["event_id"]!.GetValue<string>());
        Assert.Equal(reference, relations["m.reference"]!["chunk"]![0]!["event_id"]!.GetValue<string>());

        var page = (await bob.RelationsAsync(roomId, root, "/m.thread", "limit=3")).Ok();
        Assert.Equal([replies[3], replies[2], replies[1]], page["chunk"].Ids());
        var rest = (await bob.RelationsAsync(roomId, root, "/m.thread", "limit=3&from=" + Uri.EscapeDataString(page["next_batch"]!.GetValue<string>()))).Ok();
        Assert.Equal([replies[0]], rest["chunk"].Ids());
        Assert.Contains(reaction, (await bob.RelationsAsync(roomId, root, "", "recurse=true&limit=50")).Ok()["chunk"].Ids());

        var threads = (await alice.GetAsync($"/_matrix/client/v1/rooms/{roomId}/threads")).Ok();
        Assert.Equal([other, root], threads["chunk"].Ids());
        Assert.Equal([root], (await alice.GetAsync($"/_matrix/client/v1/rooms/{roomId}/threads?include=participated")).Ok()["chunk"].Ids());

        var hs = _server.Host.Services;
        var store = new RelationStore(hs.Database);
        Assert.True(await store.HasAnnotatedAsync(replies[0], "m.reaction", "+1", bob.UserId));
        Assert.True(await store.IsRelationTargetAsync(root));
        await Assert.ThrowsAsync<Lethe.Homeserver.Http.MatrixException>(() => RelationRules.ValidateAsync(
            hs, roomId, bob.UserId, "m.reaction", new JsonObject { ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.annotation", ["event_id"] = replies[0], ["key"] = "+1" } }, CancellationToken.None));
    }

    [Fact]
    public async Task TimestampsReportsAndUpgrades()
    {
        var alice = await _server.RegisterAsync("carol");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["room_alias_name"] = "engine", ["visibility"] = "public" });
        await Task.Delay(15);
        var message = await alice.SendTextAsync(roomId, "when?");
        var ts = (await alice.EventAsync(roomId, message))["origin_server_ts"]!.GetValue<long>();
        Assert.Equal(message, (await alice.GetAsync($"/_matrix/client/v1/rooms/{roomId}/timestamp_to_event?ts={ts}&dir=f")).Ok()["event_id"]!.GetValue<string>());
        Assert.Equal(message, (await alice.GetAsync($"/_matrix/client/v1/rooms/{roomId}/timestamp_to_event?ts={ts + 1000}&dir=b")).Ok()["event_id"]!.GetValue<string>());

        (await alice.PostAsync($"/_matrix/client/v3/rooms/{roomId}/report/{message}", new JsonObject { ["reason"] = "testing", ["score"] = -50 })).Ok();
        (await alice.PostAsync($"/_matrix/client/v3/rooms/{roomId}/report", new JsonObject { ["reason"] = "whole room" })).Ok();
        var reports = await new ReportStore(_server.Host.Database).ListAsync(10);
        Assert.Equal(["whole room", "testing"], reports.Select(r => r.Reason));
        Assert.True(reports[0].Id > reports[1].Id);

        var newRoom = (await alice.PostAsync($"/_matrix/client/v3/rooms/{roomId}/upgrade", new JsonObject { ["new_version"] = "12" })).Ok()["replacement_room"]!.GetValue<string>();
        Assert.Equal(newRoom, (await _server.Host.Services.RoomStore.GetAliasAsync("#engine:test.local"))!.Value.RoomId);
        Assert.Equal([newRoom], await _server.Host.Services.RoomStore.PublicRoomsAsync());
    }
}

/// <summary>On SQLite.</summary>
public sealed class SqliteRelationsEngineTests() : RelationsEngineTests(DatabaseEngine.Sqlite);

/// <summary>On PostgreSQL.</summary>
public sealed class PostgresRelationsEngineTests() : RelationsEngineTests(DatabaseEngine.Postgres);
