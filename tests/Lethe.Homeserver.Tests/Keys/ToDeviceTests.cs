using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Keys;

/// <summary>To-device messages: per-device inboxes, delivery in /sync until acknowledged, idempotent sends.</summary>
public sealed class ToDeviceTests
{
    private static JsonObject Messages(string userId, string deviceId, string text) => new()
    {
        ["messages"] = new JsonObject { [userId] = new JsonObject { [deviceId] = new JsonObject { ["text"] = text } } },
    };

    private static List<string> Texts(JsonObject sync) =>
        sync["to_device"]!["events"]!.AsArray().Select(e => e!["content"]!["text"]!.GetValue<string>()).ToList();

    [Theory]
    [InlineData(DatabaseEngine.Sqlite)]
    [InlineData(DatabaseEngine.Postgres)]
    public async Task MessagesAreDeliveredUntilAcknowledgedAndExactlyOnceAcrossARestart(DatabaseEngine engine)
    {
        var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);
        LetheHost? second = null;
        try
        {
            var alice = await server.RegisterAsync("alice");
            var bob = await server.RegisterAsync("bob");
            var initial = await bob.SyncAsync();
            var since = initial["next_batch"]!.GetValue<string>();

            (await alice.PutAsync($"/_matrix/client/v3/sendToDevice/m.room_key_request/t1", Messages(bob.UserId, bob.DeviceId, "one"))).Ok();
            var first = await bob.SyncAsync(since);
            Assert.Equal(["one"], Texts(first));
            var e = first["to_device"]!["events"]![0]!;
            Assert.Equal("m.room_key_request", e["type"]!.GetValue<string>());
            Assert.Equal(alice.UserId, e["sender"]!.GetValue<string>());

            // The client lost that response: syncing again from the same token delivers the message again.
            Assert.Equal(["one"], Texts(await bob.SyncAsync(since)));

            // Using the next token acknowledges it; a second message arrives before a restart and is not yet synced.
            var next = first["next_batch"]!.GetValue<string>();
            (await alice.PutAsync($"/_matrix/client/v3/sendToDevice/m.room_key_request/t2", Messages(bob.UserId, bob.DeviceId, "two"))).Ok();
            var afterAck = await bob.SyncAsync(next);
            Assert.Equal(["two"], Texts(afterAck));
            var nextAfterTwo = afterAck["next_batch"]!.GetValue<string>();

            // Restart the server on the same database.
            await server.Host.StopAsync();
            second = await LetheHost.StartAsync(ConfigLoader.LoadFile(Path.Combine(server.Dir, "homeserver.yaml")), _ => { });
            using var http = new HttpClient { BaseAddress = new Uri(second.Addresses[0] + "/") };
            var bob2 = new MatrixClient(http, bob.AccessToken);
            var alice2 = new MatrixClient(http, alice.AccessToken);

            // "one" was acknowledged and is gone; "two" is still there for a client that did not see it...
            Assert.Equal(["two"], Texts(await bob2.SyncAsync(next)));

            // ...and gone for the client that did; a message sent after the restart arrives once.
            (await alice2.PutAsync($"/_matrix/client/v3/sendToDevice/m.room_key_request/t3", Messages(bob.UserId, bob.DeviceId, "three"))).Ok();
            var afterRestart = await bob2.SyncAsync(nextAfterTwo);
            Assert.Equal(["three"], Texts(afterRestart));
            Assert.Empty(Texts(await bob2.SyncAsync(afterRestart["next_batch"]!.GetValue<string>())));
            Assert.Equal(0, await second.Services.ToDevice.CountAsync(bob.UserId, bob.DeviceId));

            // The transaction ID is remembered across the restart too: a retried t1 is not delivered again.
            (await alice2.PutAsync($"/_matrix/client/v3/sendToDevice/m.room_key_request/t1", Messages(bob.UserId, bob.DeviceId, "one"))).Ok();
            Assert.Equal(0, await second.Services.ToDevice.CountAsync(bob.UserId, bob.DeviceId));
        }
        finally
        {
            if (second is not null)
            {
                await second.DisposeAsync();
            }

            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task RetriedTransactionsDeliverOnceAndStarReachesEveryDevice()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        var bobPhone = server.NewClient();
        await bobPhone.LoginAsync("bob");
        var sinceLaptop = (await bob.SyncAsync())["next_batch"]!.GetValue<string>();
        var sincePhone = (await bobPhone.SyncAsync())["next_batch"]!.GetValue<string>();

        var star = Messages(bob.UserId, "*", "to all");
        (await alice.PutAsync("/_matrix/client/v3/sendToDevice/m.test/same", star)).Ok();
        (await alice.PutAsync("/_matrix/client/v3/sendToDevice/m.test/same", star)).Ok();

        // "*" plus a named device of the same user delivers once per device, the named device getting its own message.
        var both = new JsonObject
        {
            ["messages"] = new JsonObject { [bob.UserId] = new JsonObject { ["*"] = new JsonObject { ["text"] = "star" }, [bob.DeviceId] = new JsonObject { ["text"] = "named" } } },
        };
        (await alice.PutAsync("/_matrix/client/v3/sendToDevice/m.test/both", both)).Ok();

        Assert.Equal(["to all", "named"], Texts(await bob.SyncAsync(sinceLaptop)));
        Assert.Equal(["to all", "star"], Texts(await bobPhone.SyncAsync(sincePhone)));

        // The same transaction ID from another device of the sender is a different transaction.
        var alicePhone = server.NewClient();
        await alicePhone.LoginAsync("alice");
        (await alicePhone.PutAsync("/_matrix/client/v3/sendToDevice/m.test/same", Messages(bob.UserId, bobPhone.DeviceId, "from phone"))).Ok();
        Assert.Equal(["to all", "star", "from phone"], Texts(await bobPhone.SyncAsync(sincePhone)));
    }

