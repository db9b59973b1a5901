using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Directories;
using Lethe.Homeserver.Tests.Accounts;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Directories;

/// <summary>Publishing rooms and reading the published room list (<c>/publicRooms</c>), on both database engines.</summary>
public abstract class PublishedRoomDirectoryTests(DatabaseEngine engine) : IAsyncLifetime
{
    protected TestHomeserver Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    private static string ListPath(string roomId) => "/_matrix/client/v3/directory/list/room/" + Uri.EscapeDataString(roomId);

    private static Task<MatrixClient.Response> Publish(MatrixClient c, string roomId, string visibility = "public") =>
        c.PutAsync(ListPath(roomId), new JsonObject { ["visibility"] = visibility });

    private static async Task<JsonArray> Chunk(MatrixClient c, string query = "") =>
        (await c.GetAsync("/_matrix/client/v3/publicRooms" + query)).Ok()["chunk"]!.AsArray();

    private static List<string> Ids(JsonArray chunk) => chunk.Select(r => r!["room_id"]!.GetValue<string>()).ToList();

    [Fact]
    public async Task APublishedRoomIsListedWithItsDescriptionUntilUnpublished()
    {
        var alice = await Server.RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["name"] = "Tea Room", ["topic"] = "Leaves and water", ["room_alias_name"] = "tea" });
        (await alice.SetStateAsync(roomId, "m.room.avatar", new JsonObject { ["url"] = "mxc://test.local/teapot" })).Ok();

        // Rooms start unlisted.
        Assert.Equal("private", (await Server.NewClient().GetAsync(ListPath(roomId))).Ok()["visibility"]!.GetValue<string>());
        Assert.Empty(await Chunk(alice));

        Assert.Empty((await Publish(alice, roomId)).Ok());
        Assert.Equal("public", (await Server.NewClient().GetAsync(ListPath(roomId))).Ok()["visibility"]!.GetValue<string>());
        var page = (await alice.GetAsync("/_matrix/client/v3/publicRooms")).Ok();
        var entry = Assert.Single(page["chunk"]!.AsArray())!.AsObject();
        Assert.Equal(roomId, entry["room_id"]!.GetValue<string>());
        Assert.Equal("Tea Room", entry["name"]!.GetValue<string>());
        Assert.Equal("Leaves and water", entry["topic"]!.GetValue<string>());
        Assert.Equal("#tea:test.local", entry["canonical_alias"]!.GetValue<string>());
        Assert.Equal("mxc://test.local/teapot", entry["avatar_url"]!.GetValue<string>());
        Assert.Equal(1, entry["num_joined_members"]!.GetValue<long>());
        Assert.False(entry["world_readable"]!.GetValue<bool>());
        Assert.False(entry["guest_can_join"]!.GetValue<bool>());
        Assert.Equal("public", entry["join_rule"]!.GetValue<string>());
        Assert.Null(entry["room_type"]);
        Assert.Equal(1, page["total_room_count_estimate"]!.GetValue<long>());
        Assert.Null(page["next_batch"]);
        Assert.Null(page["prev_batch"]);

        // The listing follows the room's state: a rename and a new member show up.
        (await alice.SetStateAsync(roomId, "m.room.name", new JsonObject { ["name"] = "Tea House" })).Ok();
        var bob = await Server.RegisterAsync("bob");
        await bob.JoinAsync(roomId);
        entry = Assert.Single(await Chunk(bob))!.AsObject();
        Assert.Equal("Tea House", entry["name"]!.GetValue<string>());
        Assert.Equal(2, entry["num_joined_members"]!.GetValue<long>());

        // Redacting the name event takes the name out of the listing.
        var nameEvent = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.name/?format=event")).Ok()["event_id"]!.GetValue<string>();
        (await alice.PutAsync($"/_matrix/client/v3/rooms/{roomId}/redact/{Uri.EscapeDataString(nameEvent)}/r1", new JsonObject())).Ok();
        entry = Assert.Single(await Chunk(bob))!.AsObject();
        Assert.Null(entry["name"]);
        Assert.Equal("Leaves and water", entry["topic"]!.GetValue<string>());

        (await Publish(alice, roomId, "private")).Ok();
        Assert.Equal("private", (await alice.GetAsync(ListPath(roomId))).Ok()["visibility"]!.GetValue<string>());
        Assert.Empty(await Chunk(alice));
    }

    [Fact]
    public async Task CreateRoomWithPublicVisibilityListsSpacesAndGuestAccess()
    {
        var alice = await Server.RegisterAsync("alice");
        var space = await alice.CreateRoomAsync(new JsonObject
        {
            ["visibility"] = "public",
            ["name"] = "Garden",
            ["creation_content"] = new JsonObject { ["type"] = "m.space" },
            ["initial_state"] = new JsonArray(
                new JsonObject { ["type"] = "m.room.guest_access", ["content"] = new JsonObject { ["guest_access"] = "can_join" } },
                new JsonObject { ["type"] = "m.room.history_visibility", ["content"] = new JsonObject { ["history_visibility"] = "world_readable" } }),
        });
        var entry = Assert.Single(await Chunk(alice))!.AsObject();
        Assert.Equal(space, entry["room_id"]!.GetValue<string>());
        Assert.Equal("m.space", entry["room_type"]!.GetValue<string>());
        Assert.True(entry["guest_can_join"]!.GetValue<bool>());
        Assert.True(entry["world_readable"]!.GetValue<bool>());
    }

    [Fact]
    public async Task RoomsNobodyCouldEnterOrThatAreEmptyAreNotListed()
    {
        var alice = await Server.RegisterAsync("alice");
        var inviteOnly = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "private_chat", ["name"] = "Secret" });
        var knock = await alice.CreateRoomAsync(new JsonObject
        {
            ["name"] = "Knock first",
            ["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.join_rules", ["content"] = new JsonObject { ["join_rule"] = "knock" } }),
        });
        var open = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        (await Publish(alice, inviteOnly)).Ok();
        (await Publish(alice, knock)).Ok();
        (await Publish(alice, open)).Ok();

        // Published but invite-only rooms stay hidden (as in Synapse); knocking rooms are listed so people can knock.
        Assert.Equal(new[] { knock, open }.Order(StringComparer.Ordinal), Ids(await Chunk(alice)).Order(StringComparer.Ordinal));

        (await alice.PostAsync($"/_matrix/client/v3/rooms/{open}/leave", new JsonObject())).Ok();
        Assert.Equal([knock], Ids(await Chunk(alice)));
    }

    [Fact]
    public async Task OnlyModeratorsAndAdminsMayPublish()
    {
        await UserStoreSeed.AdminAsync(Server, "root");
        var admin = Server.NewClient();
        await admin.LoginAsync("root");
        var alice = await Server.RegisterAsync("alice");
        var bob = await Server.RegisterAsync("bob");
        var eve = await Server.RegisterAsync("eve");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);

        (await bob.PutAsync(ListPath(roomId), new JsonObject { ["visibility"] = "public" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await eve.PutAsync(ListPath(roomId), new JsonObject { ["visibility"] = "public" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await Server.NewClient().PutAsync(ListPath(roomId), new JsonObject { ["visibility"] = "public" })).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
        Assert.Empty(await Chunk(alice));

        // Raising Bob to the canonical alias level (50) lets him publish; visibility defaults to public.
        var levels = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.power_levels")).Ok();
        levels["users"]![bob.UserId] = 50;
        (await alice.SetStateAsync(roomId, "m.room.power_levels", levels)).Ok();
        (await bob.PutAsync(ListPath(roomId), new JsonObject())).Ok();
        Assert.Equal([roomId], Ids(await Chunk(alice)));

        // A server admin can unpublish a room they are not in.
        (await admin.PutAsync(ListPath(roomId), new JsonObject { ["visibility"] = "private" })).Ok();
        Assert.Empty(await Chunk(alice));
    }

    [Fact]
    public async Task DirectoryVisibilityRequestsAreValidated()
    {
        var alice = await Server.RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        (await alice.PutAsync(ListPath(roomId), new JsonObject { ["visibility"] = "everyone" })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PutAsync(ListPath(roomId), new JsonObject { ["visibility"] = true })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.PutAsync(ListPath(roomId), "not json")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
        (await alice.PutAsync(ListPath("!nowhere:test.local"), new JsonObject { ["visibility"] = "public" })).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await Server.NewClient().GetAsync(ListPath("!nowhere:test.local"))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        Assert.Equal("private", (await alice.GetAsync(ListPath(roomId))).Ok()["visibility"]!.GetValue<string>());
    }

    [Fact]
    public async Task PagesWalkEveryRoomOnceByMembersThenRoomIdInBothDirections()
    {
        var alice = await Server.RegisterAsync("alice");
        var others = new List<MatrixClient>();
        for (var i = 0; i < 3; i++)
        {
            others.Add(await Server.RegisterAsync("member" + i));
        }

        // Seven published rooms with 4, 3, 3, 2, 1, 1 and 1 members: ties are ordered by room ID.
        int[] extra = [3, 2, 2, 1, 0, 0, 0];
        var members = new Dictionary<string, int>();
        for (var i = 0; i < extra.Length; i++)
        {
            var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["visibility"] = "public", ["name"] = "room " + i });
            for (var j = 0; j < extra[i]; j++)
            {
                await others[j].JoinAsync(roomId);
            }

            members[roomId] = 1 + extra[i];
        }

        var expected = members.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key).ToList();

        // Forwards, three at a time.
        var pages = new List<JsonObject>();
        string? since = null;
        do
        {
            var page = (await alice.GetAsync("/_matrix/client/v3/publicRooms?limit=3" + (since is null ? "" : "&since=" + Uri.EscapeDataString(since)))).Ok();
            Assert.Equal(7, page["total_room_count_estimate"]!.GetValue<long>());
            pages.Add(page);
            since = page["next_batch"]?.GetValue<string>();
        }
        while (since is not null && pages.Count < 10);

        Assert.Equal(3, pages.Count);
        Assert.Equal(expected, pages.SelectMany(p => Ids(p["chunk"]!.AsArray())));
        Assert.Null(pages[0]["prev_batch"]);
        Assert.NotNull(pages[1]["prev_batch"]);
        foreach (var page in pages)
        {
            var chunk = page["chunk"]!.AsArray();
            Assert.All(chunk, r => Assert.Equal(members[r!["room_id"]!.GetValue<string>()], r!["num_joined_members"]!.GetValue<int>()));
        }

        // Backwards from the last page: the same pages in reverse, each still largest first.
        var back = new List<string>();
        var prev = pages[^1]["prev_batch"]?.GetValue<string>();
        var steps = 0;
        while (prev is not null && steps++ < 10)
        {
            var page = (await alice.GetAsync("/_matrix/client/v3/publicRooms?limit=3&since=" + Uri.EscapeDataString(prev))).Ok();
            back.InsertRange(0, Ids(page["chunk"]!.AsArray()));
            Assert.NotNull(page["next_batch"]);
            prev = page["prev_batch"]?.GetValue<string>();
        }

        Assert.Equal(expected.Take(6), back);

        // The same walk through POST, two at a time.
        var posted = new List<string>();
        since = null;
        steps = 0;
        do
        {
            var body = new JsonObject { ["limit"] = 2 };
            if (since is not null)
            {
                body["since"] = since;
            }

            var page = (await alice.PostAsync("/_matrix/client/v3/publicRooms", body)).Ok();
            posted.AddRange(Ids(page["chunk"]!.AsArray()));
            since = page["next_batch"]?.GetValue<string>();
        }
        while (since is not null && steps++ < 10);

        Assert.Equal(expected, posted);
    }

    [Fact]
    public async Task FiltersMatchNameTopicAliasAndRoomType()
    {
        var alice = await Server.RegisterAsync("alice");
        var tea = await alice.CreateRoomAsync(new JsonObject { ["visibility"] = "public", ["preset"] = "public_chat", ["name"] = "Tea Lovers", ["topic"] = "Oolong, sencha" });
        var coffee = await alice.CreateRoomAsync(new JsonObject { ["visibility"] = "public", ["preset"] = "public_chat", ["name"] = "Coffee", ["room_alias_name"] = "beans" });
        var space = await alice.CreateRoomAsync(new JsonObject
        {
            ["visibility"] = "public", ["preset"] = "public_chat", ["name"] = "Tea Space", ["creation_content"] = new JsonObject { ["type"] = "m.space" },
        });
        async Task<List<string>> Search(JsonObject filter)
        {
            var page = (await alice.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject { ["filter"] = filter })).Ok();
            var ids = Ids(page["chunk"]!.AsArray());
            Assert.Equal(ids.Count, page["total_room_count_estimate"]!.GetValue<int>());
            return ids.Order(StringComparer.Ordinal).ToList();
        }

        List<string> Sorted(params string[] ids) => ids.Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Sorted(tea, space), await Search(new JsonObject { ["generic_search_term"] = "TEA" }));
        Assert.Equal(Sorted(tea), await Search(new JsonObject { ["generic_search_term"] = "oolong" }));
        Assert.Equal(Sorted(coffee), await Search(new JsonObject { ["generic_search_term"] = "#BEANS" }));
        Assert.Empty(await Search(new JsonObject { ["generic_search_term"] = "matcha" }));
        Assert.Equal(Sorted(tea, coffee, space), await Search(new JsonObject { ["generic_search_term"] = "" }));
        Assert.Equal(Sorted(space), await Search(new JsonObject { ["room_types"] = new JsonArray("m.space") }));
        Assert.Equal(Sorted(tea, coffee), await Search(new JsonObject { ["room_types"] = new JsonArray((JsonNode?)null) }));
        Assert.Equal(Sorted(tea, coffee, space), await Search(new JsonObject { ["room_types"] = new JsonArray((JsonNode?)null, "m.space") }));
        Assert.Equal(Sorted(tea), await Search(new JsonObject { ["generic_search_term"] = "tea", ["room_types"] = new JsonArray((JsonNode?)null) }));
        Assert.Equal(Sorted(tea, coffee, space), await Search(new JsonObject { ["room_types"] = new JsonArray() }));

        // Paging a search keeps the filter.
        var first = (await alice.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject { ["limit"] = 1, ["filter"] = new JsonObject { ["generic_search_term"] = "tea" } })).Ok();
        var second = (await alice.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject
        {
            ["limit"] = 1, ["since"] = first["next_batch"]!.GetValue<string>(), ["filter"] = new JsonObject { ["generic_search_term"] = "tea" },
        })).Ok();
        Assert.Equal(Sorted(tea, space), Ids(first["chunk"]!.AsArray()).Concat(Ids(second["chunk"]!.AsArray())).Order(StringComparer.Ordinal).ToList());
        Assert.Null(second["next_batch"]);
    }

    [Fact]
    public async Task PublicRoomsNeedsATokenByDefaultAndRejectsBadParameters()
    {
        var alice = await Server.RegisterAsync("alice");
        await alice.CreateRoomAsync(new JsonObject { ["visibility"] = "public", ["preset"] = "public_chat" });
        var anonymous = Server.NewClient();
        (await anonymous.GetAsync("/_matrix/client/v3/publicRooms")).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
        (await anonymous.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject())).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");

        // This server's own name is fine; another server's list needs federation, which Lethe does not speak yet.
        Assert.Single(await Chunk(alice, "?server=test.local"));
        (await alice.GetAsync("/_matrix/client/v3/publicRooms?server=other.example")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await alice.PostAsync("/_matrix/client/v3/publicRooms?server=other.example", new JsonObject())).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await alice.GetAsync("/_matrix/client/v3/publicRooms?server=" + Uri.EscapeDataString("not a server!"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");

        (await alice.GetAsync("/_matrix/client/v3/publicRooms?limit=ten")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.GetAsync("/_matrix/client/v3/publicRooms?limit=-1")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.GetAsync("/_matrix/client/v3/publicRooms?since=garbage")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject { ["since"] = "garbage" })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject { ["limit"] = "5" })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject { ["filter"] = "tea" })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject { ["filter"] = new JsonObject { ["generic_search_term"] = 5 } })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject { ["filter"] = new JsonObject { ["room_types"] = new JsonArray(5) } })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject { ["include_all_networks"] = "yes" })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject { ["include_all_networks"] = true, ["third_party_instance_id"] = "irc" }))
            .Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PostAsync("/_matrix/client/v3/publicRooms", "{")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");

        // limit 0 means "as many as allowed"; all networks is just this server's list; no application service publishes a third-party list.
        Assert.Single(await Chunk(alice, "?limit=0"));
        Assert.Single((await alice.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject { ["include_all_networks"] = true })).Ok()["chunk"]!.AsArray());
        Assert.Empty((await alice.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject { ["third_party_instance_id"] = "irc" })).Ok()["chunk"]!.AsArray());
    }
}

