using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Rooms;

/// <summary>/messages, /context, history visibility, and /sync (initial, incremental, long-poll, sections).</summary>
public abstract class HistoryAndSyncTests(DatabaseEngine engine) : IAsyncLifetime
{
    private TestHomeserver _server = null!;

    public async ValueTask InitializeAsync() => _server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task MessagesPaginateBothWaysWithoutGapsOrRepeats()
    {
        var alice = await _server.RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync();
        for (var i = 0; i < 25; i++)
        {
            await alice.SendTextAsync(roomId, "m" + i);
        }

        var seen = new List<string>();
        string? from = null;
        for (var page = 0; page < 20; page++)
        {
            var url = $"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=7" + (from is null ? "" : "&from=" + from);
            var body = (await alice.GetAsync(url)).Ok();
            seen.AddRange(body["chunk"]!.AsArray().Bodies());
            if (body["end"] is null)
            {
                break;
            }

            from = body["end"]!.GetValue<string>();
        }

        Assert.Equal(Enumerable.Range(0, 25).Reverse().Select(i => "m" + i), seen);

        // Forwards from the beginning, with a type filter that keeps only messages.
        var forward = new List<string>();
        from = null;
        var filter = Uri.EscapeDataString("{\"types\":[\"m.room.message\"]}");
        for (var page = 0; page < 20; page++)
        {
            var url = $"/_matrix/client/v3/rooms/{roomId}/messages?dir=f&limit=10&filter={filter}" + (from is null ? "" : "&from=" + from);
            var body = (await alice.GetAsync(url)).Ok();
            var chunk = body["chunk"]!.AsArray();
            Assert.All(chunk, e => Assert.Equal("m.room.message", e!["type"]!.GetValue<string>()));
            forward.AddRange(chunk.Bodies());
            if (body["end"] is null || chunk.Count == 0)
            {
                break;
            }

            from = body["end"]!.GetValue<string>();
        }

        Assert.Equal(Enumerable.Range(0, 25).Select(i => "m" + i), forward);
        (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=x")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&from=garbage")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&filter=%7Bnope")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
        (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=-1")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }

    [Fact]
    public async Task LargeEventsAreCachedByTheirSizeAndStayReadableOnceEvicted()
    {
        // 60 messages of 60 KB: cached by count (the old bound, 5,000 entries) they would all stay, about 11 MB of
        // heap; bounded by size, about 20 of them fit.
        var alice = await _server.RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync();
        var bodies = Enumerable.Range(0, 60).Select(i => i + new string('x', 60_000)).ToList();
        var ids = new List<string>();
        foreach (var body in bodies)
        {
            ids.Add(await alice.SendTextAsync(roomId, body));
        }

        // The cache compacts in the background once over its budget.
        var cache = _server.Host.Services.Events;
        await Poll.UntilAsync(() => Task.FromResult(cache.Count is > 0 and <= 30), TimeSpan.FromSeconds(10), "the event cache to hold at most 30 of the large events");
        for (var i = 0; i < ids.Count; i += 7)
        {
            var e = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{Uri.EscapeDataString(ids[i])}")).Ok();
            Assert.Equal(bodies[i], e["content"]!["body"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task PrevBatchFromSyncContinuesIntoMessages()
    {
        var alice = await _server.RegisterAsync("bea");
        var roomId = await alice.CreateRoomAsync();
        for (var i = 0; i < 15; i++)
        {
            await alice.SendTextAsync(roomId, "n" + i);
        }

        var sync = await alice.SyncAsync(filter: "{\"room\":{\"timeline\":{\"limit\":5}}}");
        var room = sync.JoinedRoom(roomId)!;
        Assert.True(room["timeline"]!["limited"]!.GetValue<bool>());
        Assert.Equal(["n10", "n11", "n12", "n13", "n14"], sync.Timeline(roomId).Bodies());
        var prev = room["timeline"]!["prev_batch"]!.GetValue<string>();
        var older = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=3&from={prev}")).Ok();
        Assert.Equal(["n9", "n8", "n7"], older["chunk"]!.AsArray().Bodies());
        // A limited timeline comes with the state at its start.
        Assert.Contains(room["state"]!["events"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.create");
    }

    [Fact]
    public async Task ContextShowsEventsAroundAnEvent()
    {
        var alice = await _server.RegisterAsync("cid");
        var roomId = await alice.CreateRoomAsync();
        var ids = new List<string>();
        for (var i = 0; i < 9; i++)
        {
            ids.Add(await alice.SendTextAsync(roomId, "c" + i));
        }

        var ctx = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/context/{ids[4]}?limit=4")).Ok();
        Assert.Equal("c4", ctx["event"]!["content"]!["body"]!.GetValue<string>());
        Assert.Equal(["c3", "c2"], ctx["events_before"]!.AsArray().Bodies());
        Assert.Equal(["c5", "c6"], ctx["events_after"]!.AsArray().Bodies());
        var after = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=f&limit=2&from={ctx["end"]!.GetValue<string>()}")).Ok();
        Assert.Equal(["c7", "c8"], after["chunk"]!.AsArray().Bodies());
        Assert.Contains(ctx["state"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.member");
        (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/context/$missing")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }

    [Theory]
    [InlineData("shared", true)]
    [InlineData("joined", false)]
    [InlineData("invited", false)]
    [InlineData("world_readable", true)]
    public async Task HistoryVisibilityDecidesWhatNewMembersSee(string visibility, bool seesEarlier)
    {
        var alice = await _server.RegisterAsync("d" + visibility.Replace("_", "", StringComparison.Ordinal));
        var bob = await _server.RegisterAsync("e" + visibility.Replace("_", "", StringComparison.Ordinal));
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        (await alice.SetStateAsync(roomId, "m.room.history_visibility", new JsonObject { ["history_visibility"] = visibility })).Ok();
        var early = await alice.SendTextAsync(roomId, "before bob");
        await bob.JoinAsync(roomId);
        await alice.SendTextAsync(roomId, "after bob");

        var bodies = (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=50")).Ok()["chunk"]!.AsArray().Bodies();
        Assert.Contains("after bob", bodies);
        Assert.Equal(seesEarlier, bodies.Contains("before bob"));
        var single = await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{early}");
        Assert.Equal(seesEarlier ? HttpStatusCode.OK : HttpStatusCode.NotFound, single.Status);
        Assert.Equal(seesEarlier, (await bob.SyncAsync()).Timeline(roomId).Bodies().Contains("before bob"));
    }

    [Fact]
    public async Task FormerMembersSeeHistoryOnlyUntilTheyLeft()
    {
        var alice = await _server.RegisterAsync("fox");
        var bob = await _server.RegisterAsync("gil");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        await alice.SendTextAsync(roomId, "while bob was here");
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/leave", new JsonObject())).Ok();
        await alice.SendTextAsync(roomId, "after bob left");
        (await alice.SetStateAsync(roomId, "m.room.topic", new JsonObject { ["topic"] = "new topic" })).Ok();

        var bodies = (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=50")).Ok()["chunk"]!.AsArray().Bodies();
        Assert.Contains("while bob was here", bodies);
        Assert.DoesNotContain("after bob left", bodies);
        // Their view of the state stops at their leave: no new topic.
        (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.topic")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }

    [Fact]
    public async Task LongPollWakesWhenAMessageArrives()
    {
        var alice = await _server.RegisterAsync("hugo");
        var bob = await _server.RegisterAsync("ines");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        var next = (await bob.SyncAsync())["next_batch"]!.GetValue<string>();

        var clock = Stopwatch.StartNew();
        var poll = bob.SyncAsync(next, timeout: 30_000);
        Assert.False(poll.IsCompleted, "a long-poll with nothing new waits");
        await alice.SendTextAsync(roomId, "wake up");
        var woken = await poll.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(["wake up"], woken.Timeline(roomId).Bodies());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), "woken by the message, not by the 30 s timeout");

        // An empty incremental sync with timeout 0 returns at once with the same position.
        var empty = await bob.SyncAsync(woken["next_batch"]!.GetValue<string>());
        Assert.Equal(woken["next_batch"]!.GetValue<string>(), empty["next_batch"]!.GetValue<string>());
        Assert.Empty(empty["rooms"]!["join"]!.AsObject());
    }

    [Fact]
    public async Task IncrementalSyncCarriesJoinsLeavesInvitesAndOnlyNewEvents()
    {
        var alice = await _server.RegisterAsync("jo");
        var bob = await _server.RegisterAsync("ky");
        var roomId = await alice.CreateRoomAsync();
        await alice.SendTextAsync(roomId, "old");
        var bobStart = (await bob.SyncAsync())["next_batch"]!.GetValue<string>();
        await alice.InviteAsync(roomId, bob.UserId);
        var afterInvite = await bob.SyncAsync(bobStart);
        Assert.True(afterInvite["rooms"]!["invite"]!.AsObject().ContainsKey(roomId));

        await bob.JoinAsync(roomId);
        var afterJoin = await bob.SyncAsync(afterInvite["next_batch"]!.GetValue<string>());
        var joined = afterJoin.JoinedRoom(roomId)!;
        // A newly joined room arrives with its full state.
        Assert.Contains(joined["state"]!["events"]!.AsArray().Concat(joined["timeline"]!["events"]!.AsArray()), e => e!["type"]!.GetValue<string>() == "m.room.create");

        await alice.SendTextAsync(roomId, "new");
        var incremental = await bob.SyncAsync(afterJoin["next_batch"]!.GetValue<string>());
        Assert.Equal(["new"], incremental.Timeline(roomId).Bodies());
        Assert.False(incremental.JoinedRoom(roomId)!["timeline"]!["limited"]!.GetValue<bool>());

        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/leave", new JsonObject())).Ok();
        var afterLeave = await bob.SyncAsync(incremental["next_batch"]!.GetValue<string>());
        Assert.True(afterLeave["rooms"]!["leave"]!.AsObject().ContainsKey(roomId));
        Assert.Null(afterLeave.JoinedRoom(roomId));
        await alice.SendTextAsync(roomId, "after leave");
        var later = await bob.SyncAsync(afterLeave["next_batch"]!.GetValue<string>());
        Assert.False(later["rooms"]!["leave"]!.AsObject().ContainsKey(roomId));
        Assert.False(later["rooms"]!["join"]!.AsObject().ContainsKey(roomId));
    }

    [Fact]
    public async Task LazyLoadingSendsTheMemberEventsOfEachTimelinesSenders()
    {
        var alice = await _server.RegisterAsync("lara");
        var bob = await _server.RegisterAsync("bert");
        var carol = await _server.RegisterAsync("cleo");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        await carol.JoinAsync(roomId);
        await bob.SendTextAsync(roomId, "bob speaks");
        const string Lazy = """{"room":{"timeline":{"limit":1},"state":{"lazy_load_members":true}}}""";

        string[] MemberKeys(JsonObject sync) =>
            [.. (sync.JoinedRoom(roomId)?["state"]?["events"]?.AsArray() ?? []).Where(e => e!["type"]!.GetValue<string>() == "m.room.member").Select(e => e!["state_key"]!.GetValue<string>()).Order()];

        var initial = await alice.SyncAsync(filter: Lazy);
        Assert.Equal(new[] { alice.UserId, bob.UserId }.Order(), MemberKeys(initial)); // Carol has said nothing yet

        // Carol's first message: her member event did not change, but this client has never seen it.
        await carol.SendTextAsync(roomId, "carol speaks");
        var next = await alice.SyncAsync(initial["next_batch"]!.GetValue<string>(), filter: Lazy);
        Assert.Equal(["carol speaks"], next.Timeline(roomId).Bodies());
        Assert.False(next.JoinedRoom(roomId)!["timeline"]!["limited"]!.GetValue<bool>());
        Assert.Equal([carol.UserId], MemberKeys(next));
        var carolMember = next.JoinedRoom(roomId)!["state"]!["events"]!.AsArray().Single(e => e!["state_key"]!.GetValue<string>() == carol.UserId)!;
        Assert.Equal("join", carolMember["content"]!["membership"]!.GetValue<string>());

        // Without lazy loading an incremental sync carries no state for an unchanged membership.
        await carol.SendTextAsync(roomId, "again");
        var plain = await alice.SyncAsync(next["next_batch"]!.GetValue<string>());
        Assert.Empty(MemberKeys(plain));
    }

    [Fact]
    public async Task InvitesFromIgnoredUsersAreNotSent()
    {
        var alice = await _server.RegisterAsync("ivy");
        var pest = await _server.RegisterAsync("pest");
        var friend = await _server.RegisterAsync("friend");
        (await alice.PutAsync($"/_matrix/client/v3/user/{alice.UserId}/account_data/m.ignored_user_list", new JsonObject { ["ignored_users"] = new JsonObject { [pest.UserId] = new JsonObject() } })).Ok();
        var start = (await alice.SyncAsync())["next_batch"]!.GetValue<string>();
        var pestRoom = await pest.CreateRoomAsync();
        await pest.InviteAsync(pestRoom, alice.UserId);
        var friendRoom = await friend.CreateRoomAsync();
        await friend.InviteAsync(friendRoom, alice.UserId);

        foreach (var sync in new[] { await alice.SyncAsync(start), await alice.SyncAsync() })
        {
            var invites = sync["rooms"]!["invite"]!.AsObject();
            Assert.True(invites.ContainsKey(friendRoom));
            Assert.False(invites.ContainsKey(pestRoom));
        }
    }

    [Fact]
    public async Task FullStateKnocksAndMessagesUpToAToken()
    {
        var alice = await _server.RegisterAsync("fran");
        var bob = await _server.RegisterAsync("gus");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["name"] = "Full", ["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.join_rules", ["content"] = new JsonObject { ["join_rule"] = "knock" } }) });
        await alice.SendTextAsync(roomId, "one");
        var mark = (await alice.SyncAsync())["next_batch"]!.GetValue<string>();

        // full_state: an incremental sync with nothing new still carries the room's whole state.
        var quiet = (await alice.GetAsync($"/_matrix/client/v3/sync?since={mark}&full_state=true&timeout=0")).Ok();
        var types = quiet.JoinedRoom(roomId)!["state"]!["events"]!.AsArray().Select(e => e!["type"]!.GetValue<string>()).ToHashSet();
        Assert.Superset(new HashSet<string> { "m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.name", "m.room.member" }, types);
        Assert.Null((await alice.SyncAsync(mark)).JoinedRoom(roomId));

        // A knock shows up in the knocker's knock section, with the room's stripped state.
        var bobStart = (await bob.SyncAsync())["next_batch"]!.GetValue<string>();
        (await bob.PostAsync($"/_matrix/client/v3/knock/{roomId}", new JsonObject { ["reason"] = "let me in" })).Ok();
        var knocked = await bob.SyncAsync(bobStart);
        var knockState = knocked["rooms"]!["knock"]![roomId]!["knock_state"]!["events"]!.AsArray();
        Assert.Contains(knockState, e => e!["type"]!.GetValue<string>() == "m.room.name" && e["content"]!["name"]!.GetValue<string>() == "Full");
        Assert.Contains(knockState, e => e!["type"]!.GetValue<string>() == "m.room.member" && e["content"]!["membership"]!.GetValue<string>() == "knock");

        // /messages stops at `to`.
        var start = (await alice.SyncAsync())["next_batch"]!.GetValue<string>();
        await alice.SendTextAsync(roomId, "two");
        await alice.SendTextAsync(roomId, "three");
        var between = (await alice.SyncAsync())["next_batch"]!.GetValue<string>();
        await alice.SendTextAsync(roomId, "four");
        var forward = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=f&from={start}&to={between}&limit=10")).Ok();
        Assert.Equal(["two", "three"], forward["chunk"]!.AsArray().Bodies());
        var end = (await alice.SyncAsync())["next_batch"]!.GetValue<string>();
        var backward = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&from={end}&to={between}&limit=10")).Ok();
        Assert.Equal(["four"], backward["chunk"]!.AsArray().Bodies());
    }

    [Fact]
    public async Task TypingReceiptsAndUnreadCountsReachTheOtherMember()
    {
        var alice = await _server.RegisterAsync("lia");
        var bob = await _server.RegisterAsync("mo");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        var start = (await bob.SyncAsync())["next_batch"]!.GetValue<string>();
        var first = await alice.SendTextAsync(roomId, "one");
        await alice.SendTextAsync(roomId, "two");
        var unread = await bob.SyncAsync(start);
        Assert.Equal(2, unread.JoinedRoom(roomId)!["unread_notifications"]!["notification_count"]!.GetValue<int>());

        (await alice.PutAsync($"/_matrix/client/v3/rooms/{roomId}/typing/{alice.UserId}", new JsonObject { ["typing"] = true, ["timeout"] = 30000 })).Ok();
        var typing = await bob.SyncAsync(unread["next_batch"]!.GetValue<string>());
        var typingEvent = typing.JoinedRoom(roomId)!["ephemeral"]!["events"]!.AsArray().Single(e => e!["type"]!.GetValue<string>() == "m.typing")!;
        Assert.Equal([alice.UserId], typingEvent["content"]!["user_ids"]!.AsArray().Select(u => u!.GetValue<string>()));
        (await bob.PutAsync($"/_matrix/client/v3/rooms/{roomId}/typing/{alice.UserId}", new JsonObject { ["typing"] = true })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");

        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/receipt/m.read/{first}", new JsonObject())).Ok();
        var read = await alice.SyncAsync();
        var receipt = read.JoinedRoom(roomId)!["ephemeral"]!["events"]!.AsArray().Single(e => e!["type"]!.GetValue<string>() == "m.receipt")!;
        Assert.NotNull(receipt["content"]![first]!["m.read"]![bob.UserId]!["ts"]);
        var counts = await bob.SyncAsync();
        Assert.Equal(1, counts.JoinedRoom(roomId)!["unread_notifications"]!["notification_count"]!.GetValue<int>());

        // Private receipts are seen only by their owner.
        var second = (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=1")).Ok()["chunk"]![0]!["event_id"]!.GetValue<string>();
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/read_markers", new JsonObject { ["m.read.private"] = second, ["m.fully_read"] = second })).Ok();
        var aliceView = await alice.SyncAsync();
        Assert.DoesNotContain("m.read.private", aliceView.JoinedRoom(roomId)!["ephemeral"]!.ToJsonString(), StringComparison.Ordinal);
        var bobView = await bob.SyncAsync();
        Assert.Contains("m.read.private", bobView.JoinedRoom(roomId)!["ephemeral"]!.ToJsonString(), StringComparison.Ordinal);
        Assert.Equal(0, bobView.JoinedRoom(roomId)!["unread_notifications"]!["notification_count"]!.GetValue<int>());
        Assert.Contains(bobView.JoinedRoom(roomId)!["account_data"]!["events"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.fully_read");
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/receipt/m.read/$nope", new JsonObject())).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/receipt/m.bogus/{first}", new JsonObject())).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }

    [Fact]
    public async Task ThreadedUnreadCountsAreSeparateWhenAskedFor()
    {
        var alice = await _server.RegisterAsync("thea");
        var bob = await _server.RegisterAsync("theo");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        var root = await alice.SendTextAsync(roomId, "root");
        JsonObject InThread(string body) => new()
        {
            ["msgtype"] = "m.text",
            ["body"] = body,
            ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.thread", ["event_id"] = root },
        };
        var firstReply = (await alice.SendEventAsync(roomId, "m.room.message", InThread("reply 1"))).Ok()["event_id"]!.GetValue<string>();
        (await alice.SendEventAsync(roomId, "m.room.message", InThread("reply 2"))).Ok();
        await alice.SendTextAsync(roomId, "main 2");

        // Without the filter flag, everything counts in one number.
        var plain = await bob.SyncAsync();
        Assert.Equal(4, plain.JoinedRoom(roomId)!["unread_notifications"]!["notification_count"]!.GetValue<int>());
        Assert.Null(plain.JoinedRoom(roomId)!["unread_thread_notifications"]);

        const string Threaded = "{\"room\":{\"timeline\":{\"unread_thread_notifications\":true}}}";
        var split = (await bob.SyncAsync(filter: Threaded)).JoinedRoom(roomId)!;
        Assert.Equal(2, split["unread_notifications"]!["notification_count"]!.GetValue<int>());
        Assert.Equal(2, split["unread_thread_notifications"]![root]!["notification_count"]!.GetValue<int>());

        // A receipt in the thread reads the thread only.
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/receipt/m.read/{firstReply}", new JsonObject { ["thread_id"] = root })).Ok();
        split = (await bob.SyncAsync(filter: Threaded)).JoinedRoom(roomId)!;
        Assert.Equal(2, split["unread_notifications"]!["notification_count"]!.GetValue<int>());
        Assert.Equal(1, split["unread_thread_notifications"]![root]!["notification_count"]!.GetValue<int>());
    }

    [Fact]
    public async Task AccountDataTagsAndIgnoredUsers()
    {
        var alice = await _server.RegisterAsync("nia");
        var bob = await _server.RegisterAsync("oz");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        var start = (await alice.SyncAsync())["next_batch"]!.GetValue<string>();

        (await alice.PutAsync($"/_matrix/client/v3/user/{alice.UserId}/account_data/org.example.settings", "{\"theme\":\"dark\",\"scale\":1.25}")).Ok();
        Assert.Equal(1.25, (await alice.GetAsync($"/_matrix/client/v3/user/{alice.UserId}/account_data/org.example.settings")).Ok()["scale"]!.GetValue<double>());
        (await bob.GetAsync($"/_matrix/client/v3/user/{alice.UserId}/account_data/org.example.settings")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await alice.GetAsync($"/_matrix/client/v3/user/{alice.UserId}/account_data/unset.type")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await alice.PutAsync($"/_matrix/client/v3/user/{alice.UserId}/account_data/m.push_rules", new JsonObject())).Error(HttpStatusCode.MethodNotAllowed, "M_BAD_JSON");
        (await alice.PutAsync($"/_matrix/client/v3/user/{alice.UserId}/rooms/{roomId}/tags/m.favourite", "{\"order\":0.5}")).Ok();
        var tags = (await alice.GetAsync($"/_matrix/client/v3/user/{alice.UserId}/rooms/{roomId}/tags")).Ok()["tags"]!.AsObject();
        Assert.Equal(0.5, tags["m.favourite"]!["order"]!.GetValue<double>());

        var sync = await alice.SyncAsync(start);
        Assert.Contains(sync["account_data"]!["events"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "org.example.settings");
        Assert.Contains(sync.JoinedRoom(roomId)!["account_data"]!["events"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.tag");

        (await alice.DeleteAsync($"/_matrix/client/v3/user/{alice.UserId}/rooms/{roomId}/tags/m.favourite")).Ok();
        Assert.Empty((await alice.GetAsync($"/_matrix/client/v3/user/{alice.UserId}/rooms/{roomId}/tags")).Ok()["tags"]!.AsObject());

        (await alice.PutAsync($"/_matrix/client/v3/user/{alice.UserId}/account_data/m.ignored_user_list", new JsonObject { ["ignored_users"] = new JsonObject { [bob.UserId] = new JsonObject() } })).Ok();
        await bob.SendTextAsync(roomId, "spam");
        await alice.SendTextAsync(roomId, "mine");
        var bodies = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=10")).Ok()["chunk"]!.AsArray().Bodies();
        Assert.Contains("mine", bodies);
        Assert.DoesNotContain("spam", bodies);
    }

    [Fact]
    public async Task FiltersCanBeStoredAndApplied()
    {
        var alice = await _server.RegisterAsync("pam");
        var roomId = await alice.CreateRoomAsync();
        await alice.SendTextAsync(roomId, "text");
        (await alice.SendEventAsync(roomId, "org.example.custom", new JsonObject { ["x"] = 1 })).Ok();
        var filterId = (await alice.PostAsync($"/_matrix/client/v3/user/{alice.UserId}/filter", new JsonObject
        {
            ["room"] = new JsonObject { ["timeline"] = new JsonObject { ["types"] = new JsonArray("org.example.*") }, ["state"] = new JsonObject { ["lazy_load_members"] = true } },
            ["event_fields"] = new JsonArray("type", "content.x"),
        })).Ok()["filter_id"]!.GetValue<string>();
        var stored = (await alice.GetAsync($"/_matrix/client/v3/user/{alice.UserId}/filter/{filterId}")).Ok();
        Assert.Equal("org.example.*", stored["room"]!["timeline"]!["types"]![0]!.GetValue<string>());

        var sync = await alice.SyncAsync(filter: filterId);
        var timeline = sync.Timeline(roomId);
        var e = Assert.Single(timeline)!.AsObject();
        Assert.Equal(["content", "type"], e.Select(kv => kv.Key).Order(StringComparer.Ordinal));
        Assert.Equal(1, e["content"]!["x"]!.GetValue<int>());

        (await alice.GetAsync($"/_matrix/client/v3/user/{alice.UserId}/filter/999")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await alice.GetAsync("/_matrix/client/v3/sync?filter=999")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await alice.GetAsync("/_matrix/client/v3/sync?filter=%7Bbroken")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
        (await alice.PostAsync($"/_matrix/client/v3/user/{alice.UserId}/filter", new JsonObject { ["room"] = new JsonObject { ["timeline"] = new JsonObject { ["types"] = "notalist" } } }))
            .Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.GetAsync("/_matrix/client/v3/sync?since=bogus")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }

    [Fact]
    public async Task ProfileAndPresence()
    {
        var alice = await _server.RegisterAsync("quinn");
        var bob = await _server.RegisterAsync("rae");
        var stranger = await _server.RegisterAsync("sam");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        (await alice.PutAsync($"/_matrix/client/v3/presence/{alice.UserId}/status", new JsonObject { ["presence"] = "unavailable", ["status_msg"] = "lunch" })).Ok();
        var presence = (await bob.GetAsync($"/_matrix/client/v3/presence/{alice.UserId}/status")).Ok();
        Assert.Equal("unavailable", presence["presence"]!.GetValue<string>());
        Assert.Equal("lunch", presence["status_msg"]!.GetValue<string>());
        (await stranger.GetAsync($"/_matrix/client/v3/presence/{alice.UserId}/status")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await alice.PutAsync($"/_matrix/client/v3/presence/{alice.UserId}/status", new JsonObject { ["presence"] = "asleep" })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        var sync = await bob.SyncAsync();
        Assert.Contains(sync["presence"]!["events"]!.AsArray(), e => e!["sender"]!.GetValue<string>() == alice.UserId);
    }
}

public sealed class SqliteHistoryAndSyncTests() : HistoryAndSyncTests(DatabaseEngine.Sqlite);

public sealed class PostgresHistoryAndSyncTests() : HistoryAndSyncTests(DatabaseEngine.Postgres);
