using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Ephemeral;

/// <summary>
/// Presence as other users see it: set by syncing and by <c>PUT /presence</c>, and moved on by the spec's timers —
/// idle after 5 minutes without activity, offline 30 seconds after the last sync, not currently active a minute after the
/// last activity. The server clock is moved forward instead of waiting.
/// </summary>
public abstract class PresenceTests(DatabaseEngine engine) : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    private readonly TestClock _clock = new();

    protected TestHomeserver Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        Server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + "enable_metrics: true\n", clock: _clock, resources: "client, federation, metrics");

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    [Fact]
    public async Task AUserWhoStopsSyncingGoesOfflineThirtySecondsAfterTheLastSync()
    {
        var (alice, bob, _) = await TwoMembersAsync();
        var since = (await bob.SyncAsync())["next_batch"]!.GetValue<string>();
        await alice.SyncAsync();

        var seen = await PresenceOfAsync(bob, alice);
        Assert.Equal("online", seen["presence"]!.GetValue<string>());
        Assert.True(seen["currently_active"]!.GetValue<bool>());

        // 20 s on: still online, and last_active_ago counts the time since the sync.
        _clock.Advance(TimeSpan.FromSeconds(20));
        seen = await PresenceOfAsync(bob, alice);
        Assert.Equal("online", seen["presence"]!.GetValue<string>());
        Assert.InRange(seen["last_active_ago"]!.GetValue<long>(), 20_000, 29_000);

        // Past 30 s with no sync: offline, for GET and in Bob's sync.
        _clock.Advance(TimeSpan.FromSeconds(11));
        await Poll.UntilAsync(async () => (await PresenceOfAsync(bob, alice))["presence"]!.GetValue<string>() == "offline", Wait, "Alice to time out to offline");
        var offline = await PresenceOfAsync(bob, alice);
        Assert.Null(offline["currently_active"]);
        Assert.InRange(offline["last_active_ago"]!.GetValue<long>(), 31_000, 40_000);
        Assert.Equal("offline", LastPresenceIn(await bob.SyncAsync(since), alice.UserId)?["presence"]?.GetValue<string>());
    }

    [Fact]
    public async Task AnOpenLongPollKeepsAUserOnlineButNotCurrentlyActiveAfterAMinute()
    {
        var (alice, bob, _) = await TwoMembersAsync();
        var since = (await alice.SyncAsync())["next_batch"]!.GetValue<string>();
        var poll = alice.GetAsync($"/_matrix/client/v3/sync?timeout=120000&since={Uri.EscapeDataString(since)}");
        await WaitForLongPollsAsync(1);

        // 61 s without a new request, but the long-poll is still open: online (not offline), no longer currently active.
        _clock.Advance(TimeSpan.FromSeconds(61));
        await Poll.UntilAsync(async () => (await PresenceOfAsync(bob, alice))["currently_active"]?.GetValue<bool>() == false, Wait, "Alice to stop being currently active");
        Assert.Equal("online", (await PresenceOfAsync(bob, alice))["presence"]!.GetValue<string>());

        // Her own long-poll hears of it.
        var woken = (await poll).Ok();
        Assert.False(LastPresenceIn(woken, alice.UserId)!["currently_active"]!.GetValue<bool>());
    }

    [Fact]
    public async Task FiveMinutesWithoutActivityMakeAnOnlineUserIdleThenOfflineOnceTheySyncNoMore()
    {
        var (alice, bob, _) = await TwoMembersAsync();
        // Bob syncs without going online, so that only Alice's presence changes (his going offline would wake her long-poll too).
        const string Quiet = "/_matrix/client/v3/sync?set_presence=offline";
        var bobSince = (await bob.GetAsync(Quiet)).Ok()["next_batch"]!.GetValue<string>();
        var since = (await alice.SyncAsync())["next_batch"]!.GetValue<string>();
        var poll = alice.GetAsync($"/_matrix/client/v3/sync?timeout=300000&since={Uri.EscapeDataString(since)}");
        await WaitForLongPollsAsync(1);

        _clock.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(2));
        await Poll.UntilAsync(async () => (await PresenceOfAsync(bob, alice))["presence"]!.GetValue<string>() == "unavailable", Wait, "Alice to go idle");
        var idle = await PresenceOfAsync(bob, alice);
        Assert.Null(idle["currently_active"]);
        Assert.InRange(idle["last_active_ago"]!.GetValue<long>(), 302_000, 310_000);
        Assert.Equal("unavailable", LastPresenceIn((await bob.GetAsync($"{Quiet}&since={Uri.EscapeDataString(bobSince)}")).Ok(), alice.UserId)?["presence"]?.GetValue<string>());
        Assert.Equal("unavailable", LastPresenceIn((await poll).Ok(), alice.UserId)?["presence"]?.GetValue<string>());

        // Her long-poll has ended and she starts no other: 30 s later she is offline.
        _clock.Advance(TimeSpan.FromSeconds(31));
        await Poll.UntilAsync(async () => (await PresenceOfAsync(bob, alice))["presence"]!.GetValue<string>() == "offline", Wait, "idle Alice to go offline");
    }

    [Fact]
    public async Task SetPresenceOnSyncMarksOnlineIdleOrNothing()
    {
        var (alice, bob, _) = await TwoMembersAsync();

        // offline: syncing does not mark her online.
        (await alice.GetAsync("/_matrix/client/v3/sync?set_presence=offline")).Ok();
        var seen = await PresenceOfAsync(bob, alice);
        Assert.Equal("offline", seen["presence"]!.GetValue<string>());
        Assert.Null(seen["last_active_ago"]);
        Assert.Null(LastPresenceIn(await bob.SyncAsync(), alice.UserId));

        (await alice.GetAsync("/_matrix/client/v3/sync?set_presence=unavailable")).Ok();
        Assert.Equal("unavailable", (await PresenceOfAsync(bob, alice))["presence"]!.GetValue<string>());

        (await alice.GetAsync("/_matrix/client/v3/sync")).Ok();
        seen = await PresenceOfAsync(bob, alice);
        Assert.Equal("online", seen["presence"]!.GetValue<string>());
        Assert.True(seen["currently_active"]!.GetValue<bool>());

        // A status message set with PUT survives later syncs; an explicit offline is not undone by syncing with offline.
        (await alice.PutAsync($"/_matrix/client/v3/presence/{alice.UserId}/status", new JsonObject { ["presence"] = "unavailable", ["status_msg"] = "lunch" })).Ok();
        (await alice.GetAsync("/_matrix/client/v3/sync?set_presence=unavailable")).Ok();
        Assert.Equal("lunch", (await PresenceOfAsync(bob, alice))["status_msg"]!.GetValue<string>());
        (await alice.PutAsync($"/_matrix/client/v3/presence/{alice.UserId}/status", new JsonObject { ["presence"] = "offline" })).Ok();
        (await alice.GetAsync("/_matrix/client/v3/sync?set_presence=offline")).Ok();
        Assert.Equal("offline", (await PresenceOfAsync(bob, alice))["presence"]!.GetValue<string>());

        (await alice.GetAsync("/_matrix/client/v3/sync?set_presence=away")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }

    /// <summary>Alice and Bob, sharing a public room.</summary>
    protected async Task<(MatrixClient Alice, MatrixClient Bob, string RoomId)> TwoMembersAsync()
    {
        var alice = await Server.RegisterAsync("alice");
        var bob = await Server.RegisterAsync("bob");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        return (alice, bob, roomId);
    }

    /// <summary>What <paramref name="observer"/> reads of <paramref name="user"/>'s presence.</summary>
    protected static async Task<JsonObject> PresenceOfAsync(MatrixClient observer, MatrixClient user) =>
        (await observer.GetAsync($"/_matrix/client/v3/presence/{user.UserId}/status")).Ok();

    /// <summary>The content of the last m.presence event for a user in a sync response, or null.</summary>
    protected static JsonObject? LastPresenceIn(JsonObject sync, string userId) =>
        sync["presence"]?["events"]?.AsArray().LastOrDefault(e => e!["sender"]!.GetValue<string>() == userId)?["content"] as JsonObject;

    /// <summary>Waits until the server counts <paramref name="count"/> long-polls waiting (its metrics say so).</summary>
    private async Task WaitForLongPollsAsync(int count) =>
        await Poll.UntilAsync(async () =>
        {
            var scrape = await Server.Client.GetStringAsync(new Uri("_synapse/metrics", UriKind.Relative));
            var line = scrape.Split('\n').FirstOrDefault(l => l.StartsWith("lethe_sync_waiters ", StringComparison.Ordinal));
            return line is not null && double.Parse(line["lethe_sync_waiters ".Length..], CultureInfo.InvariantCulture) >= count;
        }, Wait, $"{count} long-poll(s) to wait");
}