public sealed class SqlitePublishedRoomDirectoryTests() : PublishedRoomDirectoryTests(DatabaseEngine.Sqlite);

public sealed class PostgresPublishedRoomDirectoryTests() : PublishedRoomDirectoryTests(DatabaseEngine.Postgres);

/// <summary><c>allow_public_rooms_without_auth: true</c> opens the list (and only the list) to anonymous readers.</summary>
public sealed class AnonymousPublicRoomDirectoryTests : IAsyncLifetime
{
    private TestHomeserver _server = null!;

    public async ValueTask InitializeAsync() =>
        _server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration + "allow_public_rooms_without_auth: true\n");

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task AnonymousReadersSeeTheLocalListOnly()
    {
        var alice = await _server.RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["visibility"] = "public", ["preset"] = "public_chat", ["name"] = "Open" });
        var anonymous = _server.NewClient();
        var entry = Assert.Single((await anonymous.GetAsync("/_matrix/client/v3/publicRooms")).Ok()["chunk"]!.AsArray())!;
        Assert.Equal(roomId, entry["room_id"]!.GetValue<string>());

        // Searching (POST) and asking for another server's list still need an account; a bad token is still refused.
        (await anonymous.PostAsync("/_matrix/client/v3/publicRooms", new JsonObject())).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
        (await anonymous.GetAsync("/_matrix/client/v3/publicRooms?server=other.example")).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
        (await new MatrixClient(_server.Client, "bogus").GetAsync("/_matrix/client/v3/publicRooms")).Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
    }
}

