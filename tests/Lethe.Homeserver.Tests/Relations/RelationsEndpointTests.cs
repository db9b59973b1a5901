using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Relations;

/// <summary>GET /relations: reactions, references, filters, pagination, recursion, visibility and bad input.</summary>
public abstract class RelationsEndpointTests(DatabaseEngine engine) : IAsyncLifetime
{
    private TestHomeserver _server = null!;

    public async ValueTask InitializeAsync() => _server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task ReactionsAreListedAndFilteredByRelationAndEventType()
    {
        var alice = await _server.RegisterAsync("alice");
        var bob = await _server.RegisterAsync("bob");
        var roomId = await alice.CreatePublicRoomAsync();
        await bob.JoinAsync(roomId);
        var message = await alice.SendTextAsync(roomId, "react to me");
        var thumbs = await bob.ReactAsync(roomId, message, "👍");
        var heart = await alice.ReactAsync(roomId, message, "❤️");
        var reply = await bob.ReplyInThreadAsync(roomId, message, "in a thread");
        var unrelated = await alice.SendTextAsync(roomId, "unrelated");

        var all = (await bob.RelationsAsync(roomId, message)).Ok();
        Assert.Equal([reply, heart, thumbs], all["chunk"].Ids());
        Assert.DoesNotContain(unrelated, all["chunk"].Ids());
        Assert.Null(all["next_batch"]);
        Assert.Null(all["prev_batch"]);
        Assert.Null(all["recursion_depth"]);
        var first = all["chunk"]!.Find(thumbs);
        Assert.Equal(roomId, first["room_id"]!.GetValue<string>());
        Assert.Equal("👍", first["content"]!["m.relates_to"]!["key"]!.GetValue<string>());

        var annotations = (await bob.RelationsAsync(roomId, message, "/m.annotation")).Ok();
        Assert.Equal([heart, thumbs], annotations["chunk"].Ids());
        var reactions = (await bob.RelationsAsync(roomId, message, "/m.annotation/m.reaction")).Ok();
        Assert.Equal([heart, thumbs], reactions["chunk"].Ids());
        Assert.Empty((await bob.RelationsAsync(roomId, message, "/m.annotation/m.room.message")).Ok()["chunk"]!.AsArray());
        Assert.Equal([reply], (await bob.RelationsAsync(roomId, message, "/m.thread/m.room.message")).Ok()["chunk"].Ids());

        // Forwards: oldest first.
        Assert.Equal([thumbs, heart, reply], (await bob.RelationsAsync(roomId, message, "", "dir=f")).Ok()["chunk"].Ids());

        // Reactions are not aggregated by the server (spec: m.annotation is not bundled); the thread is.
        var served = await bob.EventAsync(roomId, message);
        Assert.Null(served.Relations()!["m.annotation"]);
        Assert.NotNull(served.Relations()!["m.thread"]);
    }

    [Fact]
    public async Task PagesOfReactionsCoverEveryReactionOnceInBothDirections()
    {
        var alice = await _server.RegisterAsync("pager");
        var roomId = await alice.CreateRoomAsync();
        var message = await alice.SendTextAsync(roomId, "popular");
        var reactions = new List<string>();
        for (var i = 0; i < 12; i++)
        {
            reactions.Add(await alice.ReactAsync(roomId, message, "k" + i));
            if (i % 4 == 0)
            {
                await alice.SendTextAsync(roomId, "noise " + i);
            }
        }

        foreach (var (dir, expected) in new[] { ("b", Enumerable.Reverse(reactions).ToList()), ("f", reactions) })
        {
            var seen = new List<string>();
            string? from = null;
            var pages = 0;
            while (true)
            {
                var query = $"dir={dir}&limit=5" + (from is null ? "" : "&from=" + Uri.EscapeDataString(from));
                var page = (await alice.RelationsAsync(roomId, message, "/m.annotation", query)).Ok();
                pages++;
                Assert.True(page["chunk"]!.AsArray().Count <= 5);
                seen.AddRange(page["chunk"].Ids());
                if (from is not null)
                {
                    Assert.Equal(from, page["prev_batch"]!.GetValue<string>());
                }

                if (page["next_batch"] is not { } next)
                {
                    break;
                }

                from = next.GetValue<string>();
            }

            Assert.Equal(expected, seen);
            Assert.Equal(3, pages);
        }

        // 'to' stops a backwards walk at a token from an earlier page: the first page's next_batch bounds the range.
        var firstPage = (await alice.RelationsAsync(roomId, message, "/m.annotation", "limit=5")).Ok();
        var secondPageToken = firstPage["next_batch"]!.GetValue<string>();
        var bounded = (await alice.RelationsAsync(roomId, message, "/m.annotation", "limit=50&to=" + Uri.EscapeDataString(secondPageToken))).Ok();
        Assert.Equal(firstPage["chunk"].Ids(), bounded["chunk"].Ids());

        // A /messages token works as a starting point: everything before the newest message.
        var messages = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=1")).Ok();
        var fromMessages = (await alice.RelationsAsync(roomId, message, "/m.annotation", "limit=50&from=" + Uri.EscapeDataString(messages["start"]!.GetValue<string>()))).Ok();
        Assert.Equal(12, fromMessages["chunk"]!.AsArray().Count);
    }

