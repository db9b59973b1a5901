using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Homeserver.Tests.Relations;

namespace Lethe.Homeserver.Tests.Push;

/// <summary>
/// Unread counts across incremental syncs: the server keeps each count and reads on from it, so every step here
/// follows a sync that has already counted what the step changes.
/// </summary>
public abstract partial class PushTests
{
    private const string ThreadsApart = """{"room":{"timeline":{"unread_thread_notifications":true}}}""";

    [Fact]
    public async Task IncrementalSyncsCountNewMessagesAndDropRedactedOnes()
    {
        var roomId = await SharedRoomAsync();
        var bob = new RoomReader(Bob, roomId);
        Assert.Equal((0, 0), await bob.CountsAsync());

        await SendAsync(Alice, roomId, Text("one"));
        var mention = await SendAsync(Alice, roomId, Mention("two"));
        await SendAsync(Alice, roomId, Text("three"));
        Assert.Equal((3, 1), await bob.CountsAsync());
        var four = await SendAsync(Alice, roomId, Text("four"));
        Assert.Equal((4, 1), await bob.CountsAsync());

        // The highlighted message was counted by the syncs above; redacted, it counts no more.
        await Alice.RedactAsync(roomId, mention);
        Assert.Equal((3, 0), await bob.CountsAsync());
        await SendAsync(Alice, roomId, Mention("five"));
        Assert.Equal((4, 1), await bob.CountsAsync());

        // A receipt: only what follows it counts, and messages after it add to that.
        await ReadAsync(Bob, roomId, four);
        Assert.Equal((1, 1), await bob.CountsAsync());
        await SendAsync(Alice, roomId, Text("six"));
        Assert.Equal((2, 1), await bob.CountsAsync());
        await SendAsync(Bob, roomId, Text("my own"));
        Assert.Equal((2, 1), await bob.CountsAsync());
    }

    [Fact]
    public async Task IgnoringASenderTakesTheirMessagesOutOfTheCountAndUnignoringBringsThemBack()
    {
        var roomId = await SharedRoomAsync();
        var carol = await Server.RegisterAsync("carol");
        await carol.JoinAsync(roomId);
        var bob = new RoomReader(Bob, roomId);
        Assert.Equal((0, 0), await bob.CountsAsync());
        await SendAsync(carol, roomId, Text("from carol"));
        await SendAsync(Alice, roomId, Text("from alice"));
        Assert.Equal((2, 0), await bob.CountsAsync());

        await Bob.IgnoreAsync(carol.UserId);
        await SendAsync(Alice, roomId, Text("alice again"));
        Assert.Equal((2, 0), await bob.CountsAsync());
        await SendAsync(carol, roomId, Text("carol, ignored"));
        await SendAsync(Alice, roomId, Text("alice a third time"));
        Assert.Equal((3, 0), await bob.CountsAsync());

        await Bob.IgnoreAsync();
        await SendAsync(Alice, roomId, Text("alice, last"));
        Assert.Equal((6, 0), await bob.CountsAsync());
    }