    [Fact]
    public async Task ALongPollWakesForAToDeviceMessageAndLargeBacklogsArriveInPages()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        var since = (await bob.SyncAsync())["next_batch"]!.GetValue<string>();

        var poll = bob.SyncAsync(since, timeout: 20_000);
        (await alice.PutAsync("/_matrix/client/v3/sendToDevice/m.test/wake", Messages(bob.UserId, bob.DeviceId, "wake up"))).Ok();
        var woken = await poll.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(["wake up"], Texts(woken));
        since = woken["next_batch"]!.GetValue<string>();

        // 250 messages: pages of at most 100, in order, nothing lost or repeated.
        for (var i = 0; i < 250; i++)
        {
            (await alice.PutAsync($"/_matrix/client/v3/sendToDevice/m.test/m{i}", Messages(bob.UserId, bob.DeviceId, "m" + i))).Ok();
        }

        var received = new List<string>();
        for (var page = 0; page < 5 && received.Count < 250; page++)
        {
            var sync = await bob.SyncAsync(since);
            var texts = Texts(sync);
            Assert.InRange(texts.Count, 1, 100);
            received.AddRange(texts);
            since = sync["next_batch"]!.GetValue<string>();
        }

        Assert.Equal(Enumerable.Range(0, 250).Select(i => "m" + i), received);
    }

    [Fact]
    public async Task BadRequestsAreRejectedClearly()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        (await alice.PutAsync("/_matrix/client/v3/sendToDevice/m.test/x1", new JsonObject())).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await alice.PutAsync("/_matrix/client/v3/sendToDevice/m.test/x2", new JsonObject { ["messages"] = new JsonObject { ["nobody"] = new JsonObject() } })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PutAsync("/_matrix/client/v3/sendToDevice/m.test/x3", new JsonObject { ["messages"] = new JsonObject { [alice.UserId] = "x" } })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.PutAsync("/_matrix/client/v3/sendToDevice/m.test/x4", new JsonObject { ["messages"] = new JsonObject { [alice.UserId] = new JsonObject { ["D"] = 1 } } })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
    }
}