/// <summary>Paging and description rules of the public room list, without a server.</summary>
public sealed class PublicRoomDirectoryPagingTests
{
    private static List<PublicRoomEntry> Rooms(params (string Id, long Joined)[] rooms) =>
        rooms.Select(r => new PublicRoomEntry(r.Id, r.Joined, null, null, null, null, "public", null, null, null)).OrderBy(r => r, Comparer<PublicRoomEntry>.Create(PageToken.Compare)).ToList();

    private static List<string> Ids(JsonObject page) => page["chunk"]!.AsArray().Select(r => r!["room_id"]!.GetValue<string>()).ToList();

    [Fact]
    public void AnEmptyListHasOneEmptyPageWithoutTokens()
    {
        var page = PublicRoomList.Paginate([], 10, null);
        Assert.Empty(page["chunk"]!.AsArray());
        Assert.Null(page["next_batch"]);
        Assert.Null(page["prev_batch"]);
        Assert.Equal(0, page["total_room_count_estimate"]!.GetValue<int>());
    }

    [Fact]
    public void PagingPastTheEndLeadsBackToTheLastPage()
    {
        var rooms = Rooms(("!a:x", 5), ("!b:x", 3), ("!c:x", 3));
        var beyond = PublicRoomList.Paginate(rooms, 2, PageToken.After(rooms[^1]));
        Assert.Empty(beyond["chunk"]!.AsArray());
        Assert.Null(beyond["next_batch"]);
        var back = PublicRoomList.Paginate(rooms, 2, PageToken.Parse(beyond["prev_batch"]!.GetValue<string>()));
        Assert.Equal(["!b:x", "!c:x"], Ids(back));
        Assert.Equal(["!a:x"], Ids(PublicRoomList.Paginate(rooms, 2, PageToken.Parse(back["prev_batch"]!.GetValue<string>()))));
    }

