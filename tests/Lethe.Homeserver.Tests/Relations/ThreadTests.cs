using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Relations;

/// <summary>Threads: replies, the m.thread summary wherever the root is served, and GET /threads.</summary>
public abstract class ThreadTests(DatabaseEngine engine) : IAsyncLifetime
{
    private TestHomeserver _server = null!;

    public async ValueTask InitializeAsync() => _server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task RootCarriesThreadSummaryInEventMessagesContextAndSync()
    {
        var alice = await _server.RegisterAsync("alice");
        var bob = await _server.RegisterAsync("bob");
        var carol = await _server.RegisterAsync("carol");
        var roomId = await alice.CreatePublicRoomAsync();
        await bob.JoinAsync(roomId);
        await carol.JoinAsync(roomId);
        var root = await alice.SendTextAsync(roomId, "root");
        await bob.ReplyInThreadAsync(roomId, root, "first");
        await alice.ReplyInThreadAsync(roomId, root, "second");
        var last = await bob.ReplyInThreadAsync(roomId, root, "third");
        var lastEdit = await bob.EditAsync(roomId, last, "third, edited");
        await alice.SendTextAsync(roomId, "main timeline goes on");

        void AssertSummary(JsonNode served, bool participated)
        {
            var thread = served.Relations()!["m.thread"]!;
            Assert.Equal(3, thread["count"]!.GetValue<long>());
            Assert.Equal(participated, thread["current_user_participated"]!.GetValue<bool>());
            var latest = thread["latest_event"]!;
            Assert.Equal(last, latest["event_id"]!.GetValue<string>());
            Assert.Equal("third", latest["content"]!["body"]!.GetValue<string>());
            Assert.Equal(bob.UserId, latest["sender"]!.GetValue<string>());
            // The latest event comes with its own aggregations: here, its edit.
            Assert.Equal(lastEdit, latest.Relations()!["m.replace"]!["event_id"]!.GetValue<string>());
        }

        AssertSummary(await alice.EventAsync(roomId, root), participated: true);
        AssertSummary(await bob.EventAsync(roomId, root), participated: true);
        AssertSummary(await carol.EventAsync(roomId, root), participated: false);

        var messages = (await carol.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=20")).Ok();
        AssertSummary(messages["chunk"]!.Find(root), participated: false);
        // Thread replies themselves carry no thread summary.
        Assert.Null(messages["chunk"]!.Find(last).Relations()?["m.thread"]);

        var context = (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/context/{root}")).Ok();
        AssertSummary(context["event"]!, participated: true);

        var sync = await carol.SyncAsync(filter: "{\"room\":{\"timeline\":{\"limit\":20}}}");
        var inSync = sync.Timeline(roomId).Find(root);
        AssertSummary(inSync, participated: false);
        Assert.Null(inSync.Relations()!["m.thread"]!["latest_event"]!["room_id"]);

        // The thread's replies, newest first, through /relations.
        var replies = (await carol.RelationsAsync(roomId, root, "/m.thread")).Ok();
        Assert.Equal(["third", "second", "first"], replies["chunk"]!.AsArray().Bodies());
    }

    [Fact]
    public async Task SummaryLeavesOutIgnoredUsersAndHiddenReplies()
    {
        var alice = await _server.RegisterAsync("dora");
        var troll = await _server.RegisterAsync("troll");
        var roomId = await alice.CreatePublicRoomAsync();
        await troll.JoinAsync(roomId);
        var root = await alice.SendTextAsync(roomId, "root");
        var kind = await alice.ReplyInThreadAsync(roomId, root, "kind");
        for (var i = 0; i < 5; i++)
        {
            await troll.ReplyInThreadAsync(roomId, root, "spam " + i);
        }

        Assert.Equal(6, (await alice.EventAsync(roomId, root)).Relations()!["m.thread"]!["count"]!.GetValue<long>());
        await alice.IgnoreAsync(troll.UserId);
        var thread = (await alice.EventAsync(roomId, root)).Relations()!["m.thread"]!;
        Assert.Equal(1, thread["count"]!.GetValue<long>());
        // The newest replies are all from the ignored user: the latest event is found further back.
        Assert.Equal(kind, thread["latest_event"]!["event_id"]!.GetValue<string>());

        // A redacted reply leaves the thread.
        await alice.RedactAsync(roomId, kind);
        Assert.Null((await alice.EventAsync(roomId, root)).Relations()?["m.thread"]);
    }

    [Fact]
    public async Task ThreadsAreListedByLatestActivityWithParticipationFilter()
    {
        var alice = await _server.RegisterAsync("lister");
        var bob = await _server.RegisterAsync("replier");
        var roomId = await alice.CreatePublicRoomAsync();
        await bob.JoinAsync(roomId);
        var a = await alice.SendTextAsync(roomId, "thread a");
        var b = await bob.SendTextAsync(roomId, "thread b");
        var c = await bob.SendTextAsync(roomId, "thread c");
        var plain = await alice.SendTextAsync(roomId, "no thread");
        await bob.ReplyInThreadAsync(roomId, a, "a1");
        await bob.ReplyInThreadAsync(roomId, c, "c1");
        await bob.ReplyInThreadAsync(roomId, b, "b1");
        await alice.ReplyInThreadAsync(roomId, c, "c2");
        await bob.ReactAsync(roomId, plain, "not a thread");

        var url = $"/_matrix/client/v1/rooms/{roomId}/threads";
        var all = (await alice.GetAsync(url)).Ok();
        Assert.Equal([c, b, a], all["chunk"].Ids());
        Assert.Null(all["next_batch"]);
        var first = all["chunk"]!.Find(c);
        Assert.Equal(2, first.Relations()!["m.thread"]!["count"]!.GetValue<long>());
        Assert.Equal("c2", first.Relations()!["m.thread"]!["latest_event"]!["content"]!["body"]!.GetValue<string>());

        // Alice started a and replied in c; she has nothing to do with b.
        Assert.Equal([c, a], (await alice.GetAsync(url + "?include=participated")).Ok()["chunk"].Ids());
        Assert.Equal([c, b, a], (await bob.GetAsync(url + "?include=participated")).Ok()["chunk"].Ids());

        // One thread per page, no gaps, no repeats.
        var seen = new List<string>();
        string? from = null;
        for (var page = 0; page < 10; page++)
        {
            var body = (await alice.GetAsync(url + "?limit=1" + (from is null ? "" : "&from=" + Uri.EscapeDataString(from)))).Ok();
            seen.AddRange(body["chunk"].Ids());
            if (body["next_batch"] is not { } next)
            {
                break;
            }

            from = next.GetValue<string>();
        }

        Assert.Equal([c, b, a], seen);

        // New activity moves a thread to the front.
        await alice.ReplyInThreadAsync(roomId, a, "a2");
        Assert.Equal([a, c, b], (await bob.GetAsync(url)).Ok()["chunk"].Ids());
    }

    [Fact]
    public async Task ThreadListRespectsMembershipAndRejectsBadInput()
    {
        var alice = await _server.RegisterAsync("keeper");
        var bob = await _server.RegisterAsync("visitor");
        var outsider = await _server.RegisterAsync("outsider");
        var roomId = await alice.CreatePublicRoomAsync();
        await alice.SetHistoryVisibilityAsync(roomId, "joined");
        var early = await alice.SendTextAsync(roomId, "early");
        await alice.ReplyInThreadAsync(roomId, early, "early reply");
        await bob.JoinAsync(roomId);
        var late = await alice.SendTextAsync(roomId, "late");
        await alice.ReplyInThreadAsync(roomId, late, "late reply");
        await alice.ReplyInThreadAsync(roomId, early, "a reply bob can see");

        var url = $"/_matrix/client/v1/rooms/{roomId}/threads";
        // Bob cannot see the root sent before he joined, even though the thread is active now.
        Assert.Equal([early, late], (await alice.GetAsync(url)).Ok()["chunk"].Ids());
        Assert.Equal([late], (await bob.GetAsync(url)).Ok()["chunk"].Ids());

        (await outsider.GetAsync(url)).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await outsider.GetAsync($"/_matrix/client/v1/rooms/!unknown:test.local/threads")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await alice.GetAsync(url + "?include=mine")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.GetAsync(url + "?limit=0")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.GetAsync(url + "?limit=x")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.GetAsync(url + "?from=nonsense")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }

    [Fact]
    public async Task RootsFromIgnoredUsersAreListedRedacted()
    {
        var alice = await _server.RegisterAsync("quiet");
        var troll = await _server.RegisterAsync("loud");
        var roomId = await alice.CreatePublicRoomAsync();
        await troll.JoinAsync(roomId);
        var root = await troll.SendTextAsync(roomId, "provocation");
        await alice.ReplyInThreadAsync(roomId, root, "calm answer");
        await alice.IgnoreAsync(troll.UserId);

        var listed = (await alice.GetAsync($"/_matrix/client/v1/rooms/{roomId}/threads")).Ok()["chunk"]!.Find(root);
        Assert.Empty(listed["content"]!.AsObject());
        Assert.Equal("calm answer", listed.Relations()!["m.thread"]!["latest_event"]!["content"]!["body"]!.GetValue<string>());
    }
}

public sealed class SqliteThreadTests() : ThreadTests(DatabaseEngine.Sqlite);

public sealed class PostgresThreadTests() : ThreadTests(DatabaseEngine.Postgres);
