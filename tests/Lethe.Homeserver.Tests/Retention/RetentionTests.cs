using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Retention;

/// <summary>MSC1763 retention: one effective policy that hides, purges and holds, on both engines.</summary>
public abstract class RetentionTests(DatabaseEngine engine) : IAsyncLifetime
{
    private static readonly TimeSpan Day = TimeSpan.FromDays(1);

    private const string Config = """
        retention:
          enabled: true
          allowed_lifetime_min: 1h
          allowed_lifetime_max: 30d
          purge_jobs:
            - longest_max_lifetime: 2d
              interval: 1y
            - shortest_max_lifetime: 2d
              interval: 1y

        """;

    protected TestClock Clock { get; } = new();

    protected TestHomeserver Server { get; private set; } = null!;

    protected MatrixClient Alice { get; private set; } = null!;

    protected MatrixClient Bob { get; private set; } = null!;

    protected MatrixClient Admin { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + Config, clock: Clock);
        Alice = await Server.RegisterAsync("alice");
        Bob = await Server.RegisterAsync("bob");
        await Accounts.UserStoreSeed.AdminAsync(Server, "root");
        Admin = Server.NewClient();
        await Admin.LoginAsync("root");
    }

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    private async Task<string> RoomWithPolicyAsync(JsonObject? retention)
    {
        var roomId = await Alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await Bob.JoinAsync(roomId);
        if (retention is not null)
        {
            (await Alice.SetStateAsync(roomId, "m.room.retention", retention)).Ok();
        }

        return roomId;
    }

    private async Task<long> PurgeNowAsync() => (await Admin.PostAsync("/_lethe/admin/v1/retention/purge", new JsonObject())).Ok()["purged"]!.GetValue<long>();

    private async Task<List<string>> VisibleBodiesAsync(MatrixClient who, string roomId) =>
        (await who.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=100")).Ok()["chunk"]!.AsArray().Bodies();

    [Fact]
    public async Task PoliciesMustBeNonNegativeIntegers()
    {
        var roomId = await RoomWithPolicyAsync(null);
        (await Alice.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["max_lifetime"] = "1d" })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await Alice.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["min_lifetime"] = -5 })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await Alice.SetStateAsync(roomId, "m.room.retention", "{\"max_lifetime\": 1.5}")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
        (await Alice.PostAsync("/_matrix/client/v3/createRoom", new JsonObject
        {
            ["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.retention", ["content"] = new JsonObject { ["max_lifetime"] = true } }),
        })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await Alice.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["max_lifetime"] = 86_400_000, ["min_lifetime"] = 3_600_000 })).Ok();
        // Only room moderators set the policy (state_default 50).
        (await Bob.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["max_lifetime"] = 1 })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
    }

    [Fact]
    public async Task ExpiredMessagesVanishFromEveryReadPathWhileTheRoomKeepsWorking()
    {
        var roomId = await RoomWithPolicyAsync(new JsonObject { ["max_lifetime"] = (long)Day.TotalMilliseconds });
        var old = await Alice.SendTextAsync(roomId, "old message");
        var reply = (await Alice.SendEventAsync(roomId, "m.room.message", new JsonObject
        {
            ["msgtype"] = "m.text",
            ["body"] = "old thread reply",
            ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.thread", ["event_id"] = old },
        })).Ok()["event_id"]!.GetValue<string>();
        Clock.Advance(Day - TimeSpan.FromMinutes(1));
        Assert.Contains("old message", await VisibleBodiesAsync(Bob, roomId));

        Clock.Advance(TimeSpan.FromMinutes(2));
        var fresh = await Alice.SendTextAsync(roomId, "fresh message");
        Assert.Equal(["fresh message"], await VisibleBodiesAsync(Bob, roomId));
        (await Bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{old}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await Bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/context/{old}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await Bob.GetAsync($"/_matrix/client/v1/rooms/{roomId}/relations/{old}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        Assert.Empty((await Bob.GetAsync($"/_matrix/client/v1/rooms/{roomId}/threads")).Ok()["chunk"]!.AsArray());
        var sync = await Bob.SyncAsync();
        Assert.Equal(["fresh message"], sync.Timeline(roomId).Bodies());
        Assert.DoesNotContain(reply, sync.ToJsonString(), StringComparison.Ordinal);
        Assert.Equal(1, sync.JoinedRoom(roomId)!["unread_notifications"]!["notification_count"]!.GetValue<int>());

        // State stays: the room still has its name, members and policy; people can still join and talk.
        Assert.Contains(sync.JoinedRoom(roomId)!["timeline"]!["events"]!.AsArray().Concat(sync.JoinedRoom(roomId)!["state"]!["events"]!.AsArray()),
            e => e!["type"]!.GetValue<string>() == "m.room.retention");
        var carol = await Server.RegisterAsync("carol");
        await carol.JoinAsync(roomId);
        await carol.SendTextAsync(roomId, "carol arrives");
        Assert.Equal(["carol arrives", "fresh message"], await VisibleBodiesAsync(Bob, roomId));
        _ = fresh;
    }

    [Fact]
    public async Task TheNewestEventIsKeptButServedRedactedOnceExpired()
    {
        var roomId = await RoomWithPolicyAsync(new JsonObject { ["max_lifetime"] = (long)Day.TotalMilliseconds });
        var last = await Alice.SendTextAsync(roomId, "last words");
        Clock.Advance(Day * 2);
        var served = (await Bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{last}")).Ok();
        Assert.Empty(served["content"]!.AsObject());
        Assert.Equal(0, await PurgeNowAsync());
        Assert.DoesNotContain("last words", (await Bob.SyncAsync()).ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheClampedPolicyDrivesBothHidingAndPurging()
    {
        // The room asks for 10 minutes; the server allows no less than 1 hour. Synapse would hide after 10 minutes
        // but purge after an hour; here both happen after the hour.
        var roomId = await RoomWithPolicyAsync(new JsonObject { ["max_lifetime"] = 600_000 });
        await Alice.SendTextAsync(roomId, "clamped");
        await Alice.SendTextAsync(roomId, "keeps the first one from being the newest");
        Clock.Advance(TimeSpan.FromMinutes(30));
        Assert.Contains("clamped", await VisibleBodiesAsync(Bob, roomId));
        Assert.Equal(0, await PurgeNowAsync());
        var effective = (await Admin.GetAsync($"/_lethe/admin/v1/rooms/{roomId}/retention")).Ok()["effective"]!;
        Assert.Equal(3_600_000, effective["max_lifetime"]!.GetValue<long>());

        Clock.Advance(TimeSpan.FromMinutes(40));
        Assert.DoesNotContain("clamped", await VisibleBodiesAsync(Bob, roomId));
        Assert.True(await PurgeNowAsync() >= 1);

        // An upper clamp too: 90 days asked, 30 allowed.
        var longRoom = await RoomWithPolicyAsync(new JsonObject { ["max_lifetime"] = 90L * 86_400_000 });
        Assert.Equal(30L * 86_400_000, (await Admin.GetAsync($"/_lethe/admin/v1/rooms/{longRoom}/retention")).Ok()["effective"]!["max_lifetime"]!.GetValue<long>());
    }

    [Fact]
    public async Task AnAdminOverrideWinsOverTheRoomsPolicy()
    {
        var roomId = await RoomWithPolicyAsync(new JsonObject { ["max_lifetime"] = 7L * 86_400_000 });
        await Alice.SendTextAsync(roomId, "overridden");
        await Alice.SendTextAsync(roomId, "newest");
        (await Alice.PutAsync($"/_lethe/admin/v1/rooms/{roomId}/retention", new JsonObject { ["max_lifetime"] = 1 })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        var set = (await Admin.PutAsync($"/_lethe/admin/v1/rooms/{roomId}/retention", new JsonObject { ["max_lifetime"] = 3_600_000 })).Ok();
        Assert.Equal(3_600_000, set["effective"]!["max_lifetime"]!.GetValue<long>());
        Clock.Advance(TimeSpan.FromHours(2));
        Assert.DoesNotContain("overridden", await VisibleBodiesAsync(Bob, roomId));
        (await Admin.DeleteAsync($"/_lethe/admin/v1/rooms/{roomId}/retention")).Ok();
        Assert.Contains("overridden", await VisibleBodiesAsync(Bob, roomId));
        (await Admin.DeleteAsync($"/_lethe/admin/v1/rooms/{roomId}/retention")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await Admin.PutAsync("/_lethe/admin/v1/rooms/!nope:test.local/retention", new JsonObject { ["max_lifetime"] = 1 })).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await Admin.PutAsync($"/_lethe/admin/v1/rooms/{roomId}/retention", new JsonObject())).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
    }

    [Fact]
    public async Task MinLifetimeHoldsMessagesEvenWhenMaxLifetimeIsShorter()
    {
        // min 3 days, max 1 day: MSC1763 raises max to min, so nothing goes before 3 days by any path.
        (await Admin.PutAsync("/_lethe/admin/v1/rooms/" + await RoomWithPolicyAsync(null) + "/retention", new JsonObject { ["max_lifetime"] = 1 })).Ok();
        var roomId = await RoomWithPolicyAsync(new JsonObject { ["max_lifetime"] = (long)Day.TotalMilliseconds, ["min_lifetime"] = 3 * (long)Day.TotalMilliseconds });
        await Alice.SendTextAsync(roomId, "held");
        await Alice.SendTextAsync(roomId, "newest");
        Clock.Advance(Day * 2);
        Assert.Contains("held", await VisibleBodiesAsync(Bob, roomId));
        await PurgeNowAsync();
        Assert.True(await StoredContainsAsync("held"));
        Clock.Advance(Day * 2);
        Assert.DoesNotContain("held", await VisibleBodiesAsync(Bob, roomId));
        await PurgeNowAsync();
        Assert.False(await StoredContainsAsync("held"));
    }

    [Fact]
    public async Task PurgeJobsOnlyTakeRoomsInTheirRange()
    {
        var shortRoom = await RoomWithPolicyAsync(new JsonObject { ["max_lifetime"] = (long)Day.TotalMilliseconds });
        var longRoom = await RoomWithPolicyAsync(new JsonObject { ["max_lifetime"] = 5 * (long)Day.TotalMilliseconds });
        foreach (var room in new[] { shortRoom, longRoom })
        {
            await Alice.SendTextAsync(room, "doomed in " + room);
            await Alice.SendTextAsync(room, "newest");
        }

        Clock.Advance(Day * 6);
        var purger = Server.Host.Purger;
        var shortJob = Server.Host.Config.Retention.PurgeJobs[0];
        Assert.Equal(1, await purger.RunAsync(shortJob, CancellationToken.None));
        Assert.False(await StoredContainsAsync("doomed in " + shortRoom));
        Assert.True(await StoredContainsAsync("doomed in " + longRoom), "the 5-day room belongs to the other job");
        Assert.Equal(1, await purger.RunAsync(Server.Host.Config.Retention.PurgeJobs[1], CancellationToken.None));
        Assert.False(await StoredContainsAsync("doomed in " + longRoom));
        var jobs = (await Admin.GetAsync("/_lethe/admin/v1/jobs")).Ok()["jobs"]!.AsArray();
        Assert.Contains(jobs, j => j!["job"]!.GetValue<string>().StartsWith("retention_purge", StringComparison.Ordinal) && j["last_items"]!.GetValue<long>() == 1);
    }

    [Fact]
    public async Task PurgedMessagesLeaveNoTraceAndReceiptsAndCountsStayRight()
    {
        var roomId = await RoomWithPolicyAsync(new JsonObject { ["max_lifetime"] = (long)Day.TotalMilliseconds });
        var markers = Enumerable.Range(0, 30).Select(i => $"zq-doomed-{Guid.NewGuid():N}-{i}").ToList();
        string lastDoomed = "";
        foreach (var marker in markers)
        {
            lastDoomed = await Alice.SendTextAsync(roomId, marker);
        }

        (await Alice.SendEventAsync(roomId, "m.reaction", new JsonObject
        {
            ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.annotation", ["event_id"] = lastDoomed, ["key"] = "zq-reaction-key" },
        })).Ok();
        (await Bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/receipt/m.read/{lastDoomed}", new JsonObject())).Ok();
        Clock.Advance(Day * 2);
        var survivor = $"zq-survivor-{Guid.NewGuid():N}";
        await Alice.SendTextAsync(roomId, survivor);

        Assert.True(await PurgeNowAsync() >= markers.Count);
        var files = Directory.GetFiles(Server.Dir, "*", SearchOption.AllDirectories);
        var all = new StringBuilder();
        foreach (var file in files)
        {
            all.Append(Encoding.UTF8.GetString(await File.ReadAllBytesAsync(file)));
        }

        var text = all.ToString();
        if (engine == DatabaseEngine.Sqlite)
        {
            // The data directory holds the whole SQLite database: not a byte of the purged messages may remain in it.
            Assert.Contains(survivor, text, StringComparison.Ordinal);
            Assert.All(markers, m => Assert.DoesNotContain(m, text, StringComparison.Ordinal));
            Assert.DoesNotContain("zq-reaction-key", text, StringComparison.Ordinal);
        }

        Assert.All(markers, m => Assert.False(StoredContainsAsync(m).Result));

        // Bob's receipt pointed at a purged message: it now names a surviving event and still counts the survivor as unread.
        var sync = await Bob.SyncAsync();
        Assert.Equal(1, sync.JoinedRoom(roomId)!["unread_notifications"]!["notification_count"]!.GetValue<int>());
        var receipts = sync.JoinedRoom(roomId)!["ephemeral"]!["events"]!.AsArray().Single(e => e!["type"]!.GetValue<string>() == "m.receipt")!;
        var target = receipts["content"]!.AsObject().Single(kv => kv.Value!["m.read"]?[Bob.UserId] is not null).Key;
        (await Bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{target}")).Ok();
        Assert.Equal([survivor], await VisibleBodiesAsync(Bob, roomId));

        // The room keeps working after the purge.
        await Bob.SendTextAsync(roomId, "still here");
        (await Bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/receipt/m.read/{target}", new JsonObject())).Ok();
        Assert.Equal(["still here", survivor], await VisibleBodiesAsync(Alice, roomId));
    }

    [Fact]
    public async Task APurgedMessagesTransactionIdIsForgottenSoARetryMakesANewMessage()
    {
        var roomId = await RoomWithPolicyAsync(new JsonObject { ["max_lifetime"] = (long)Day.TotalMilliseconds });
        string SendPath(string txnId) => $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/send/m.room.message/{txnId}";
        var doomed = new JsonObject { ["msgtype"] = "m.text", ["body"] = "sent once" };
        var first = (await Alice.PutAsync(SendPath("purge-txn"), doomed)).Ok()["event_id"]!.GetValue<string>();
        Assert.Equal(first, (await Alice.PutAsync(SendPath("purge-txn"), doomed)).Ok()["event_id"]!.GetValue<string>());
        (await Alice.PutAsync(SendPath("also-doomed"), new JsonObject { ["msgtype"] = "m.text", ["body"] = "doomed too" })).Ok();
        Clock.Advance(Day * 2);
        var late = (await Alice.PutAsync(SendPath("late-txn"), new JsonObject { ["msgtype"] = "m.text", ["body"] = "late" })).Ok()["event_id"]!.GetValue<string>();
        Assert.True(await PurgeNowAsync() >= 2);

        // The purged message's transaction ID went with it: the same ID now sends a new message instead of naming a
        // message that no longer exists. The survivor's ID still names the survivor.
        var retried = (await Alice.PutAsync(SendPath("purge-txn"), new JsonObject { ["msgtype"] = "m.text", ["body"] = "sent again" })).Ok()["event_id"]!.GetValue<string>();
        Assert.NotEqual(first, retried);
        Assert.Equal("sent again", (await Alice.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/event/{Uri.EscapeDataString(retried)}")).Ok()["content"]!["body"]!.GetValue<string>());
        Assert.Equal(late, (await Alice.PutAsync(SendPath("late-txn"), new JsonObject { ["msgtype"] = "m.text", ["body"] = "late" })).Ok()["event_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task SelfDestructingMessagesAreRedactedAtTheirTime()
    {
        var roomId = await RoomWithPolicyAsync(null);
        var marker = $"zq-selfdestruct-{Guid.NewGuid():N}";
        var due = Server.Host.Services.NowMs + 60_000;
        var id = (await Alice.SendEventAsync(roomId, "m.room.message", new JsonObject
        {
            ["msgtype"] = "m.text",
            ["body"] = marker,
            ["org.matrix.self_destruct_after"] = due,
        })).Ok()["event_id"]!.GetValue<string>();
        await Alice.SendTextAsync(roomId, "later");
        Assert.Equal(0, await Server.Host.SelfDestruct.RunDueAsync(CancellationToken.None));
        Assert.Contains(marker, await VisibleBodiesAsync(Bob, roomId));

        Clock.Advance(TimeSpan.FromMinutes(2));
        await Poll.UntilAsync(async () => !await StoredContainsAsync(marker), TimeSpan.FromSeconds(10), "the self-destruct pass prunes the message");
        var served = (await Bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{id}")).Ok();
        Assert.Empty(served["content"]!.AsObject());
        Assert.DoesNotContain(marker, await VisibleBodiesAsync(Bob, roomId));
    }

    [Fact]
    public async Task SelfDestructRespectsTheRoomsMinLifetime()
    {
        var roomId = await RoomWithPolicyAsync(new JsonObject { ["min_lifetime"] = (long)Day.TotalMilliseconds });
        var marker = $"zq-held-{Guid.NewGuid():N}";
        await Alice.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = marker, ["org.matrix.self_destruct_after"] = Server.Host.Services.NowMs + 1000 });
        await Alice.SendTextAsync(roomId, "later");
        Clock.Advance(TimeSpan.FromMinutes(1));
        await Server.Host.SelfDestruct.RunDueAsync(CancellationToken.None);
        Assert.DoesNotContain(marker, await VisibleBodiesAsync(Bob, roomId));
        Assert.True(await StoredContainsAsync(marker), "hidden, but held until min_lifetime passes");
        Clock.Advance(Day);
        await Server.Host.SelfDestruct.RunDueAsync(CancellationToken.None);
        Assert.False(await StoredContainsAsync(marker));
    }

    [Fact]
    public async Task ClientsCanDiscoverTheServersLimits()
    {
        var config = (await Alice.GetAsync("/_matrix/client/unstable/org.matrix.msc1763/retention/configuration")).Ok();
        Assert.True(config["enabled"]!.GetValue<bool>());
        Assert.Equal(3_600_000, config["limits"]!["max_lifetime"]!["min"]!.GetValue<long>());
        Assert.Equal(30L * 86_400_000, config["limits"]!["max_lifetime"]!["max"]!.GetValue<long>());
        (await Alice.GetAsync("/_matrix/client/v3/retention/configuration")).Ok();
        (await Server.NewClient().GetAsync("/_matrix/client/v3/retention/configuration")).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
    }

    [Fact]
    public async Task TheDefaultPolicyExpiresRoomsWithoutOneOfTheirOwn()
    {
        var clock = new TestClock();
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + """
            retention:
              enabled: true
              default_policy:
                max_lifetime: 1d
              purge_jobs:
                - interval: 1y

            """, clock: clock);
        var alice = await server.RegisterAsync("alice");
        var plain = await alice.CreateRoomAsync();
        var ownPolicy = await alice.CreateRoomAsync();
        (await alice.SetStateAsync(ownPolicy, "m.room.retention", new JsonObject { ["max_lifetime"] = 5 * (long)Day.TotalMilliseconds })).Ok();
        var doomed = $"zq-default-{Guid.NewGuid():N}";
        var kept = $"zq-own-policy-{Guid.NewGuid():N}";
        await alice.SendTextAsync(plain, doomed);
        await alice.SendTextAsync(ownPolicy, kept);
        await alice.SendTextAsync(ownPolicy, "newest");

        clock.Advance(Day * 2);
        await alice.SendTextAsync(plain, "fresh");
        Assert.Equal(["fresh"], (await alice.GetAsync($"/_matrix/client/v3/rooms/{plain}/messages?dir=b")).Ok()["chunk"]!.AsArray().Bodies());
        Assert.Contains(kept, (await alice.GetAsync($"/_matrix/client/v3/rooms/{ownPolicy}/messages?dir=b")).Ok()["chunk"]!.AsArray().Bodies());
        Assert.Equal(1, await server.Host.Purger.RunAllAsync(CancellationToken.None));
        var stored = await server.Host.Database.ReadAsync(async c => (await c.QueryAsync<byte[]>("SELECT json FROM events")).Select(j => Encoding.UTF8.GetString(j)).ToList());
        Assert.DoesNotContain(stored, j => j.Contains(doomed, StringComparison.Ordinal));
        Assert.Contains(stored, j => j.Contains(kept, StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheExpiryBoundaryIsTheSameForHidingAndPurging()
    {
        // A clock that stands still, so the test can stand one millisecond either side of the boundary.
        var clock = new SettableClock(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + Config, clock: clock);
        var alice = await server.RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync();
        var max = (long)Day.TotalMilliseconds;
        (await alice.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["max_lifetime"] = max })).Ok();
        var marker = $"zq-boundary-{Guid.NewGuid():N}";
        var id = await alice.SendTextAsync(roomId, marker);
        var sentTs = (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{id}")).Ok()["origin_server_ts"]!.GetValue<long>();
        await alice.SendTextAsync(roomId, "newest");
        async Task<bool> StoredAsync() => (await server.Host.Database.ReadAsync(c => c.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM events WHERE event_id = @id", new { id }))) == 1;

        // One millisecond before origin_server_ts + max_lifetime the message is served and kept...
        clock.NowMs = sentTs + max - 1;
        Assert.Equal(marker, (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{id}")).Ok()["content"]!["body"]!.GetValue<string>());
        Assert.Equal(0, await server.Host.Purger.RunAllAsync(CancellationToken.None));
        Assert.True(await StoredAsync());

        // ...and at that instant it is neither served nor kept.
        clock.NowMs = sentTs + max;
        (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{id}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        Assert.DoesNotContain(marker, (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b")).Ok()["chunk"]!.AsArray().Bodies());
        Assert.Equal(1, await server.Host.Purger.RunAllAsync(CancellationToken.None));
        Assert.False(await StoredAsync());
    }

    [Fact]
    public async Task SelfDestructedContentIsGoneFromEveryByteOnDisk()
    {
        var roomId = await RoomWithPolicyAsync(null);
        var marker = $"zq-selfdestruct-disk-{Guid.NewGuid():N}";
        await Alice.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = marker, ["org.matrix.self_destruct_after"] = Server.Host.Services.NowMs + 1000 });
        var survivor = $"zq-survivor-{Guid.NewGuid():N}";
        await Alice.SendTextAsync(roomId, survivor);
        Clock.Advance(TimeSpan.FromMinutes(1));

        // The self-destruct timer (four times a second) prunes the message and compacts the database.
        await Poll.UntilAsync(async () => !await StoredContainsAsync(marker) && (engine != DatabaseEngine.Sqlite || !(await DataDirectoryTextAsync()).Contains(marker, StringComparison.Ordinal)),
            TimeSpan.FromSeconds(15), "the self-destructed text to leave the database files and the WAL");
        if (engine == DatabaseEngine.Sqlite)
        {
            Assert.Contains(survivor, await DataDirectoryTextAsync(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ThePurgeTimerRunsJobsByItself()
    {
        // The real clock and a job every second: nobody asks for a purge, the timer does it.
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + """
            retention:
              enabled: true
              purge_jobs:
                - interval: 1s

            """);
        var alice = await server.RegisterAsync("alice");
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var root = server.NewClient();
        await root.LoginAsync("root");
        var roomId = await alice.CreateRoomAsync();
        var marker = $"zq-timer-{Guid.NewGuid():N}";
        await alice.SendTextAsync(roomId, marker);
        await alice.SendTextAsync(roomId, "newest");
        (await root.PutAsync($"/_lethe/admin/v1/rooms/{roomId}/retention", new JsonObject { ["max_lifetime"] = 500 })).Ok();

        await Poll.UntilAsync(
            async () => !(await server.Host.Database.ReadAsync(async c => (await c.QueryAsync<byte[]>("SELECT json FROM events")).ToList()))
                .Any(j => Encoding.UTF8.GetString(j).Contains(marker, StringComparison.Ordinal)),
            TimeSpan.FromSeconds(30), "the purge timer to purge the expired message");
        var job = (await root.GetAsync("/_lethe/admin/v1/jobs")).Ok()["jobs"]!.AsArray().Single(j => j!["job"]!.GetValue<string>().StartsWith("retention_purge", StringComparison.Ordinal))!;
        Assert.True(job["total_items"]!.GetValue<long>() >= 1);
        Assert.NotNull(job["next_run_ts"]);
    }

    [Fact]
    public async Task AStoppedPurgeIsRecordedAsInterruptedAndDueAtOnce()
    {
        var clock = new TestClock();
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + """
            retention:
              enabled: true
              purge_batch_size: 1
              purge_batch_delay: 50ms
              purge_jobs:
                - interval: 1y

            """, clock: clock);
        var alice = await server.RegisterAsync("alice");
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var root = server.NewClient();
        await root.LoginAsync("root");
        var roomId = await alice.CreateRoomAsync();
        (await alice.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["max_lifetime"] = (long)Day.TotalMilliseconds })).Ok();
        for (var i = 0; i < 40; i++)
        {
            await alice.SendTextAsync(roomId, "expiring " + i);
        }

        clock.Advance(Day * 2);
        async Task<JsonNode> JobAsync() => (await root.GetAsync("/_lethe/admin/v1/jobs")).Ok()["jobs"]!.AsArray().Single(j => j!["job"]!.GetValue<string>().StartsWith("retention_purge", StringComparison.Ordinal))!;
        Assert.True((await JobAsync())["next_run_ts"]!.GetValue<long>() > server.Host.Services.NowMs + 300L * 86_400_000, "first run one interval after the job first appears");

        // Stop the run part-way, as a shutdown does.
        using var stop = new CancellationTokenSource();
        var run = server.Host.Purger.RunAllAsync(stop.Token);
        await Poll.UntilAsync(async () => (await JobAsync())["last_items"]!.GetValue<long>() >= 3, TimeSpan.FromSeconds(30), "the purge makes progress");
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);

        var job = await JobAsync();
        Assert.False(job["running"]!.GetValue<bool>());
        Assert.StartsWith("interrupted", job["last_error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.True(job["next_run_ts"]!.GetValue<long>() <= server.Host.Services.NowMs, "due again at once, so the next start resumes it");
        Assert.InRange(job["last_items"]!.GetValue<long>(), 3, 38);
    }

    private async Task<string> DataDirectoryTextAsync()
    {
        var all = new StringBuilder();
        foreach (var file in Directory.GetFiles(Server.Dir, "*", SearchOption.AllDirectories))
        {
            // Read to the end as it is now: the server may truncate the WAL or drop a file while this reads
            // (File.ReadAllBytes fails when a file shrinks under it); the caller polls, so the next pass sees the rest.
            try
            {
                await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var bytes = new MemoryStream();
                await stream.CopyToAsync(bytes);
                all.Append(Encoding.UTF8.GetString(bytes.GetBuffer(), 0, (int)bytes.Length));
            }
            catch (FileNotFoundException)
            {
            }
        }

        return all.ToString();
    }

    /// <summary>A clock the test sets to the millisecond (timers still run in real time).</summary>
    private sealed class SettableClock(long nowMs) : TimeProvider
    {
        private long _nowMs = nowMs;

        public long NowMs
        {
            get => Interlocked.Read(ref _nowMs);
            set => Interlocked.Exchange(ref _nowMs, value);
        }

        public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeMilliseconds(NowMs);
    }

    /// <summary>True when any stored event's JSON still contains the text.</summary>
    private async Task<bool> StoredContainsAsync(string text) =>
        await Server.Host.Database.ReadAsync(async c =>
            (await c.QueryAsync<byte[]>("SELECT json FROM events")).Any(j => Encoding.UTF8.GetString(j).Contains(text, StringComparison.Ordinal)));
}

public sealed class SqliteRetentionTests() : RetentionTests(DatabaseEngine.Sqlite);

public sealed class PostgresRetentionTests() : RetentionTests(DatabaseEngine.Postgres);
