using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Rooms;

/// <summary>Creating rooms, sending, state, membership and power levels, on both database engines.</summary>
public abstract class RoomLifecycleTests(DatabaseEngine engine) : IAsyncLifetime
{
    protected TestHomeserver Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    [Fact]
    public async Task CreateRoomSetsThePresetStateInSpecOrder()
    {
        var alice = await Server.RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["name"] = "Tea", ["topic"] = "Leaves", ["preset"] = "public_chat", ["room_alias_name"] = "tea" });
        var state = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state")).Expect(HttpStatusCode.OK);
        _ = state;
        var events = JsonNode.Parse(await (await Server.Client.SendAsync(Authed(alice, HttpMethod.Get, $"/_matrix/client/v3/rooms/{roomId}/state"))).Content.ReadAsStringAsync())!.AsArray();
        var types = events.Select(e => e!["type"]!.GetValue<string>()).ToList();
        Assert.Equal(["m.room.create", "m.room.member", "m.room.power_levels", "m.room.canonical_alias", "m.room.join_rules", "m.room.history_visibility", "m.room.name", "m.room.topic"], types);
        Assert.Equal("public", events.Single(e => e!["type"]!.GetValue<string>() == "m.room.join_rules")!["content"]!["join_rule"]!.GetValue<string>());
        Assert.Equal("11", events[0]!["content"]!["room_version"]!.GetValue<string>());
        Assert.False(events[0]!["content"]!.AsObject().ContainsKey("creator"), "v11 create events have no creator");
        Assert.Equal("Tea", (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.name/")).Ok()["name"]!.GetValue<string>());
        Assert.Equal("#tea:test.local", (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.canonical_alias")).Ok()["alias"]!.GetValue<string>());
        var joined = (await alice.GetAsync("/_matrix/client/v3/joined_rooms")).Ok()["joined_rooms"]!.AsArray();
        Assert.Equal(roomId, Assert.Single(joined)!.GetValue<string>());
    }

    [Theory]
    [InlineData("1")]
    [InlineData("2")]
    [InlineData("3")]
    [InlineData("4")]
    [InlineData("5")]
    [InlineData("6")]
    [InlineData("7")]
    [InlineData("8")]
    [InlineData("9")]
    [InlineData("10")]
    [InlineData("11")]
    [InlineData("12")]
    public async Task EveryRoomVersionCanBeCreatedJoinedAndTalkedIn(string version)
    {
        var alice = await Server.RegisterAsync("a" + version);
        var bob = await Server.RegisterAsync("b" + version);
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["room_version"] = version, ["preset"] = "public_chat" });
        if (version == "12")
        {
            Assert.DoesNotContain(':', roomId);
        }

        await bob.JoinAsync(roomId);
        await alice.SendTextAsync(roomId, "hi in v" + version);
        await bob.SendTextAsync(roomId, "hello back");
        var sync = await bob.SyncAsync();
        Assert.Equal(["hi in v" + version, "hello back"], sync.Timeline(roomId).Bodies());

        // Event IDs take the room version's form.
        var id = sync.Timeline(roomId).Last()!["event_id"]!.GetValue<string>();
        Assert.Matches(version is "1" or "2" ? @"^\$[A-Za-z]+:test\.local$" : version == "3" ? @"^\$[A-Za-z0-9+/]{43}$" : @"^\$[A-Za-z0-9_-]{43}$", id);
    }

    [Fact]
    public async Task BadCreateRoomRequestsGetClearErrors()
    {
        var alice = await Server.RegisterAsync("carol");
        (await alice.PostAsync("/_matrix/client/v3/createRoom", new JsonObject { ["room_version"] = "99" })).Error(HttpStatusCode.BadRequest, "M_UNSUPPORTED_ROOM_VERSION");
        (await alice.PostAsync("/_matrix/client/v3/createRoom", new JsonObject { ["preset"] = "party" })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PostAsync("/_matrix/client/v3/createRoom", new JsonObject { ["name"] = 5 })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.PostAsync("/_matrix/client/v3/createRoom", new JsonObject { ["invite"] = new JsonArray("not a user") })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PostAsync("/_matrix/client/v3/createRoom", new JsonObject { ["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.member", ["state_key"] = "@x:localhost", ["content"] = new JsonObject { ["membership"] = "join" } }) }))
            .Error(HttpStatusCode.BadRequest, "M_INVALID_ROOM_STATE");
        await alice.CreateRoomAsync(new JsonObject { ["room_alias_name"] = "taken" });
        (await alice.PostAsync("/_matrix/client/v3/createRoom", new JsonObject { ["room_alias_name"] = "taken" })).Error(HttpStatusCode.BadRequest, "M_ROOM_IN_USE");
        (await alice.PostAsync("/_matrix/client/v3/createRoom", new JsonObject { ["room_alias_name"] = "has space" })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Server.NewClient().PostAsync("/_matrix/client/v3/createRoom", new JsonObject())).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
    }

    [Fact]
    public async Task NonMembersCanNeitherReadNorSend()
    {
        var alice = await Server.RegisterAsync("dave");
        var eve = await Server.RegisterAsync("eve");
        var roomId = await alice.CreateRoomAsync();
        var secret = await alice.SendTextAsync(roomId, "secret");
        (await eve.SendEventAsync(roomId, "m.room.message", new JsonObject { ["body"] = "x" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await eve.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{secret}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await eve.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await eve.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await eve.GetAsync($"/_matrix/client/v3/rooms/{roomId}/members")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await eve.PostAsync($"/_matrix/client/v3/rooms/{roomId}/join", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        Assert.Null((await eve.SyncAsync()).JoinedRoom(roomId));
        // An unknown room looks the same as a room you are not in.
        (await eve.GetAsync("/_matrix/client/v3/rooms/!nope:test.local/state")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
    }

    [Fact]
    public async Task TransactionIdsMakeSendsIdempotentPerDevice()
    {
        var alice = await Server.RegisterAsync("fay");
        var roomId = await alice.CreateRoomAsync();
        var content = new JsonObject { ["msgtype"] = "m.text", ["body"] = "once" };
        var first = (await alice.SendEventAsync(roomId, "m.room.message", content, "txn-1")).Ok()["event_id"]!.GetValue<string>();
        var again = (await alice.SendEventAsync(roomId, "m.room.message", content, "txn-1")).Ok()["event_id"]!.GetValue<string>();
        Assert.Equal(first, again);
        var other = (await alice.SendEventAsync(roomId, "m.room.message", content, "txn-2")).Ok()["event_id"]!.GetValue<string>();
        Assert.NotEqual(first, other);

        // Another device of the same user has its own transaction namespace.
        var laptop = Server.NewClient();
        await laptop.LoginAsync("fay");
        var fromLaptop = (await laptop.SendEventAsync(roomId, "m.room.message", content, "txn-1")).Ok()["event_id"]!.GetValue<string>();
        Assert.NotEqual(first, fromLaptop);

        var sync = await alice.SyncAsync();
        Assert.Equal(["once", "once", "once"], sync.Timeline(roomId).Bodies());
        var mine = sync.Timeline(roomId).Single(e => e!["event_id"]!.GetValue<string>() == first)!;
        Assert.Equal("txn-1", mine["unsigned"]!["transaction_id"]!.GetValue<string>());
        var laptops = sync.Timeline(roomId).Single(e => e!["event_id"]!.GetValue<string>() == fromLaptop)!;
        Assert.Null(laptops["unsigned"]!["transaction_id"]);
    }

    [Fact]
    public async Task ARetriedSendReturnsTheOriginalEvenWhenItCouldNoLongerBeSent()
    {
        var alice = await Server.RegisterAsync("hal");
        var bob = await Server.RegisterAsync("ida");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        var content = new JsonObject { ["msgtype"] = "m.text", ["body"] = "before leaving" };
        var first = (await bob.SendEventAsync(roomId, "m.room.message", content, "txn-l")).Ok()["event_id"]!.GetValue<string>();
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/leave", new JsonObject())).Ok();

        // The retry is not allowed as a new event any more, but it is the same request: the original is the answer.
        Assert.Equal(first, (await bob.SendEventAsync(roomId, "m.room.message", content, "txn-l")).Ok()["event_id"]!.GetValue<string>());
        (await bob.SendEventAsync(roomId, "m.room.message", content, "txn-new")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        Assert.Equal(["before leaving"], (await alice.SyncAsync()).Timeline(roomId).Bodies().Where(b => b == "before leaving"));
    }

    [Fact]
    public async Task EventLimitsAreEnforced()
    {
        var alice = await Server.RegisterAsync("gus");
        var roomId = await alice.CreateRoomAsync();
        (await alice.SendEventAsync(roomId, "m.room.message", new JsonObject { ["body"] = new string('x', 70_000) })).Error(HttpStatusCode.RequestEntityTooLarge, "M_TOO_LARGE");
        (await alice.SendEventAsync(roomId, new string('t', 256), new JsonObject())).Error(HttpStatusCode.BadRequest, "M_TOO_LARGE");
        (await alice.SetStateAsync(roomId, "m.custom", new JsonObject(), new string('k', 256))).Error(HttpStatusCode.BadRequest, "M_TOO_LARGE");
        (await alice.SendEventAsync(roomId, "m.room.message", "[1,2]")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
        (await alice.SendEventAsync(roomId, "m.room.message", "{\"n\":1.5}")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
        (await alice.SendEventAsync(roomId, "m.room.message", "{\"n\":9007199254740992}")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
        (await alice.SendEventAsync(roomId, "m.room.message", "{\"a\":1,\"a\":2}")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
        (await alice.SendEventAsync(roomId, "m.room.message", "{\"a\":\"\\ud800\"}")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
        (await alice.SendEventAsync(roomId, "m.room.message", new string('[', 100) + new string(']', 100))).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
    }

    [Fact]
    public async Task PowerLevelsDecideWhoMaySetState()
    {
        var alice = await Server.RegisterAsync("hal");
        var bob = await Server.RegisterAsync("ida");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        (await bob.SetStateAsync(roomId, "m.room.name", new JsonObject { ["name"] = "mine" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        var levels = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.power_levels")).Ok();
        levels["users"]![bob.UserId] = 50;
        (await alice.SetStateAsync(roomId, "m.room.power_levels", levels)).Ok();
        (await bob.SetStateAsync(roomId, "m.room.name", new JsonObject { ["name"] = "mine" })).Ok();
        // Bob cannot raise himself above his own level.
        var raise = (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.power_levels")).Ok();
        raise["users"]![bob.UserId] = 100;
        (await bob.SetStateAsync(roomId, "m.room.power_levels", raise)).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await bob.SetStateAsync(roomId, "m.room.create", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
    }

    [Fact]
    public async Task InviteJoinLeaveKickBanUnban()
    {
        var alice = await Server.RegisterAsync("jan");
        var bob = await Server.RegisterAsync("kim");
        var roomId = await alice.CreateRoomAsync();
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/join", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        await alice.InviteAsync(roomId, bob.UserId);
        (await alice.PostAsync($"/_matrix/client/v3/rooms/{roomId}/invite", new JsonObject { ["user_id"] = "@ghost:test.local" })).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        var invited = await bob.SyncAsync();
        var inviteState = invited["rooms"]!["invite"]![roomId]!["invite_state"]!["events"]!.AsArray();
        Assert.Contains(inviteState, e => e!["type"]!.GetValue<string>() == "m.room.member" && e["state_key"]!.GetValue<string>() == bob.UserId);
        Assert.Contains(inviteState, e => e!["type"]!.GetValue<string>() == "m.room.create");

        await bob.JoinAsync(roomId);
        (await alice.PostAsync($"/_matrix/client/v3/rooms/{roomId}/kick", new JsonObject { ["user_id"] = bob.UserId, ["reason"] = "out" })).Ok();
        var member = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.member/{bob.UserId}")).Ok();
        Assert.Equal("leave", member["membership"]!.GetValue<string>());
        Assert.Equal("out", member["reason"]!.GetValue<string>());

        await alice.InviteAsync(roomId, bob.UserId);
        await bob.JoinAsync(roomId);
        (await alice.PostAsync($"/_matrix/client/v3/rooms/{roomId}/ban", new JsonObject { ["user_id"] = bob.UserId })).Ok();
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/join", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await alice.PostAsync($"/_matrix/client/v3/rooms/{roomId}/invite", new JsonObject { ["user_id"] = bob.UserId })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await bob.SendEventAsync(roomId, "m.room.message", new JsonObject { ["body"] = "let me in" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await alice.PostAsync($"/_matrix/client/v3/rooms/{roomId}/unban", new JsonObject { ["user_id"] = bob.UserId })).Ok();
        (await alice.PostAsync($"/_matrix/client/v3/rooms/{roomId}/unban", new JsonObject { ["user_id"] = bob.UserId })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        await alice.InviteAsync(roomId, bob.UserId);
        await bob.JoinAsync(roomId);

        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/kick", new JsonObject { ["user_id"] = alice.UserId })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/forget", new JsonObject())).Error(HttpStatusCode.BadRequest, "M_UNKNOWN");
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/leave", new JsonObject())).Ok();
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/forget", new JsonObject())).Ok();
        var joined = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/joined_members")).Ok()["joined"]!.AsObject();
        Assert.Equal([alice.UserId], joined.Select(kv => kv.Key));
    }

    [Fact]
    public async Task MembersAtATokenShowThatMomentButNeverWhatHappenedAfterTheRequesterLeft()
    {
        var alice = await Server.RegisterAsync("mona");
        var bob = await Server.RegisterAsync("ned");
        var carol = await Server.RegisterAsync("olga");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        var beforeCarol = (await bob.SyncAsync())["next_batch"]!.GetValue<string>();
        await carol.JoinAsync(roomId);

        string[] Members(JsonObject page, string membership = "join") =>
            [.. page["chunk"]!.AsArray().Where(e => e!["content"]!["membership"]!.GetValue<string>() == membership).Select(e => e!["state_key"]!.GetValue<string>()).Order()];

        var path = $"/_matrix/client/v3/rooms/{roomId}/members";
        Assert.Equal(new[] { alice.UserId, bob.UserId }.Order(), Members((await bob.GetAsync($"{path}?at={beforeCarol}")).Ok()));
        Assert.Equal(new[] { alice.UserId, bob.UserId, carol.UserId }.Order(), Members((await bob.GetAsync(path)).Ok()));

        // Bob leaves; Dave joins and Carol leaves afterwards. Bob's view stops at his leave, whatever token he sends.
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/leave", new JsonObject())).Ok();
        var dave = await Server.RegisterAsync("dave");
        await dave.JoinAsync(roomId);
        (await carol.PostAsync($"/_matrix/client/v3/rooms/{roomId}/leave", new JsonObject())).Ok();
        var now = (await alice.SyncAsync())["next_batch"]!.GetValue<string>();
        foreach (var query in new[] { "", $"?at={now}" })
        {
            var seen = (await bob.GetAsync(path + query)).Ok();
            Assert.Equal(new[] { alice.UserId, carol.UserId }.Order(), Members(seen));
            Assert.Equal([bob.UserId], Members(seen, "leave"));
            Assert.DoesNotContain(seen["chunk"]!.AsArray(), e => e!["state_key"]!.GetValue<string>() == dave.UserId);
        }

        // Earlier tokens still show earlier moments; members see everything now.
        Assert.Equal(new[] { alice.UserId, bob.UserId }.Order(), Members((await bob.GetAsync($"{path}?at={beforeCarol}")).Ok()));
        Assert.Equal(new[] { alice.UserId, dave.UserId }.Order(), Members((await alice.GetAsync($"{path}?at={now}")).Ok()));
        var leftOnly = (await alice.GetAsync($"{path}?membership=leave")).Ok();
        Assert.Equal(new[] { bob.UserId, carol.UserId }.Order(), Members(leftOnly, "leave"));
        Assert.Equal(2, leftOnly["chunk"]!.AsArray().Count);
        Assert.DoesNotContain((await alice.GetAsync($"{path}?not_membership=join")).Ok()["chunk"]!.AsArray(), e => e!["content"]!["membership"]!.GetValue<string>() == "join");

        (await alice.GetAsync($"{path}?membership=joined")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.GetAsync($"{path}?not_membership=everyone")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.GetAsync($"{path}?at=not-a-token")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }

    [Fact]
    public async Task JoinByAliasAndKnock()
    {
        var alice = await Server.RegisterAsync("lou");
        var bob = await Server.RegisterAsync("max");
        var publicRoom = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["room_alias_name"] = "lobby" });
        await bob.JoinAsync("#lobby:test.local");
        (await bob.PostAsync("/_matrix/client/v3/join/%23nowhere:test.local", new JsonObject())).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        Assert.Contains(bob.UserId, (await alice.GetAsync($"/_matrix/client/v3/rooms/{publicRoom}/joined_members")).Ok()["joined"]!.AsObject().Select(kv => kv.Key));

        var knockRoom = await alice.CreateRoomAsync(new JsonObject { ["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.join_rules", ["content"] = new JsonObject { ["join_rule"] = "knock" } }) });
        (await bob.PostAsync($"/_matrix/client/v3/knock/{knockRoom}", new JsonObject { ["reason"] = "please" })).Ok();
        var member = (await alice.GetAsync($"/_matrix/client/v3/rooms/{knockRoom}/state/m.room.member/{bob.UserId}")).Ok();
        Assert.Equal("knock", member["membership"]!.GetValue<string>());
        await alice.InviteAsync(knockRoom, bob.UserId);
        await bob.JoinAsync(knockRoom);

        var v6 = await alice.CreateRoomAsync(new JsonObject { ["room_version"] = "6" });
        (await bob.PostAsync($"/_matrix/client/v3/knock/{v6}", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
    }

    [Fact]
    public async Task RestrictedRoomsAdmitMembersOfTheAllowedRoom()
    {
        var alice = await Server.RegisterAsync("ned");
        var bob = await Server.RegisterAsync("oli");
        var space = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        var restricted = await alice.CreateRoomAsync(new JsonObject
        {
            ["room_version"] = "10",
            ["initial_state"] = new JsonArray(new JsonObject
            {
                ["type"] = "m.room.join_rules",
                ["content"] = new JsonObject { ["join_rule"] = "restricted", ["allow"] = new JsonArray(new JsonObject { ["type"] = "m.room_membership", ["room_id"] = space }) },
            }),
        });
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{restricted}/join", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        await bob.JoinAsync(space);
        await bob.JoinAsync(restricted);
        var member = (await bob.GetAsync($"/_matrix/client/v3/rooms/{restricted}/state/m.room.member/{bob.UserId}")).Ok();
        Assert.Equal(alice.UserId, member["join_authorised_via_users_server"]!.GetValue<string>());
    }

    [Fact]
    public async Task RedactionsStripContentAndNeedPower()
    {
        var alice = await Server.RegisterAsync("pia");
        var bob = await Server.RegisterAsync("quy");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        var bobs = await bob.SendTextAsync(roomId, "oops");
        var alices = await alice.SendTextAsync(roomId, "admin words");
        (await bob.PutAsync($"/_matrix/client/v3/rooms/{roomId}/redact/{alices}/r1", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        var redaction = (await bob.PutAsync($"/_matrix/client/v3/rooms/{roomId}/redact/{bobs}/r2", new JsonObject { ["reason"] = "typo" })).Ok()["event_id"]!.GetValue<string>();
        (await alice.PutAsync($"/_matrix/client/v3/rooms/{roomId}/redact/$nope/r3", new JsonObject())).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");

        var redacted = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{bobs}")).Ok();
        Assert.Empty(redacted["content"]!.AsObject());
        Assert.Equal(redaction, redacted["unsigned"]!["redacted_because"]!["event_id"]!.GetValue<string>());
        Assert.Equal("typo", redacted["unsigned"]!["redacted_because"]!["content"]!["reason"]!.GetValue<string>());

        // The moderator can redact anyone's message.
        (await alice.PutAsync($"/_matrix/client/v3/rooms/{roomId}/redact/{alices}/r4", new JsonObject())).Ok();
        var timeline = (await bob.SyncAsync()).Timeline(roomId);
        Assert.DoesNotContain("oops", timeline.Bodies());
        Assert.DoesNotContain("admin words", timeline.Bodies());
        var redactionEvent = timeline.Single(e => e!["event_id"]!.GetValue<string>() == redaction)!;
        Assert.Equal(bobs, redactionEvent["redacts"]!.GetValue<string>());
        Assert.Equal(bobs, redactionEvent["content"]!["redacts"]!.GetValue<string>());
    }

    private static HttpRequestMessage Authed(MatrixClient c, HttpMethod method, string path)
    {
        var r = new HttpRequestMessage(method, path);
        r.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", c.AccessToken);
        return r;
    }
}

public sealed class SqliteRoomLifecycleTests() : RoomLifecycleTests(DatabaseEngine.Sqlite);

public sealed class PostgresRoomLifecycleTests() : RoomLifecycleTests(DatabaseEngine.Postgres);