public sealed class SqlitePresenceTests() : PresenceTests(DatabaseEngine.Sqlite);

public sealed class PostgresPresenceTests() : PresenceTests(DatabaseEngine.Postgres);

/// <summary>With <c>presence.enabled: false</c>, as in Synapse: updates are accepted and ignored, everyone reads as offline, syncs carry no presence.</summary>
public sealed class DisabledPresenceTests
{
    [Fact]
    public async Task PresenceUpdatesAreAcceptedButNobodySeesThem()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration + "presence:\n  enabled: false\n");
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        var since = (await bob.SyncAsync())["next_batch"]!.GetValue<string>();

        (await alice.PutAsync($"/_matrix/client/v3/presence/{alice.UserId}/status", new JsonObject { ["presence"] = "online", ["status_msg"] = "here" })).Ok();
        (await alice.GetAsync("/_matrix/client/v3/sync?set_presence=online")).Ok();
        var seen = (await bob.GetAsync($"/_matrix/client/v3/presence/{alice.UserId}/status")).Ok();
        Assert.Equal(new JsonObject { ["presence"] = "offline" }.ToJsonString(), seen.ToJsonString());
        Assert.Equal("offline", (await alice.GetAsync($"/_matrix/client/v3/presence/{alice.UserId}/status")).Ok()["presence"]!.GetValue<string>());

        // A message wakes Bob's sync; it carries no presence, nor does an initial sync.
        await alice.SendTextAsync(roomId, "hello");
        var incremental = await bob.SyncAsync(since);
        Assert.Equal(["hello"], incremental.Timeline(roomId).Bodies());
        Assert.Empty(incremental["presence"]!["events"]!.AsArray());
        Assert.Empty((await bob.SyncAsync())["presence"]!["events"]!.AsArray());

        // Bad input is still refused.
        (await alice.PutAsync($"/_matrix/client/v3/presence/{alice.UserId}/status", new JsonObject { ["presence"] = "asleep" })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }
}

