using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Privacy;

/// <summary>The personal-data garbage collectors delete what they should after their period, and nothing else.</summary>
public abstract class PrivacyGcTests(DatabaseEngine engine)
{
    private static readonly TimeSpan Day = TimeSpan.FromDays(1);

    private async Task<(TestHomeserver Server, TestClock Clock, MatrixClient Alice, MatrixClient Bob, MatrixClient Admin)> StartAsync(string yaml)
    {
        var clock = new TestClock();
        var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + yaml, clock: clock);
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var admin = server.NewClient();
        await admin.LoginAsync("root");
        return (server, clock, alice, bob, admin);
    }

    private static async Task<(long Redactions, long Ips)> RunGcAsync(MatrixClient admin)
    {
        var result = (await admin.PostAsync("/_lethe/admin/v1/privacy/gc", new JsonObject())).Ok();
        return (result["redactions_pruned"]!.GetValue<long>(), result["client_ips_pruned"]!.GetValue<long>());
    }

    private static async Task<string> RedactedMessageAsync(MatrixClient alice, string roomId, string marker)
    {
        var id = (await alice.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = marker })).Ok()["event_id"]!.GetValue<string>();
        (await alice.PutAsync($"/_matrix/client/v3/rooms/{roomId}/redact/{id}/r{Guid.NewGuid():N}", new JsonObject())).Ok();
        return id;
    }

    private static async Task<bool> StoredContainsAsync(TestHomeserver server, string text) =>
        await server.Host.Database.ReadAsync(async c =>
            (await c.QueryAsync<byte[]>("SELECT json FROM events")).Any(j => Encoding.UTF8.GetString(j).Contains(text, StringComparison.Ordinal)));

    [Fact]
    public async Task RedactedContentIsDeletedOnceTheRetentionPeriodHasPassed()
    {
        var (server, clock, alice, bob, admin) = await StartAsync("redaction_retention_period: 7d\n");
        await using var _ = server;
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        var redacted = $"zq-redacted-{Guid.NewGuid():N}";
        var kept = $"zq-kept-{Guid.NewGuid():N}";
        var id = await RedactedMessageAsync(alice, roomId, redacted);
        await alice.SendTextAsync(roomId, kept);

        // Redacted at once for clients; the original stays stored for the period.
        Assert.Empty((await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{id}")).Ok()["content"]!.AsObject());
        clock.Advance(Day * 6);
        Assert.Equal(0, (await RunGcAsync(admin)).Redactions);
        Assert.True(await StoredContainsAsync(server, redacted));

        clock.Advance(Day * 2);
        Assert.Equal(1, (await RunGcAsync(admin)).Redactions);
        Assert.False(await StoredContainsAsync(server, redacted));
        Assert.True(await StoredContainsAsync(server, kept));
        if (engine == DatabaseEngine.Sqlite)
        {
            // Not in the database file, its WAL or free pages either.
            Assert.False(await server.FilesContainAsync(redacted));
            Assert.True(await server.FilesContainAsync(kept));
        }

        // Still served as redacted, and the room works on.
        var served = (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{id}")).Ok();
        Assert.Empty(served["content"]!.AsObject());
        Assert.Equal(alice.UserId, served["sender"]!.GetValue<string>());
        await bob.SendTextAsync(roomId, "still here");
        Assert.Equal(0, (await RunGcAsync(admin)).Redactions);
    }

    [Fact]
    public async Task TheRoomsMinLifetimeHoldsRedactedContent()
    {
        var (server, clock, alice, _, admin) = await StartAsync("redaction_retention_period: 1d\nretention:\n  enabled: true\n");
        await using var __ = server;
        var roomId = await alice.CreateRoomAsync(new JsonObject());
        (await alice.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["min_lifetime"] = (long)(Day * 30).TotalMilliseconds })).Ok();
        var held = $"zq-held-{Guid.NewGuid():N}";
        await RedactedMessageAsync(alice, roomId, held);

        clock.Advance(Day * 2);
        Assert.Equal(0, (await RunGcAsync(admin)).Redactions);
        Assert.True(await StoredContainsAsync(server, held), "min_lifetime keeps the content for 30 days");

        clock.Advance(Day * 29);
        Assert.Equal(1, (await RunGcAsync(admin)).Redactions);
        Assert.False(await StoredContainsAsync(server, held));
    }

    [Fact]
    public async Task ANullPeriodKeepsRedactedContent()
    {
        var (server, clock, alice, _, admin) = await StartAsync("redaction_retention_period: null\n");
        await using var _ = server;
        var roomId = await alice.CreateRoomAsync(new JsonObject());
        var marker = $"zq-forever-{Guid.NewGuid():N}";
        await RedactedMessageAsync(alice, roomId, marker);
        clock.Advance(Day * 400);
        Assert.Equal(0, (await RunGcAsync(admin)).Redactions);
        Assert.True(await StoredContainsAsync(server, marker));
    }

    [Fact]
    public async Task UsersCanSeeWhatIsKeptAboutThemAndUntilWhen()
    {
        var (server, _, alice, _, _) = await StartAsync("redaction_retention_period: 7d\nuser_ips_max_age: 28d\nretention:\n  enabled: true\n");
        await using var __ = server;
        var roomId = await alice.CreateRoomAsync(new JsonObject());
        (await alice.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["max_lifetime"] = 86_400_000 })).Ok();
        var id = await RedactedMessageAsync(alice, roomId, "zq-oops");
        var report = (await alice.GetAsync("/_lethe/client/v1/privacy")).Ok();
        Assert.Equal(alice.UserId, report["user_id"]!.GetValue<string>());
        var device = Assert.Single(report["stored"]!["devices"]!.AsArray())!;
        Assert.Equal(device["last_seen_ts"]!.GetValue<long>() + 28 * 86_400_000L, device["ip_deleted_after_ts"]!.GetValue<long>());
        var room = Assert.Single(report["stored"]!["rooms"]!.AsArray())!;
        Assert.Equal(86_400_000, room["messages_deleted_after_ms"]!.GetValue<long>());
        var pending = Assert.Single(report["stored"]!["redacted_content_pending_deletion"]!.AsArray())!;
        Assert.Equal(id, pending["event_id"]!.GetValue<string>());
        Assert.Equal(pending["redacted_ts"]!.GetValue<long>() + 7 * 86_400_000L, pending["content_deleted_after_ts"]!.GetValue<long>());
        Assert.True(report["stored"]!["sent_events"]!.GetValue<long>() >= 2);
        Assert.Equal(7 * 86_400_000L, report["policies"]!["redaction_retention_period_ms"]!.GetValue<long>());
        (await server.NewClient().GetAsync("/_lethe/client/v1/privacy")).Error(System.Net.HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
    }

    [Fact]
    public async Task ClientIpsAreForgottenOnceADeviceIsIdleForTheMaxAge()
    {
        var (server, clock, alice, bob, admin) = await StartAsync("user_ips_max_age: 28d\n");
        await using var _ = server;
        async Task<JsonObject> DeviceOfAsync(MatrixClient c) =>
            (await c.GetAsync("/_matrix/client/v3/devices/" + c.DeviceId)).Ok();

        Assert.NotNull((await DeviceOfAsync(alice))["last_seen_ip"]);
        Assert.NotNull((await DeviceOfAsync(bob))["last_seen_ip"]);

        clock.Advance(Day * 27);
        Assert.Equal(0, (await RunGcAsync(admin)).Ips);

        // Bob logs in again (a fresh sighting); Alice stays away past the max age.
        clock.Advance(Day * 2);
        var bobAgain = server.NewClient();
        await bobAgain.LoginAsync("bob");
        // Alice's and Bob's first devices, idle for 29 days, lose their IPs; Bob's new one and the admin's (in use) keep theirs.
        Assert.Equal(2, (await RunGcAsync(admin)).Ips);

        // Read the rows directly: asking through the API would itself be a fresh sighting of the device.
        var stored = (await server.Host.Database.ReadAsync(c => c.QueryAsync<(string, string, string?, string?)>(
            "SELECT user_id, device_id, last_seen_ip, last_seen_user_agent FROM devices"))).ToDictionary(d => d.Item2);
        Assert.True(stored[alice.DeviceId] is (_, _, null, null), "Alice's device is kept, without IP and user agent");
        Assert.True(stored[bob.DeviceId] is (_, _, null, null));
        Assert.NotNull(stored[bobAgain.DeviceId].Item3);
    }

    [Fact]
    public async Task UserAgentsAndIpsAreGoneFromTheDatabaseFilesAfterTheMaxAgeOrADevicesDeletion()
    {
        var (server, clock, _, _, admin) = await StartAsync("user_ips_max_age: 28d\n");
        await using var _ = server;
        var idleAgent = $"zq-idle-agent-{Guid.NewGuid():N}";
        var leavingAgent = $"zq-leaving-agent-{Guid.NewGuid():N}";
        var idle = await server.NewClient(idleAgent).RegisterAsync("carol");
        var leaving = await server.NewClient(leavingAgent).RegisterAsync("dave");
        await idle.GetAsync("/_matrix/client/v3/account/whoami");
        await leaving.GetAsync("/_matrix/client/v3/account/whoami");

        // A GC run writes the devices' recent activity; both user agents are now stored.
        Assert.Equal(0, (await RunGcAsync(admin)).Ips);
        async Task<string?> StoredAgentAsync(MatrixClient c) => await server.Host.Database.ReadAsync(db => db.ExecuteScalarAsync<string?>(
            "SELECT last_seen_user_agent FROM devices WHERE user_id = @u AND device_id = @d", new { u = c.UserId, d = c.DeviceId }));
        Assert.Equal(idleAgent, await StoredAgentAsync(idle));
        Assert.Equal(leavingAgent, await StoredAgentAsync(leaving));
        if (engine == DatabaseEngine.Sqlite)
        {
            Assert.True(await server.FilesContainAsync(idleAgent));
            Assert.True(await server.FilesContainAsync(leavingAgent));
        }

        // Logging out deletes the device, and its IP address and user agent with it, at once; the next GC run takes
        // the bytes out of the files too (before it, the WAL still held them).
        (await leaving.PostAsync("/_matrix/client/v3/logout", new JsonObject())).Ok();
        Assert.Equal(0, await server.Host.Database.ReadAsync(db => db.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM devices WHERE user_id = @u", new { u = leaving.UserId })));
        Assert.Equal(0, (await RunGcAsync(admin)).Ips);
        if (engine == DatabaseEngine.Sqlite)
        {
            Assert.False(await server.FilesContainAsync(leavingAgent));
            Assert.True(await server.FilesContainAsync(idleAgent));
        }

        // The idle device keeps its row past the max age, without IP address or user agent, in the files as well.
        clock.Advance(Day * 29);
        Assert.Equal(1, (await RunGcAsync(admin)).Ips); // Carol's (Alice and Bob never used their tokens, so none was stored)
        Assert.Null(await StoredAgentAsync(idle));
        if (engine == DatabaseEngine.Sqlite)
        {
            Assert.False(await server.FilesContainAsync(idleAgent));
        }
    }
}

public sealed class SqlitePrivacyGcTests() : PrivacyGcTests(DatabaseEngine.Sqlite);

public sealed class PostgresPrivacyGcTests() : PrivacyGcTests(DatabaseEngine.Postgres);