    [Fact]
    public async Task ARejoinedRoomCountsFromTheRejoin()
    {
        var roomId = await SharedRoomAsync();
        var bob = new RoomReader(Bob, roomId);
        await SendAsync(Alice, roomId, Text("one"));
        await SendAsync(Alice, roomId, Text("two"));
        Assert.Equal((2, 0), await bob.CountsAsync());

        (await Bob.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/leave", new JsonObject())).Ok();
        await SendAsync(Alice, roomId, Text("while bob is away"));
        await Bob.JoinAsync(roomId);
        await SendAsync(Alice, roomId, Text("welcome back"));
        Assert.Equal((1, 0), await bob.CountsAsync());
    }

    [Fact]
    public async Task ThreadCountsStayRightAcrossIncrementalSyncsWithAndWithoutThreadsApart()
    {
        var roomId = await SharedRoomAsync();
        var threads = new RoomReader(Bob, roomId, ThreadsApart);
        var flat = new RoomReader(Bob, roomId);
        await threads.SyncAsync();
        await flat.SyncAsync();

        var root = await SendAsync(Alice, roomId, Text("root"));
        var first = await Alice.ReplyInThreadAsync(roomId, root, "first reply");
        var mention = Mention("second reply");
        mention["m.relates_to"] = new JsonObject { ["rel_type"] = "m.thread", ["event_id"] = root };
        await SendAsync(Alice, roomId, mention);
        var room = await threads.SyncAsync();
        Assert.Equal((1, 0), Counts(room["unread_notifications"]));
        Assert.Equal((2, 1), Counts(room["unread_thread_notifications"]![root]));
        Assert.Equal((3, 1), await flat.CountsAsync());

        var third = await Alice.ReplyInThreadAsync(roomId, root, "third reply");
        room = await threads.SyncAsync();
        Assert.Equal((1, 0), Counts(room["unread_notifications"]));
        Assert.Equal((3, 1), Counts(room["unread_thread_notifications"]![root]));
        Assert.Equal((4, 1), await flat.CountsAsync());

        // A counted reply is redacted: its thread counts one less.
        await Alice.RedactAsync(roomId, first);
        room = await threads.SyncAsync();
        Assert.Equal((2, 1), Counts(room["unread_thread_notifications"]![root]));
        Assert.Equal((3, 1), await flat.CountsAsync());

        // A thread receipt clears the thread only; a new reply counts from it.
        await ReadAsync(Bob, roomId, third, thread: root);
        room = await threads.SyncAsync();
        Assert.Equal((1, 0), Counts(room["unread_notifications"]));
        Assert.Null(room["unread_thread_notifications"]![root]);
        Assert.Equal((1, 0), await flat.CountsAsync());
        await Alice.ReplyInThreadAsync(roomId, root, "fourth reply");
        room = await threads.SyncAsync();
        Assert.Equal((1, 0), Counts(room["unread_thread_notifications"]![root]));
        Assert.Equal((2, 0), await flat.CountsAsync());
    }

    [Fact]
    public async Task ACountedMessageStopsCountingWhenItExpires()
    {
        var roomId = await SharedRoomAsync();
        (await Alice.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["max_lifetime"] = 86_400_000 })).Ok();
        var bob = new RoomReader(Bob, roomId);
        Assert.Equal((0, 0), await bob.CountsAsync());
        await SendAsync(Alice, roomId, Mention("old"));
        Clock.Advance(TimeSpan.FromHours(12));
        await SendAsync(Alice, roomId, Text("newer"));
        Assert.Equal((2, 1), await bob.CountsAsync());

