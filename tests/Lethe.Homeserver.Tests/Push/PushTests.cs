using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Push;

/// <summary>Push rules, unread counts, notifications and pushers against a real push gateway, on both engines.</summary>
public abstract partial class PushTests(DatabaseEngine engine) : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    protected TestClock Clock { get; } = new();

    protected TestHomeserver Server { get; private set; } = null!;

    protected TestPushGateway Gateway { get; private set; } = null!;

    protected MatrixClient Alice { get; private set; } = null!;

    protected MatrixClient Bob { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Gateway = await TestPushGateway.StartAsync();
        Server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + """
            ip_range_whitelist: ["127.0.0.1"]
            retention:
              enabled: true
              purge_jobs:
                - interval: 1y

            """, clock: Clock);
        Alice = await Server.RegisterAsync("alice");
        Bob = await Server.RegisterAsync("bob");
        Server.Host.Services.Push.Delivery!.FirstRetry = TimeSpan.FromMilliseconds(200);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        await Gateway.DisposeAsync();
    }

    private async Task<string> SharedRoomAsync(JsonObject? extra = null)
    {
        var body = extra ?? new JsonObject();
        body["preset"] = "public_chat";
        var roomId = await Alice.CreateRoomAsync(body);
        await Bob.JoinAsync(roomId);
        return roomId;
    }

    private static async Task<(int Notifications, int Highlights)> CountsAsync(MatrixClient who, string roomId)
    {
        var room = (await who.SyncAsync()).JoinedRoom(roomId)!;
        var unread = room["unread_notifications"]!;
        return (unread["notification_count"]!.GetValue<int>(), unread["highlight_count"]!.GetValue<int>());
    }

    private static async Task<string> SendAsync(MatrixClient who, string roomId, JsonObject content, string type = "m.room.message") =>
        (await who.SendEventAsync(roomId, type, content)).Ok()["event_id"]!.GetValue<string>();

    private static JsonObject Text(string body) => new() { ["msgtype"] = "m.text", ["body"] = body };

    private static async Task ReadAsync(MatrixClient who, string roomId, string eventId, string? thread = null) =>
        (await who.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/receipt/m.read/{Uri.EscapeDataString(eventId)}",
            thread is null ? new JsonObject() : new JsonObject { ["thread_id"] = thread })).Ok();

    private Task<MatrixClient.Response> SetPusherAsync(MatrixClient who, string pushkey, JsonObject? data = null, bool append = false) =>
        who.PostAsync("/_matrix/client/v3/pushers/set", new JsonObject
        {
            ["pushkey"] = pushkey,
            ["kind"] = "http",
            ["app_id"] = "org.example.app",
            ["app_display_name"] = "Example",
            ["device_display_name"] = "Phone",
            ["lang"] = "en",
            ["data"] = data ?? new JsonObject { ["url"] = Gateway.NotifyUrl, ["custom"] = "kept" },
            ["append"] = append,
        });

    [Fact]
    public async Task DefaultRulesAreServedAndInTheInitialSync()
    {
        var rules = (await Bob.GetAsync("/_matrix/client/v3/pushrules/")).Ok()["global"]!;
        var overrides = rules["override"]!.AsArray().Select(r => r!["rule_id"]!.GetValue<string>()).ToList();
        Assert.Equal(".m.rule.master", overrides[0]);
        Assert.Contains(".m.rule.is_user_mention", overrides);
        Assert.Contains(".m.rule.suppress_edits", overrides);
        Assert.Contains(".m.rule.tombstone", overrides);
        var mention = rules["override"]!.AsArray().First(r => r!["rule_id"]!.GetValue<string>() == ".m.rule.is_user_mention")!;
        Assert.Equal(Bob.UserId, mention["conditions"]![0]!["value"]!.GetValue<string>());
        Assert.Equal("bob", rules["content"]![0]!["pattern"]!.GetValue<string>());
        Assert.Equal(
            [".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one", ".m.rule.message", ".m.rule.encrypted"],
            rules["underride"]!.AsArray().Select(r => r!["rule_id"]!.GetValue<string>()));
        Assert.Equal(rules.ToJsonString(), (await Bob.GetAsync("/_matrix/client/v3/pushrules/global/")).Ok().ToJsonString());
        Assert.False((await Bob.GetAsync("/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled")).Ok()["enabled"]!.GetValue<bool>());

        var viaAccountData = (await Bob.GetAsync($"/_matrix/client/v3/user/{Uri.EscapeDataString(Bob.UserId)}/account_data/m.push_rules")).Ok();
        Assert.Equal(rules.ToJsonString(), viaAccountData["global"]!.ToJsonString());

        var sync = await Bob.SyncAsync();
        var pushRules = sync["account_data"]!["events"]!.AsArray().Single(e => e!["type"]!.GetValue<string>() == "m.push_rules")!;
        Assert.Equal(rules.ToJsonString(), pushRules["content"]!["global"]!.ToJsonString());
    }

    [Fact]
    public async Task TheRulesApiRoundTripsEveryKindAndSyncShowsChanges()
    {
        var since = (await Bob.SyncAsync())["next_batch"]!.GetValue<string>();
        const string Base = "/_matrix/client/v3/pushrules/global";
        (await Bob.PutAsync($"{Base}/override/first", new JsonObject
        {
            ["conditions"] = new JsonArray(new JsonObject { ["kind"] = "event_match", ["key"] = "content.body", ["pattern"] = "urgent" }),
            ["actions"] = new JsonArray("notify"),
        })).Ok();
        (await Bob.PutAsync($"{Base}/override/second", new JsonObject { ["conditions"] = new JsonArray(), ["actions"] = new JsonArray() })).Ok();
        (await Bob.PutAsync($"{Base}/override/middle?after=second", new JsonObject { ["actions"] = new JsonArray() })).Ok();
        (await Bob.PutAsync($"{Base}/override/top?before=second", new JsonObject { ["actions"] = new JsonArray() })).Ok();
        (await Bob.PutAsync($"{Base}/underride/low", new JsonObject
        {
            ["conditions"] = new JsonArray(new JsonObject { ["kind"] = "room_member_count", ["is"] = ">=3" }),
            ["actions"] = new JsonArray("notify", new JsonObject { ["set_tweak"] = "sound", ["value"] = "bell" }),
        })).Ok();
        (await Bob.PutAsync($"{Base}/content/cake", new JsonObject { ["pattern"] = "cake*", ["actions"] = new JsonArray("notify") })).Ok();
        (await Bob.PutAsync($"{Base}/room/{Uri.EscapeDataString("!abc:test.local")}", new JsonObject { ["actions"] = new JsonArray() })).Ok();
        (await Bob.PutAsync($"{Base}/sender/{Uri.EscapeDataString("@spam:test.local")}", new JsonObject { ["actions"] = new JsonArray() })).Ok();

        var global = (await Bob.GetAsync($"{Base}/")).Ok();
        Assert.Equal([".m.rule.master", "top", "second", "middle", "first"], global["override"]!.AsArray().Take(5).Select(r => r!["rule_id"]!.GetValue<string>()));
        Assert.Equal("low", global["underride"]![0]!["rule_id"]!.GetValue<string>());
        Assert.Equal("cake", global["content"]![0]!["rule_id"]!.GetValue<string>());
        Assert.Equal("!abc:test.local", global["room"]![0]!["rule_id"]!.GetValue<string>());
        Assert.Equal("@spam:test.local", global["sender"]![0]!["rule_id"]!.GetValue<string>());

        var cake = (await Bob.GetAsync($"{Base}/content/cake")).Ok();
        Assert.Equal("cake*", cake["pattern"]!.GetValue<string>());
        Assert.True(cake["enabled"]!.GetValue<bool>());
        Assert.False(cake["default"]!.GetValue<bool>());

        (await Bob.PutAsync($"{Base}/content/cake/enabled", new JsonObject { ["enabled"] = false })).Ok();
        Assert.False((await Bob.GetAsync($"{Base}/content/cake/enabled")).Ok()["enabled"]!.GetValue<bool>());
        (await Bob.PutAsync($"{Base}/underride/.m.rule.message/actions", new JsonObject { ["actions"] = new JsonArray() })).Ok();
        Assert.Empty((await Bob.GetAsync($"{Base}/underride/.m.rule.message/actions")).Ok()["actions"]!.AsArray());
        (await Bob.PutAsync($"{Base}/override/.m.rule.master/enabled", new JsonObject { ["enabled"] = true })).Ok();

        (await Bob.DeleteAsync($"{Base}/override/middle")).Ok();
        (await Bob.GetAsync($"{Base}/override/middle")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await Bob.DeleteAsync($"{Base}/override/middle")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");

        // The changes reach /sync as m.push_rules account data.
        var sync = await Bob.SyncAsync(since);
        var content = sync["account_data"]!["events"]!.AsArray().Last(e => e!["type"]!.GetValue<string>() == "m.push_rules")!["content"]!["global"]!;
        Assert.Equal([".m.rule.master", "top", "second", "first"], content["override"]!.AsArray().Take(4).Select(r => r!["rule_id"]!.GetValue<string>()));
        Assert.True(content["override"]![0]!["enabled"]!.GetValue<bool>());
        Assert.False(content["content"]![0]!["enabled"]!.GetValue<bool>());
        Assert.Empty(content["underride"]!.AsArray().First(r => r!["rule_id"]!.GetValue<string>() == ".m.rule.message")!["actions"]!.AsArray());

        // The account data endpoint cannot bypass the rules API.
        (await Bob.PutAsync($"/_matrix/client/v3/user/{Uri.EscapeDataString(Bob.UserId)}/account_data/m.push_rules", new JsonObject())).Is(HttpStatusCode.MethodNotAllowed);
    }

    [Fact]
    public async Task BadRuleBodiesGetClearErrors()
    {
        const string Base = "/_matrix/client/v3/pushrules/global";
        (await Bob.PutAsync($"{Base}/override/r1", new JsonObject())).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await Bob.PutAsync($"{Base}/override/r1", new JsonObject { ["actions"] = "notify" })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await Bob.PutAsync($"{Base}/override/r1", new JsonObject { ["actions"] = new JsonArray("shout") })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Bob.PutAsync($"{Base}/override/r1", new JsonObject { ["actions"] = new JsonArray(new JsonObject { ["value"] = 1 }) })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Bob.PutAsync($"{Base}/override/r1", new JsonObject { ["actions"] = new JsonArray(), ["conditions"] = new JsonArray(new JsonObject { ["key"] = "type" }) })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await Bob.PutAsync($"{Base}/override/r1", new JsonObject { ["actions"] = new JsonArray(), ["conditions"] = new JsonArray(new JsonObject { ["kind"] = "event_match", ["key"] = "type" }) })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await Bob.PutAsync($"{Base}/override/r1", new JsonObject { ["actions"] = new JsonArray(), ["conditions"] = new JsonArray(new JsonObject { ["kind"] = "room_member_count", ["is"] = "lots" }) })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Bob.PutAsync($"{Base}/override/r1", new JsonObject { ["actions"] = new JsonArray(), ["conditions"] = new JsonArray(new JsonObject { ["kind"] = "event_property_is", ["key"] = "x", ["value"] = new JsonObject() }) })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Bob.PutAsync($"{Base}/override/.m.rule.mine", new JsonObject { ["actions"] = new JsonArray() })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Bob.PutAsync($"{Base}/content/nopattern", new JsonObject { ["actions"] = new JsonArray() })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await Bob.PutAsync($"{Base}/room/not-a-room", new JsonObject { ["actions"] = new JsonArray() })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Bob.PutAsync($"{Base}/sender/nobody", new JsonObject { ["actions"] = new JsonArray() })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Bob.PutAsync($"{Base}/bogus/r1", new JsonObject { ["actions"] = new JsonArray() })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Bob.PutAsync("/_matrix/client/v3/pushrules/device/override/r1", new JsonObject { ["actions"] = new JsonArray() })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Bob.PutAsync($"{Base}/override/r1?before=nothing", new JsonObject { ["actions"] = new JsonArray() })).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await Bob.PutAsync($"{Base}/override/r1", "{not json")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
        (await Bob.PutAsync($"{Base}/override/.m.rule.master/enabled", new JsonObject { ["enabled"] = "yes" })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await Bob.PutAsync($"{Base}/override/nothing/actions", new JsonObject { ["actions"] = new JsonArray() })).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await Bob.DeleteAsync($"{Base}/override/.m.rule.master")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Bob.GetAsync($"{Base}/underride/.m.rule.master")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");

        // Nothing of the refused requests was stored.
        Assert.Equal(".m.rule.suppress_notices", (await Bob.GetAsync($"{Base}/")).Ok()["override"]![1]!["rule_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task MentionsHighlightAndIntentionalMentionsSilenceTheLegacyRules()
    {
        var roomId = await SharedRoomAsync();
        (await Bob.PutAsync($"/_matrix/client/v3/profile/{Uri.EscapeDataString(Bob.UserId)}/displayname", new JsonObject { ["displayname"] = "Bobby Tables" })).Ok();

        await SendAsync(Alice, roomId, Text("plain message"));
        Assert.Equal((1, 0), await CountsAsync(Bob, roomId));

        await SendAsync(Alice, roomId, Text("hello bobby tables, how are you?"));
        Assert.Equal((2, 1), await CountsAsync(Bob, roomId));

        var mention = Text("hi there");
        mention["m.mentions"] = new JsonObject { ["user_ids"] = new JsonArray(Bob.UserId) };
        await SendAsync(Alice, roomId, mention);
        Assert.Equal((3, 2), await CountsAsync(Bob, roomId));

        // With m.mentions present and Bob not in it, naming him in the body does not highlight.
        var notMentioned = Text("Bobby Tables said so");
        notMentioned["m.mentions"] = new JsonObject();
        await SendAsync(Alice, roomId, notMentioned);
        Assert.Equal((4, 2), await CountsAsync(Bob, roomId));

        // Notices and edits do not notify; the sender's own messages never count for them.
        await SendAsync(Alice, roomId, new JsonObject { ["msgtype"] = "m.notice", ["body"] = "bot says hi" });
        Assert.Equal((4, 2), await CountsAsync(Bob, roomId));
        Assert.Equal((0, 0), await CountsAsync(Alice, roomId));

        // @room from someone with the power to notify the room highlights.
        var roomMention = Text("everyone look");
        roomMention["m.mentions"] = new JsonObject { ["room"] = true };
        await SendAsync(Alice, roomId, roomMention);
        Assert.Equal((5, 3), await CountsAsync(Bob, roomId));

        // ...but not from someone without it (notifications.room defaults to 50; Bob is at 0).
        var fromBob = Text("everyone look");
        fromBob["m.mentions"] = new JsonObject { ["room"] = true };
        await SendAsync(Bob, roomId, fromBob);
        Assert.Equal((1, 0), await CountsAsync(Alice, roomId));
    }

    [Fact]
    public async Task AMutedRoomDoesNotNotifyAndAKeywordRuleFires()
    {
        var muted = await SharedRoomAsync();
        var other = await SharedRoomAsync();
        (await Bob.PutAsync($"/_matrix/client/v3/pushrules/global/room/{Uri.EscapeDataString(muted)}", new JsonObject { ["actions"] = new JsonArray() })).Ok();
        (await Bob.PutAsync("/_matrix/client/v3/pushrules/global/content/cake", new JsonObject
        {
            ["pattern"] = "cake",
            ["actions"] = new JsonArray("notify", new JsonObject { ["set_tweak"] = "highlight" }),
        })).Ok();

        await SendAsync(Alice, muted, Text("anyone there?"));
        await SendAsync(Alice, muted, Text("hello there"));
        Assert.Equal((0, 0), await CountsAsync(Bob, muted));

        // Content rules outrank room rules (override, content, room, sender, underride): the keyword still fires there.
        await SendAsync(Alice, muted, Text("there is cake"));
        Assert.Equal((1, 1), await CountsAsync(Bob, muted));

        await SendAsync(Alice, other, Text("there is CAKE in the kitchen"));
        await SendAsync(Alice, other, Text("cakes are not the word"));
        Assert.Equal((2, 1), await CountsAsync(Bob, other));

        // The notifications list shows them, newest first; only=highlight keeps the keyword hit.
        var all = (await Bob.GetAsync("/_matrix/client/v3/notifications")).Ok()["notifications"]!.AsArray();
        Assert.Equal(["cakes are not the word", "there is CAKE in the kitchen", "there is cake"], all.Select(n => n!["event"]!["content"]!["body"]!.GetValue<string>()));
        Assert.All(all, n => Assert.False(n!["read"]!.GetValue<bool>()));
        var highlights = (await Bob.GetAsync("/_matrix/client/v3/notifications?only=highlight")).Ok()["notifications"]!.AsArray();
        Assert.Equal(["there is CAKE in the kitchen", "there is cake"], highlights.Select(n => n!["event"]!["content"]!["body"]!.GetValue<string>()));
        Assert.Contains(highlights[0]!["actions"]!.AsArray(), a => a is JsonObject o && o["set_tweak"]?.GetValue<string>() == "highlight" && o["value"]!.GetValue<bool>());
        var paged = (await Bob.GetAsync("/_matrix/client/v3/notifications?limit=1")).Ok();
        var next = paged["next_token"]!.GetValue<string>();
        var second = (await Bob.GetAsync($"/_matrix/client/v3/notifications?limit=1&from={next}")).Ok()["notifications"]!.AsArray();
        Assert.Equal("there is CAKE in the kitchen", Assert.Single(second)!["event"]!["content"]!["body"]!.GetValue<string>());
        (await Bob.GetAsync("/_matrix/client/v3/notifications?limit=nope")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }

    [Fact]
    public async Task AMutedRoomStaysMutedAfterAnUpgrade()
    {
        var roomId = await SharedRoomAsync();
        const string Base = "/_matrix/client/v3/pushrules/global";
        (await Bob.PutAsync($"{Base}/room/{Uri.EscapeDataString(roomId)}", new JsonObject { ["actions"] = new JsonArray() })).Ok();
        (await Bob.PutAsync($"{Base}/override/{Uri.EscapeDataString(roomId)}", new JsonObject
        {
            ["conditions"] = new JsonArray(new JsonObject { ["kind"] = "event_match", ["key"] = "room_id", ["pattern"] = roomId }),
            ["actions"] = new JsonArray(),
        })).Ok();

        var newRoom = (await Alice.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/upgrade", new JsonObject { ["new_version"] = "11" })).Ok()["replacement_room"]!.GetValue<string>();
        await Bob.JoinAsync(newRoom);
        var global = (await Bob.GetAsync($"{Base}/")).Ok();
        Assert.Contains(global["room"]!.AsArray(), r => r!["rule_id"]!.GetValue<string>() == newRoom);
        var copied = global["override"]!.AsArray().Single(r => r!["rule_id"]!.GetValue<string>() == newRoom)!;
        Assert.Equal(newRoom, copied["conditions"]![0]!["pattern"]!.GetValue<string>());
        await SendAsync(Alice, newRoom, Text("in the new room"));
        Assert.Equal((0, 0), await CountsAsync(Bob, newRoom));
    }

    [Fact]
    public async Task ReadReceiptsResetCountsPerThread()
    {
        var roomId = await SharedRoomAsync();
        var root = await SendAsync(Alice, roomId, Text("root"));
        await SendAsync(Alice, roomId, Text("two"));
        var inThread = Text("in thread");
        inThread["m.relates_to"] = new JsonObject { ["rel_type"] = "m.thread", ["event_id"] = root };
        var threadEvent = await SendAsync(Alice, roomId, inThread);
        await SendAsync(Alice, roomId, Text("three"));
        Assert.Equal((4, 0), await CountsAsync(Bob, roomId));

        // With unread_thread_notifications the thread is counted apart, and a thread receipt clears only it.
        var filter = """{"room":{"timeline":{"unread_thread_notifications":true}}}""";
        var room = (await Bob.SyncAsync(filter: filter)).JoinedRoom(roomId)!;
        Assert.Equal(3, room["unread_notifications"]!["notification_count"]!.GetValue<int>());
        Assert.Equal(1, room["unread_thread_notifications"]![root]!["notification_count"]!.GetValue<int>());
        // A reaction to the thread reply belongs to the thread (Bob has a rule that makes reactions notify).
        (await Bob.PutAsync("/_matrix/client/v3/pushrules/global/override/reactions", new JsonObject
        {
            ["conditions"] = new JsonArray(new JsonObject { ["kind"] = "event_match", ["key"] = "type", ["pattern"] = "m.reaction" }),
            ["actions"] = new JsonArray("notify"),
        })).Ok();
        var reaction = await SendAsync(Alice, roomId, new JsonObject
        {
            ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.annotation", ["event_id"] = threadEvent, ["key"] = "👍" },
        }, "m.reaction");
        room = (await Bob.SyncAsync(filter: filter)).JoinedRoom(roomId)!;
        Assert.Equal(2, room["unread_thread_notifications"]![root]!["notification_count"]!.GetValue<int>());
        Assert.Equal(3, room["unread_notifications"]!["notification_count"]!.GetValue<int>());

        await ReadAsync(Bob, roomId, reaction, thread: root);
        room = (await Bob.SyncAsync(filter: filter)).JoinedRoom(roomId)!;
        Assert.Null(room["unread_thread_notifications"]![root]);
        Assert.Equal(3, room["unread_notifications"]!["notification_count"]!.GetValue<int>());

        // An unthreaded receipt on the last event clears everything, and the notifications are marked read.
        await ReadAsync(Bob, roomId, reaction);
        Assert.Equal((0, 0), await CountsAsync(Bob, roomId));
        var notifications = (await Bob.GetAsync("/_matrix/client/v3/notifications")).Ok()["notifications"]!.AsArray();
        Assert.Equal(5, notifications.Count);
        Assert.All(notifications, n => Assert.True(n!["read"]!.GetValue<bool>()));
    }

    [Fact]
    public async Task CountsDropWhenACountedMessageIsRedactedOrExpires()
    {
        var roomId = await SharedRoomAsync();
        var first = await SendAsync(Alice, roomId, Text("one"));
        var mention = Text("two");
        mention["m.mentions"] = new JsonObject { ["user_ids"] = new JsonArray(Bob.UserId) };
        var second = await SendAsync(Alice, roomId, mention);
        Assert.Equal((2, 1), await CountsAsync(Bob, roomId));

        (await Alice.PutAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/redact/{Uri.EscapeDataString(second)}/r1", new JsonObject())).Ok();
        Assert.Equal((1, 0), await CountsAsync(Bob, roomId));
        Assert.DoesNotContain((await Bob.GetAsync("/_matrix/client/v3/notifications")).Ok()["notifications"]!.AsArray(), n => n!["event"]!["event_id"]!.GetValue<string>() == second);

        // A retention policy of one day: after two days the message has expired, before and after the purge.
        (await Alice.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["max_lifetime"] = 86_400_000 })).Ok();
        Assert.Equal((1, 0), await CountsAsync(Bob, roomId));
        Clock.Advance(TimeSpan.FromDays(2));
        Assert.Equal((0, 0), await CountsAsync(Bob, roomId));
        Assert.Empty((await Bob.GetAsync("/_matrix/client/v3/notifications")).Ok()["notifications"]!.AsArray());
        await Server.Host.Purger.RunAllAsync(CancellationToken.None);
        Assert.Equal((0, 0), await CountsAsync(Bob, roomId));
        var left = await Server.Host.Database.ReadAsync(c => Dapper.SqlMapper.ExecuteScalarAsync<long>(c, "SELECT COUNT(*) FROM event_push_actions WHERE event_id = @first", new { first }));
        Assert.Equal(0, left);
    }

    [Fact]
    public async Task TheGatewayGetsTheSpecBodyAndARetryAfterA500()
    {
        var roomId = await SharedRoomAsync();
        (await Alice.SetStateAsync(roomId, "m.room.name", new JsonObject { ["name"] = "Kitchen" })).Ok();
        (await SetPusherAsync(Bob, "key-1")).Ok();
        var pushers = (await Bob.GetAsync("/_matrix/client/v3/pushers")).Ok()["pushers"]!.AsArray();
        var pusher = Assert.Single(pushers)!;
        Assert.Equal("key-1", pusher["pushkey"]!.GetValue<string>());
        Assert.Equal(Gateway.NotifyUrl, pusher["data"]!["url"]!.GetValue<string>());

        Gateway.FailNext(1);
        var eventId = await SendAsync(Alice, roomId, Text("dinner is ready"));
        await Poll.UntilAsync(() => Task.FromResult(!Gateway.Received.IsEmpty), Wait, "the gateway receives the notification after one 500");
        Assert.True(Gateway.Attempts >= 2);
        var (body, length, chunked) = Assert.Single(Gateway.Received);
        Assert.False(chunked);
        Assert.True(length > 0);
        var n = body["notification"]!;
        Assert.Equal(eventId, n["event_id"]!.GetValue<string>());
        Assert.Equal(roomId, n["room_id"]!.GetValue<string>());
        Assert.Equal("m.room.message", n["type"]!.GetValue<string>());
        Assert.Equal(Alice.UserId, n["sender"]!.GetValue<string>());
        Assert.Equal("Kitchen", n["room_name"]!.GetValue<string>());
        Assert.Equal("dinner is ready", n["content"]!["body"]!.GetValue<string>());
        Assert.Equal(1, n["counts"]!["unread"]!.GetValue<int>());
        Assert.Equal("high", n["prio"]!.GetValue<string>()); // a one-to-one room: .m.rule.room_one_to_one sets a sound
        var device = Assert.Single(n["devices"]!.AsArray())!;
        Assert.Equal("org.example.app", device["app_id"]!.GetValue<string>());
        Assert.Equal("key-1", device["pushkey"]!.GetValue<string>());
        Assert.Equal("kept", device["data"]!["custom"]!.GetValue<string>());
        Assert.Null(device["data"]!["url"]);
        Assert.NotNull(device["tweaks"]);

        // Alice has no pusher and Bob's own messages do not push to him.
        await SendAsync(Bob, roomId, Text("coming"));
        Assert.True(await Server.Host.Services.Push.Delivery!.IdleAsync(Wait));
        Assert.Single(Gateway.Received);
    }

    [Fact]
    public async Task AGatewayRedirectIsNotFollowedNorRetried()
    {
        var roomId = await SharedRoomAsync();
        (await SetPusherAsync(Bob, "key-moved", new JsonObject { ["url"] = Gateway.MovedUrl })).Ok();
        await SendAsync(Alice, roomId, Text("where did you go"));
        await Poll.UntilAsync(() => Task.FromResult(Gateway.RedirectAttempts > 0), Wait, "the moved gateway is asked");
        Assert.True(await Server.Host.Services.Push.Delivery!.IdleAsync(Wait), "a redirect ends the delivery instead of retrying it");
        Assert.Equal(1, Gateway.RedirectAttempts);
        Assert.Empty(Gateway.Received); // the redirect's target, an address nobody checked, is never called
    }

    [Fact]
    public async Task EventIdOnlyAndEncryptedRoomsSendNoContent()
    {
        var roomId = await SharedRoomAsync();
        (await SetPusherAsync(Bob, "key-ids", new JsonObject { ["url"] = Gateway.NotifyUrl, ["format"] = "event_id_only" })).Ok();
        var mention = Text("secret plans");
        mention["m.mentions"] = new JsonObject { ["user_ids"] = new JsonArray(Bob.UserId) };
        await SendAsync(Alice, roomId, mention);
        await Poll.UntilAsync(() => Task.FromResult(!Gateway.Received.IsEmpty), Wait, "the event_id_only notification");
        var n = Gateway.Received.First().Body["notification"]!.AsObject();
        Assert.Null(n["content"]);
        Assert.Null(n["sender"]);
        Assert.Equal("high", n["prio"]!.GetValue<string>());
        Assert.True(n["devices"]![0]!["tweaks"]!["highlight"]!.GetValue<bool>());

        (await Bob.PostAsync("/_matrix/client/v3/pushers/set", new JsonObject { ["pushkey"] = "key-ids", ["app_id"] = "org.example.app", ["kind"] = null })).Ok();
        Assert.Empty((await Bob.GetAsync("/_matrix/client/v3/pushers")).Ok()["pushers"]!.AsArray());
        (await SetPusherAsync(Bob, "key-full")).Ok();
        var encrypted = await SharedRoomAsync();
        (await Alice.SetStateAsync(encrypted, "m.room.encryption", new JsonObject { ["algorithm"] = "m.megolm.v1.aes-sha2" })).Ok();
        await SendAsync(Alice, encrypted, new JsonObject { ["algorithm"] = "m.megolm.v1.aes-sha2", ["ciphertext"] = "AwgAEn...", ["session_id"] = "s", ["sender_key"] = "k", ["device_id"] = "D" }, "m.room.encrypted");
        await Poll.UntilAsync(() => Task.FromResult(Gateway.Received.Any(r => r.Body["notification"]!["room_id"]!.GetValue<string>() == encrypted)), Wait, "the encrypted room's notification");
        var e = Gateway.Received.Single(r => r.Body["notification"]!["room_id"]!.GetValue<string>() == encrypted).Body["notification"]!;
        Assert.Null(e["content"]);
        Assert.Null(e["sender"]);
        Assert.Null(e["type"]);
        Assert.NotNull(e["event_id"]);
    }

    [Fact]
    public async Task PusherUrlsAreCheckedAndRejectedOrDeletedDevicesLoseTheirPushers()
    {
        (await SetPusherAsync(Bob, "k", new JsonObject { ["url"] = "https://push.example.org/elsewhere" })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await SetPusherAsync(Bob, "k", new JsonObject { ["url"] = "not a url" })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await SetPusherAsync(Bob, "k", new JsonObject { ["url"] = Gateway.NotifyUrl, ["format"] = "full" })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await SetPusherAsync(Bob, "k", new JsonObject())).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await Bob.PostAsync("/_matrix/client/v3/pushers/set", new JsonObject { ["pushkey"] = "k", ["app_id"] = "a", ["kind"] = "email", ["app_display_name"] = "a", ["device_display_name"] = "d", ["lang"] = "en", ["data"] = new JsonObject() }))
            .Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");

        // A pushkey the gateway rejects is removed.
        var roomId = await SharedRoomAsync();
        (await SetPusherAsync(Bob, "stale-key")).Ok();
        Gateway.Reject.Add("stale-key");
        await SendAsync(Alice, roomId, Text("hello"));
        await Poll.UntilAsync(async () => (await Bob.GetAsync("/_matrix/client/v3/pushers")).Ok()["pushers"]!.AsArray().Count == 0, Wait, "the rejected pusher is removed");

        // Without append, another user's pusher with the same key is replaced; deleting the device deletes the pusher.
        (await SetPusherAsync(Alice, "shared")).Ok();
        (await SetPusherAsync(Bob, "shared")).Ok();
        Assert.Empty((await Alice.GetAsync("/_matrix/client/v3/pushers")).Ok()["pushers"]!.AsArray());
        var phone = Server.NewClient();
        await phone.LoginAsync("bob");
        (await SetPusherAsync(phone, "phone-key")).Ok();
        Assert.Equal(2, (await Bob.GetAsync("/_matrix/client/v3/pushers")).Ok()["pushers"]!.AsArray().Count);
        (await phone.PostAsync("/_matrix/client/v3/logout", new JsonObject())).Ok();
        var left = (await Bob.GetAsync("/_matrix/client/v3/pushers")).Ok()["pushers"]!.AsArray();
        Assert.Equal("shared", Assert.Single(left)!["pushkey"]!.GetValue<string>());
    }
}

public sealed class SqlitePushTests() : PushTests(DatabaseEngine.Sqlite);

public sealed class PostgresPushTests() : PushTests(DatabaseEngine.Postgres);
