using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;

namespace Lethe.Homeserver.Tests.Ephemeral;

/// <summary>Typing notifications end by themselves when their timeout runs out, with nothing else happening in the room.</summary>
public sealed class TypingTests : IAsyncLifetime
{
    private readonly TestClock _clock = new();
    private TestHomeserver _server = null!;

    public async ValueTask InitializeAsync() => _server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration, clock: _clock);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task ATypingNotificationDisappearsFromSyncWhenItsTimeoutRunsOut()
    {
        var alice = await _server.RegisterAsync("alice");
        var bob = await _server.RegisterAsync("bob");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        var since = (await bob.SyncAsync())["next_batch"]!.GetValue<string>();

        await TypeAsync(alice, roomId, 3000);
        var typing = await bob.SyncAsync(since);
        Assert.Equal([alice.UserId], TypingIn(typing, roomId));
        since = typing["next_batch"]!.GetValue<string>();

        // Two seconds in, nothing has changed.
        _clock.Advance(TimeSpan.FromSeconds(2));
        var still = await bob.SyncAsync(since);
        Assert.Null(TypingIn(still, roomId));
        since = still["next_batch"]!.GetValue<string>();

        // Past three seconds the notification is gone, and Bob's sync says so.
        _clock.Advance(TimeSpan.FromSeconds(1.5));
        var stopped = await bob.SyncAsync(since);
        Assert.Equal([], TypingIn(stopped, roomId));
        Assert.Equal([], TypingIn(await bob.SyncAsync(), roomId) ?? []);
    }

    [Fact]
    public async Task ALongPollWakesWhenATypingNotificationExpires()
    {
        var alice = await _server.RegisterAsync("carol");
        var bob = await _server.RegisterAsync("dan");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        await TypeAsync(alice, roomId, 1000);
        var since = (await bob.SyncAsync())["next_batch"]!.GetValue<string>();

        // No event follows: only the expiry can end this long-poll before its 20 s, with the typing list emptied.
        var woken = await bob.SyncAsync(since, timeout: 20_000);
        Assert.Equal([], TypingIn(woken, roomId));
    }

    private static async Task TypeAsync(MatrixClient c, string roomId, int timeoutMs) =>
        (await c.PutAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/typing/{Uri.EscapeDataString(c.UserId)}", new JsonObject { ["typing"] = true, ["timeout"] = timeoutMs })).Ok();

    /// <summary>The user IDs of the room's m.typing event in a sync response, or null when it has none.</summary>
    private static List<string>? TypingIn(JsonObject sync, string roomId) =>
        (sync.JoinedRoom(roomId)?["ephemeral"]?["events"] as JsonArray)?
            .FirstOrDefault(e => e!["type"]!.GetValue<string>() == "m.typing")?["content"]!["user_ids"]!.AsArray()
            .Select(u => u!.GetValue<string>()).ToList();
}