        // A day after the first message, it has expired: the next sync counts the others only.
        Clock.Advance(TimeSpan.FromHours(13));
        await SendAsync(Alice, roomId, Text("newest"));
        Assert.Equal((2, 0), await bob.CountsAsync());
        Clock.Advance(TimeSpan.FromDays(2));
        await SendAsync(Alice, roomId, Text("after all expired"));
        Assert.Equal((1, 0), await bob.CountsAsync());
    }

    [Fact]
    public async Task ASelfDestructedMessageStopsCounting()
    {
        var roomId = await SharedRoomAsync();
        var bob = new RoomReader(Bob, roomId);
        Assert.Equal((0, 0), await bob.CountsAsync());
        var doomed = await SendAsync(Alice, roomId, new JsonObject
        {
            ["msgtype"] = "m.text",
            ["body"] = "gone in a minute",
            ["org.matrix.self_destruct_after"] = Server.Host.Services.NowMs + 60_000,
        });
        await SendAsync(Alice, roomId, Text("stays"));
        Assert.Equal((2, 0), await bob.CountsAsync());

        Clock.Advance(TimeSpan.FromMinutes(2));
        await Server.Host.SelfDestruct.RunDueAsync(CancellationToken.None);
        await Poll.UntilAsync(
            async () => (await Bob.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/event/{Uri.EscapeDataString(doomed)}")).Ok()["content"]!.AsObject().Count == 0,
            Wait,
            "the message is served redacted");
        await SendAsync(Alice, roomId, Text("after it"));
        Assert.Equal((2, 0), await bob.CountsAsync());
    }

    [Fact]
    public async Task PurgedHistoryStopsCounting()
    {
        await Accounts.UserStoreSeed.AdminAsync(Server, "root");
        var root = Server.NewClient();
        await root.LoginAsync("root");
        var roomId = await SharedRoomAsync();
        var bob = new RoomReader(Bob, roomId);
        Assert.Equal((0, 0), await bob.CountsAsync());
        await SendAsync(Alice, roomId, Text("old one"));
        await SendAsync(Alice, roomId, Text("old two"));
        Clock.Advance(TimeSpan.FromHours(1));
        var upTo = Server.Host.Services.NowMs;
        Clock.Advance(TimeSpan.FromHours(1));
        await SendAsync(Alice, roomId, Text("recent"));
        Assert.Equal((3, 0), await bob.CountsAsync());

        var purge = (await root.PostAsync($"/_synapse/admin/v1/purge_history/{Uri.EscapeDataString(roomId)}", new JsonObject { ["purge_up_to_ts"] = upTo, ["delete_local_events"] = true }))
            .Ok()["purge_id"]!.GetValue<string>();
        await Poll.UntilAsync(
            async () => (await root.GetAsync("/_synapse/admin/v1/purge_history_status/" + purge)).Ok()["status"]!.GetValue<string>() == "complete",
            Wait,
            "the purge completes");
        await SendAsync(Alice, roomId, Text("after the purge"));
        Assert.Equal((2, 0), await bob.CountsAsync());
    }

    [Fact]
    public async Task TheBadgeSentToTheGatewayFollowsNewAndRedactedMessages()
    {
        var roomId = await SharedRoomAsync();
        (await SetPusherAsync(Bob, "badge")).Ok();
        var first = await SendAsync(Alice, roomId, Text("one"));
        Assert.Equal(1, await BadgeOfPushAsync(first));
        var second = await SendAsync(Alice, roomId, Text("two"));
        Assert.Equal(2, await BadgeOfPushAsync(second));
        await Alice.RedactAsync(roomId, first);
        var third = await SendAsync(Alice, roomId, Text("three"));
        Assert.Equal(2, await BadgeOfPushAsync(third));
        await ReadAsync(Bob, roomId, third);
        var fourth = await SendAsync(Alice, roomId, Text("four"));
        Assert.Equal(1, await BadgeOfPushAsync(fourth));
    }

    [Fact]
    public async Task NoMoreThanTheCapCountsAcrossIncrementalSyncs()
    {
        const int Cap = Lethe.Homeserver.Push.NotificationCounts.MaxCounted;
        var roomId = await SharedRoomAsync();
        var bob = new RoomReader(Bob, roomId);
        var first = await SendAsync(Alice, roomId, Text("first"));
        await SendManyAsync(roomId, Cap - 2);
        Assert.Equal((Cap - 1, 0), await bob.CountsAsync());

        await SendManyAsync(roomId, 2);
        Assert.Equal((Cap, 0), await bob.CountsAsync());
        await SendManyAsync(roomId, 1);
        Assert.Equal((Cap, 0), await bob.CountsAsync());

        // One of the counted messages goes: the next one up takes its place.
        await Alice.RedactAsync(roomId, first);
        Assert.Equal((Cap, 0), await bob.CountsAsync());
    }

    private async Task SendManyAsync(string roomId, int n)
    {
        // A few at a time: the room takes them one after another anyway, this only saves round trips.
        for (var sent = 0; sent < n; sent += 8)
        {
            await Task.WhenAll(Enumerable.Range(sent, Math.Min(8, n - sent)).Select(i => SendAsync(Alice, roomId, Text("message " + i))));
        }
    }

    private async Task<int> BadgeOfPushAsync(string eventId)
    {
        JsonObject? push = null;
        await Poll.UntilAsync(
            () => Task.FromResult((push = Gateway.Received.Select(r => r.Body).FirstOrDefault(b => b["notification"]!["event_id"]?.GetValue<string>() == eventId)) is not null),
            Wait,
            "the gateway receives the push of " + eventId);
        return push!["notification"]!["counts"]!["unread"]!.GetValue<int>();
    }

    private JsonObject Mention(string body) => new()
    {
        ["msgtype"] = "m.text",
        ["body"] = body,
        ["m.mentions"] = new JsonObject { ["user_ids"] = new JsonArray(Bob.UserId) },
    };

    private static (int Notifications, int Highlights) Counts(JsonNode? unread) =>
        (unread!["notification_count"]!.GetValue<int>(), unread["highlight_count"]!.GetValue<int>());

    /// <summary>A client that syncs on from its last batch, as one showing the room list does.</summary>
    private sealed class RoomReader(MatrixClient client, string roomId, string? filter = null)
    {
        private string? _since;

        /// <summary>The room's section of the next sync (which must hold it).</summary>
        public async Task<JsonObject> SyncAsync()
        {
            var sync = await client.SyncAsync(_since, filter: filter);
            _since = sync["next_batch"]!.GetValue<string>();
            return sync.JoinedRoom(roomId) ?? throw new Xunit.Sdk.XunitException("the sync has no section for the room");
        }

        /// <summary>The room's <c>unread_notifications</c> in the next sync.</summary>
        public async Task<(int Notifications, int Highlights)> CountsAsync() => Counts((await SyncAsync())["unread_notifications"]);
    }
}
