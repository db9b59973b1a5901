using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Relations;

/// <summary>Edits (m.replace): which edit is bundled, which are not, and that the original content is never replaced.</summary>
public abstract class EditTests(DatabaseEngine engine) : IAsyncLifetime
{
    private TestHomeserver _server = null!;

    public async ValueTask InitializeAsync() => _server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task LatestEditIsBundledAndOriginalContentIsUnchanged()
    {
        var alice = await _server.RegisterAsync("alice");
        var bob = await _server.RegisterAsync("bob");
        var roomId = await alice.CreatePublicRoomAsync();
        await bob.JoinAsync(roomId);
        var original = await alice.SendTextAsync(roomId, "helo");
        var first = await alice.EditAsync(roomId, original, "hello");
        // The spec orders edits by origin_server_ts, then by event ID: two edits in the same millisecond would make
        // "latest" a coin toss, so the second is sent once the clock has moved past the first.
        var firstTs = (await bob.EventAsync(roomId, first))["origin_server_ts"]!.GetValue<long>();
        await Poll.UntilAsync(() => Task.FromResult(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() > firstTs), TimeSpan.FromSeconds(5), "the clock passes the first edit's timestamp");
        var latest = await alice.EditAsync(roomId, original, "hello world");

        void AssertBundled(JsonNode served)
        {
            Assert.Equal("helo", served["content"]!["body"]!.GetValue<string>());
            var edit = served.Relations()!["m.replace"]!;
            Assert.Equal(latest, edit["event_id"]!.GetValue<string>());
            Assert.Equal("hello world", edit["content"]!["m.new_content"]!["body"]!.GetValue<string>());
            Assert.Equal(alice.UserId, edit["sender"]!.GetValue<string>());
            Assert.Equal("m.room.message", edit["type"]!.GetValue<string>());
            Assert.NotNull(edit["origin_server_ts"]);
        }

        AssertBundled(await bob.EventAsync(roomId, original));
        var messages = (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=10")).Ok();
        AssertBundled(messages["chunk"]!.Find(original));
        var sync = await bob.SyncAsync();
        AssertBundled(sync.Timeline(roomId).Find(original));

        // The edits themselves get no aggregations, and all of them stay listed under /relations.
        Assert.Null(messages["chunk"]!.Find(latest).Relations());
        Assert.Equal(2, (await bob.RelationsAsync(roomId, original, "/m.replace")).Ok()["chunk"]!.AsArray().Count);
    }

    [Fact]
    public async Task EditsThatBreakTheRulesAreNotBundled()
    {
        var alice = await _server.RegisterAsync("author");
        var mallory = await _server.RegisterAsync("mallory");
        var roomId = await alice.CreatePublicRoomAsync();
        await mallory.JoinAsync(roomId);
        var original = await alice.SendTextAsync(roomId, "my words");

        // Another sender's edit, an edit of another event type, and an edit without m.new_content.
        await mallory.EditAsync(roomId, original, "words put in alice's mouth");
        await alice.EditAsync(roomId, original, "as a notice", type: "m.room.notice");
        (await alice.SendEventAsync(roomId, "m.room.message", new JsonObject
        {
            ["msgtype"] = "m.text",
            ["body"] = "* no new content",
            ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.replace", ["event_id"] = original },
        })).Ok();

        var served = await alice.EventAsync(roomId, original);
        Assert.Null(served.Relations());
        Assert.Equal("my words", served["content"]!["body"]!.GetValue<string>());
        // They are still children of the event, for clients that want to see them.
        Assert.Equal(3, (await alice.RelationsAsync(roomId, original, "/m.replace")).Ok()["chunk"]!.AsArray().Count);

        // A state event cannot be edited.
        var name = (await alice.SetStateAsync(roomId, "m.room.name", new JsonObject { ["name"] = "Room" })).Ok()["event_id"]!.GetValue<string>();
        await alice.EditAsync(roomId, name, "Renamed");
        Assert.Null((await alice.EventAsync(roomId, name)).Relations());

        // An edit of an edit is not applied either.
        var valid = await alice.EditAsync(roomId, original, "my better words");
        await alice.EditAsync(roomId, valid, "edit of an edit");
        Assert.Equal(valid, (await alice.EventAsync(roomId, original)).Relations()!["m.replace"]!["event_id"]!.GetValue<string>());
        Assert.Null((await alice.EventAsync(roomId, valid)).Relations());
    }

    [Fact]
    public async Task RedactionsRevertOrRemoveEdits()
    {
        var alice = await _server.RegisterAsync("redactor");
        var roomId = await alice.CreateRoomAsync();
        var original = await alice.SendTextAsync(roomId, "v1");
        var second = await alice.EditAsync(roomId, original, "v2");
        var third = await alice.EditAsync(roomId, original, "v3");

        // Redacting the newest edit falls back to the one before.
        await alice.RedactAsync(roomId, third);
        Assert.Equal(second, (await alice.EventAsync(roomId, original)).Relations()!["m.replace"]!["event_id"]!.GetValue<string>());

        // Redacting the original drops the edits from the bundle and from /relations: they would reveal its content.
        await alice.RedactAsync(roomId, original);
        var served = await alice.EventAsync(roomId, original);
        Assert.Null(served.Relations()?["m.replace"]);
        Assert.Empty(served["content"]!.AsObject());
        Assert.Empty((await alice.RelationsAsync(roomId, original, "/m.replace")).Ok()["chunk"]!.AsArray());
    }

    [Fact]
    public async Task EditsTheReaderCannotSeeAreNotBundled()
    {
        var alice = await _server.RegisterAsync("early");
        var bob = await _server.RegisterAsync("leaver");
        var roomId = await alice.CreatePublicRoomAsync();
        await alice.SetHistoryVisibilityAsync(roomId, "joined");
        await bob.JoinAsync(roomId);
        var original = await alice.SendTextAsync(roomId, "before");
        var seen = await alice.EditAsync(roomId, original, "edited while bob is here");
        await bob.LeaveAsync(roomId);
        await alice.EditAsync(roomId, original, "edited after bob left");

        Assert.Equal(seen, (await bob.EventAsync(roomId, original)).Relations()!["m.replace"]!["event_id"]!.GetValue<string>());
        (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/$missing")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }
}

public sealed class SqliteEditTests() : EditTests(DatabaseEngine.Sqlite);

public sealed class PostgresEditTests() : EditTests(DatabaseEngine.Postgres);