/// <summary>
/// <c>rc_presence</c> at Synapse's default (an update per 10 s, burst 1): syncs and <c>PUT /presence</c> share it; a sync
/// over it is answered but leaves the presence alone, a <c>PUT</c> over it is refused with 429.
/// </summary>
public sealed class PresenceRateLimitTests
{
    [Fact]
    public async Task SyncsAndPresenceUpdatesShareOneAllowance()
    {
        var clock = new TestClock();
        await using var server = await TestHomeserver.StartAsync(
            extraYaml: TestHomeserver.OpenRegistration + "rc_presence: {per_user: {per_second: 0.1, burst_count: 1}}\n", clock: clock);
        var alice = await server.RegisterAsync("alice");
        var status = $"/_matrix/client/v3/presence/{alice.UserId}/status";
        string Presence(JsonObject seen) => seen["presence"]!.GetValue<string>();

        (await alice.PutAsync(status, new JsonObject { ["presence"] = "unavailable" })).Ok();
        var refused = await alice.PutAsync(status, new JsonObject { ["presence"] = "online" });
        refused.Error(HttpStatusCode.TooManyRequests, "M_LIMIT_EXCEEDED");
        Assert.InRange(refused.Body["retry_after_ms"]!.GetValue<long>(), 1, 10_000);

        // A sync now is over the allowance too: it is answered, and Alice stays unavailable.
        (await alice.GetAsync("/_matrix/client/v3/sync?set_presence=online")).Ok();
        Assert.Equal("unavailable", Presence((await alice.GetAsync(status)).Ok()));

        // Ten seconds on, the next sync sets her online; the PUT straight after it is refused.
        clock.Advance(TimeSpan.FromSeconds(10));
        (await alice.GetAsync("/_matrix/client/v3/sync?set_presence=online")).Ok();
        Assert.Equal("online", Presence((await alice.GetAsync(status)).Ok()));
        (await alice.PutAsync(status, new JsonObject { ["presence"] = "offline" })).Error(HttpStatusCode.TooManyRequests, "M_LIMIT_EXCEEDED");
        Assert.Equal("online", Presence((await alice.GetAsync(status)).Ok()));
    }
}