    [Fact]
    public void ARoomThatLeftTheListDoesNotBreakATokenPointingAtIt()
    {
        var before = Rooms(("!a:x", 5), ("!b:x", 4), ("!c:x", 3), ("!d:x", 2));
        var first = PublicRoomList.Paginate(before, 2, null);
        var after = Rooms(("!a:x", 5), ("!c:x", 3), ("!d:x", 2));
        // !b was the last room of the first page; the next page still starts right after where it was.
        Assert.Equal(["!c:x", "!d:x"], Ids(PublicRoomList.Paginate(after, 2, PageToken.Parse(first["next_batch"]!.GetValue<string>()))));
    }

    [Fact]
    public void TokensRoundTripAndRejectGarbage()
    {
        var token = new PageToken(false, 42, "!room:example.org:8448");
        Assert.Equal(token, PageToken.Parse(token.ToString()));
        Assert.Equal(PageToken.BeforeEnd, PageToken.Parse(PageToken.BeforeEnd.ToString()));
        foreach (var bad in new[] { "", "!!!", "bjQy", Convert.ToBase64String("x1:!a"u8.ToArray()), Convert.ToBase64String("nabc:!a"u8.ToArray()) })
        {
            var e = Assert.Throws<Lethe.Homeserver.Http.MatrixException>(() => PageToken.Parse(bad));
            Assert.Equal("M_INVALID_PARAM", e.ErrCode);
        }
    }

    [Fact]
    public void TheTopicIsTheFirstPlainTextRepresentation()
    {
        JsonObject Topic(string json) => JsonNode.Parse(json)!.AsObject();
        Assert.Equal("plain", PublicRoomList.PlainTextTopic(Topic("""{"topic":"fallback","m.topic":{"m.text":[{"body":"<b>rich</b>","mimetype":"text/html"},{"body":"plain","mimetype":"text/plain"}]}}""")));
        Assert.Equal("no mimetype", PublicRoomList.PlainTextTopic(Topic("""{"topic":"fallback","m.topic":{"m.text":[{"body":"no mimetype"}]}}""")));
        Assert.Equal("fallback", PublicRoomList.PlainTextTopic(Topic("""{"topic":"fallback","m.topic":{"m.text":[{"body":"<i>x</i>","mimetype":"text/html"}]}}""")));
        Assert.Null(PublicRoomList.PlainTextTopic(Topic("""{"topic":5}""")));
    }
}