    [Fact]
    public async Task ReferencesAreBundledAndListed()
    {
        var alice = await _server.RegisterAsync("referrer");
        var roomId = await alice.CreateRoomAsync();
        var request = await alice.SendTextAsync(roomId, "verification request");
        var first = await alice.ReferenceAsync(roomId, request);
        var second = await alice.ReferenceAsync(roomId, request);

        var served = await alice.EventAsync(roomId, request);
        var chunk = served.Relations()!["m.reference"]!["chunk"]!.AsArray();
        Assert.Equal([first, second], chunk.Select(c => c!["event_id"]!.GetValue<string>()));
        Assert.Equal([second, first], (await alice.RelationsAsync(roomId, request, "/m.reference")).Ok()["chunk"].Ids());

        // The same bundle in /messages and /context.
        var messages = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=10")).Ok();
        Assert.Equal(2, messages["chunk"]!.Find(request).Relations()!["m.reference"]!["chunk"]!.AsArray().Count);
        var context = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/context/{request}")).Ok();
        Assert.Equal(2, context["event"]!.Relations()!["m.reference"]!["chunk"]!.AsArray().Count);

        // A redacted reference is no longer a relation.
        await alice.RedactAsync(roomId, first);
        chunk = (await alice.EventAsync(roomId, request)).Relations()!["m.reference"]!["chunk"]!.AsArray();
        Assert.Equal([second], chunk.Select(c => c!["event_id"]!.GetValue<string>()));
        Assert.Equal([second], (await alice.RelationsAsync(roomId, request)).Ok()["chunk"].Ids());
    }

    [Fact]
    public async Task RecursionFollowsRelationsOfRelations()
    {
        var alice = await _server.RegisterAsync("recurser");
        var roomId = await alice.CreateRoomAsync();
        var root = await alice.SendTextAsync(roomId, "root");
        var reply = await alice.ReplyInThreadAsync(roomId, root, "reply");
        var reaction = await alice.ReactAsync(roomId, reply, "🎉");
        var edit = await alice.EditAsync(roomId, reply, "reply, edited");

        var direct = (await alice.RelationsAsync(roomId, root)).Ok();
        Assert.Equal([reply], direct["chunk"].Ids());

        var recursive = (await alice.RelationsAsync(roomId, root, "", "recurse=true")).Ok();
        Assert.Equal([edit, reaction, reply], recursive["chunk"].Ids());
        Assert.Equal(3, recursive["recursion_depth"]!.GetValue<int>());

        // Filters apply at every depth.
        Assert.Equal([reaction], (await alice.RelationsAsync(roomId, root, "/m.annotation", "recurse=true")).Ok()["chunk"].Ids());
        Assert.Equal(0, (await alice.RelationsAsync(roomId, root, "", "recurse=false")).Ok()["recursion_depth"]?.GetValue<int>() ?? 0);
    }

    [Fact]
    public async Task ReadersSeeOnlyTheParentsAndChildrenTheyMaySee()
    {
        var alice = await _server.RegisterAsync("owner");
        var charlie = await _server.RegisterAsync("charlie");
        var eve = await _server.RegisterAsync("eve");
        var roomId = await alice.CreatePublicRoomAsync();
        await alice.SetHistoryVisibilityAsync(roomId, "joined");
        var before = await alice.SendTextAsync(roomId, "before charlie");
        await alice.ReactAsync(roomId, before, "👀");

        await charlie.JoinAsync(roomId);
        var during = await alice.SendTextAsync(roomId, "while charlie is here");
        var seenReaction = await alice.ReactAsync(roomId, during, "1");
        await charlie.LeaveAsync(roomId);
        await alice.ReactAsync(roomId, during, "2");

        // Parent from before charlie joined: as if it did not exist.
        (await charlie.RelationsAsync(roomId, before)).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        // Someone never in the room: the same.
        (await eve.RelationsAsync(roomId, during)).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        // The parent charlie saw: only the reaction sent while he was in the room.
        Assert.Equal([seenReaction], (await charlie.RelationsAsync(roomId, during)).Ok()["chunk"].Ids());
        Assert.Equal(2, (await alice.RelationsAsync(roomId, during)).Ok()["chunk"]!.AsArray().Count);

        // Unknown events and events of another room are not found either.
        (await alice.RelationsAsync(roomId, "$nope")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        var otherRoom = await alice.CreateRoomAsync();
        (await alice.RelationsAsync(otherRoom, during)).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }

    [Fact]
    public async Task IgnoredUsersChildrenAreNotListed()
    {
        var alice = await _server.RegisterAsync("ignorer");
        var troll = await _server.RegisterAsync("troll");
        var roomId = await alice.CreatePublicRoomAsync();
        await troll.JoinAsync(roomId);
        var message = await alice.SendTextAsync(roomId, "hello");
        await troll.ReactAsync(roomId, message, "👎");
        var kind = await alice.ReactAsync(roomId, message, "👍");
        await alice.IgnoreAsync(troll.UserId);
        Assert.Equal([kind], (await alice.RelationsAsync(roomId, message)).Ok()["chunk"].Ids());
    }

    [Fact]
    public async Task BadParametersAreRejected()
    {
        var alice = await _server.RegisterAsync("strict");
        var roomId = await alice.CreateRoomAsync();
        var message = await alice.SendTextAsync(roomId, "x");
        (await alice.RelationsAsync(roomId, message, "", "dir=sideways")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.RelationsAsync(roomId, message, "", "from=garbage")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.RelationsAsync(roomId, message, "", "to=garbage")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.RelationsAsync(roomId, message, "", "limit=-1")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.RelationsAsync(roomId, message, "", "recurse=maybe")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await new MatrixClient(_server.Client).RelationsAsync(roomId, message)).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
    }
}

public sealed class SqliteRelationsEndpointTests() : RelationsEndpointTests(DatabaseEngine.Sqlite);

public sealed class PostgresRelationsEndpointTests() : RelationsEndpointTests(DatabaseEngine.Postgres);
