using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Retention;

/// <summary>Purges and the operator's tools against the real server process: a crash mid-purge, and ./lethe room retention.</summary>
public sealed class PurgeCrashTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private static async Task<string> ConfigAsync(string dir, string extra = "")
    {
        var path = Path.Combine(dir, "hs.yaml");
        await File.WriteAllTextAsync(path, $"""
            server_name: purge.test
            listeners: [{"{"}port: 0, bind_addresses: ['127.0.0.1'], resources: [{"{"}names: [client]{"}"}]{"}"}]
            database: {"{"}name: sqlite3, args: {"{"}database: {dir}/hs.db{"}"}{"}"}
            signing_key_path: {dir}/key
            media_store_path: {dir}/media
            enable_registration: true
            enable_registration_without_verification: true
            rc_message: {"{"}per_second: 100000, burst_count: 100000{"}"}
            rc_login: {"{"}address: {"{"}per_second: 1000, burst_count: 1000{"}"}, account: {"{"}per_second: 1000, burst_count: 1000{"}"}{"}"}
            retention:
              enabled: true
              purge_batch_size: 5
              purge_batch_delay: 20ms
              purge_jobs:
                - interval: 1y
            {extra}
            """);
        return path;
    }

    [Fact]
    public async Task AKilledPurgeLosesNothingThatShouldStayAndResumesAtStartUp()
    {
        var dir = TestHomeserver.NewTempDir();
        var config = await ConfigAsync(dir);
        await Accounts.UserStoreSeed.AdminInDatabaseAsync(ConfigLoader.LoadFile(config), "root");
        string roomId, liveRoom, plainRoom, token;
        await using (var first = LetheProcess.Start(dir, "serve", "--config", config))
        {
            using var http = new HttpClient { BaseAddress = await first.WaitForUrlAsync(StartTimeout), Timeout = TimeSpan.FromMinutes(2) };
            var alice = await new MatrixClient(http).RegisterAsync("alice");
            roomId = await alice.CreateRoomAsync();
            for (var i = 0; i < 300; i++)
            {
                await alice.SendTextAsync(roomId, "expiring " + i);
            }

            // The same job visits a room whose messages live for a day (none has expired), and a room without a policy.
            liveRoom = await alice.CreateRoomAsync();
            plainRoom = await alice.CreateRoomAsync();
            for (var i = 0; i < 5; i++)
            {
                await alice.SendTextAsync(liveRoom, "live " + i);
                await alice.SendTextAsync(plainRoom, "kept " + i);
            }

            var admin = new MatrixClient(http);
            await admin.LoginAsync("root");
            token = admin.AccessToken!;
            (await admin.PutAsync($"/_lethe/admin/v1/rooms/{liveRoom}/retention", new JsonObject { ["max_lifetime"] = 86_400_000 })).Ok();
            (await admin.PutAsync($"/_lethe/admin/v1/rooms/{roomId}/retention", new JsonObject { ["max_lifetime"] = 1000 })).Ok();
            await Poll.UntilAsync(async () => (await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=5")).Ok()["chunk"]!.AsArray().Bodies().Count == 0,
                TimeSpan.FromSeconds(10), "the messages expire");

            // Start the purge (5 events per batch, 20 ms apart: several seconds of work), and kill the server part-way.
            var purge = admin.PostAsync("/_lethe/admin/v1/retention/purge", new JsonObject());
            await Poll.UntilAsync(async () => await PurgedSoFarAsync(admin) >= 20, TimeSpan.FromSeconds(30), "the purge makes progress");
            Process.GetProcessById(first.Pid).Kill();
            await first.WaitForExitAsync(TimeSpan.FromSeconds(10));
            _ = purge;
        }

        Assert.InRange(await CountMessagesAsync(dir, roomId), 1, 299);

        // The job (interval: 1y) was interrupted, so the restarted server resumes it at once, without being asked.
        await using var second = LetheProcess.Start(dir, "serve", "--config", config);
        using var http2 = new HttpClient { BaseAddress = await second.WaitForUrlAsync(StartTimeout), Timeout = TimeSpan.FromMinutes(2) };
        var root = new MatrixClient(http2, token);
        await Poll.UntilAsync(async () => await CountMessagesAsync(dir, roomId) == 1, TimeSpan.FromSeconds(60), "the interrupted purge resumes at start-up");

        // Every expired message is gone except the newest (the DAG's forward extremity); all state survives, and so does
        // every message that had not expired.
        Assert.Equal(5, await CountMessagesAsync(dir, liveRoom));
        Assert.Equal(5, await CountMessagesAsync(dir, plainRoom));
        var state = (await root.GetAsync($"/_lethe/admin/v1/rooms/{roomId}/retention")).Ok();
        Assert.Equal(1000, state["effective"]!["max_lifetime"]!.GetValue<long>());
        var alice2 = new MatrixClient(http2);
        await alice2.LoginAsync("alice");
        Assert.Equal(["live 4", "live 3", "live 2", "live 1", "live 0"], (await alice2.GetAsync($"/_matrix/client/v3/rooms/{liveRoom}/messages?dir=b&limit=10")).Ok()["chunk"]!.AsArray().Bodies());
        Assert.Equal(["kept 4", "kept 3", "kept 2", "kept 1", "kept 0"], (await alice2.GetAsync($"/_matrix/client/v3/rooms/{plainRoom}/messages?dir=b&limit=10")).Ok()["chunk"]!.AsArray().Bodies());
        (await alice2.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.create")).Ok();
        await alice2.SendTextAsync(roomId, "after the purge");
        Assert.Equal(["after the purge"], (await alice2.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=5")).Ok()["chunk"]!.AsArray().Bodies());
        (await root.PostAsync("/_lethe/admin/v1/retention/purge", new JsonObject())).Ok();
        Assert.Equal(5, await CountMessagesAsync(dir, liveRoom));
        second.Terminate();
        Assert.Equal(0, await second.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task NoMessageTextReachesTheLogsEvenAtTraceLevel()
    {
        var dir = TestHomeserver.NewTempDir();
        var config = await ConfigAsync(dir);
        await Accounts.UserStoreSeed.AdminInDatabaseAsync(ConfigLoader.LoadFile(config), "root");
        var marker = $"zq-logged-{Guid.NewGuid():N}";
        await using var server = LetheProcess.StartLogging("Trace", dir, "serve", "--config", config);
        using var http = new HttpClient { BaseAddress = await server.WaitForUrlAsync(StartTimeout) };
        var alice = await new MatrixClient(http).RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync();
        await alice.SendTextAsync(roomId, marker);
        (await alice.SendEventAsync(roomId, "m.room.message", new JsonObject
        {
            ["msgtype"] = "m.text", ["body"] = marker + "-selfdestruct", ["org.matrix.self_destruct_after"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 500,
        })).Ok();
        (await alice.SetStateAsync(roomId, "m.room.retention", "{\"max_lifetime\": \"" + marker + "\"}")).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        await alice.SendTextAsync(roomId, "newest");
        var admin = new MatrixClient(http);
        await admin.LoginAsync("root");
        (await admin.PutAsync($"/_lethe/admin/v1/rooms/{roomId}/retention", new JsonObject { ["max_lifetime"] = 1000 })).Ok();
        await Poll.UntilAsync(async () => !(await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b")).Ok()["chunk"]!.AsArray().Bodies().Any(b => b.StartsWith(marker, StringComparison.Ordinal)),
            TimeSpan.FromSeconds(10), "the messages expire");
        Assert.True((await admin.PostAsync("/_lethe/admin/v1/retention/purge", new JsonObject())).Ok()["purged"]!.GetValue<long>() >= 2);
        server.Terminate();
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(10)));

        // The logs say what happened (requests, the purge) and never what was written.
        var logs = server.Stdout + server.Stderr;
        Assert.Contains("/send/m.room.message/", logs, StringComparison.Ordinal);
        Assert.Contains("Retention purge", logs, StringComparison.Ordinal);
        Assert.DoesNotContain(marker, logs, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheRoomRetentionCommandSetsShowsAndRemovesTheOverride()
    {
        var dir = TestHomeserver.NewTempDir();
        var config = await ConfigAsync(dir);
        await using var server = LetheProcess.Start(dir, "serve", "--config", config);
        using var http = new HttpClient { BaseAddress = await server.WaitForUrlAsync(StartTimeout) };
        var alice = await new MatrixClient(http).RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["room_alias_name"] = "ephemeral" });
        await alice.SendTextAsync(roomId, "soon gone");
        await alice.SendTextAsync(roomId, "newest");

        var (code, stdout, stderr) = await LetheProcess.RunAsync(dir, "room", "retention", "--config", config, "#ephemeral:purge.test", "1s");
        Assert.True(code == 0, stderr);
        Assert.Contains("messages now expire after 1s", stdout, StringComparison.Ordinal);
        (code, stdout, _) = await LetheProcess.RunAsync(dir, "room", "retention", "--config", config, roomId);
        Assert.Contains("max_lifetime 1s", stdout, StringComparison.Ordinal);

        // The running server picks the override up (within a second) and hides the expired message.
        await Poll.UntilAsync(async () => !(await alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b")).Ok()["chunk"]!.AsArray().Bodies().Contains("soon gone"),
            TimeSpan.FromSeconds(10), "the override takes effect");

        (code, stdout, _) = await LetheProcess.RunAsync(dir, "room", "retention", "--config", config, roomId, "off");
        Assert.Contains("override removed", stdout, StringComparison.Ordinal);
        (code, _, stderr) = await LetheProcess.RunAsync(dir, "room", "retention", "--config", config, "#nowhere:purge.test", "1d");
        Assert.Equal(1, code);
        Assert.Contains("no room has the alias", stderr, StringComparison.Ordinal);
        (code, _, _) = await LetheProcess.RunAsync(dir, "room", "retention", "--config", config, roomId, "soon");
        Assert.Equal(2, code);
        server.Terminate();
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }

    private static async Task<long> PurgedSoFarAsync(MatrixClient admin)
    {
        var jobs = (await admin.GetAsync("/_lethe/admin/v1/jobs")).Ok()["jobs"]!.AsArray();
        return jobs.Where(j => j!["job"]!.GetValue<string>().StartsWith("retention_purge", StringComparison.Ordinal)).Sum(j => j!["last_items"]!.GetValue<long>());
    }

    /// <summary>Messages of a room stored in the SQLite file, read alongside the running server (or after it died).</summary>
    private static async Task<long> CountMessagesAsync(string dir, string roomId)
    {
        await using var conn = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={dir}/hs.db;Mode=ReadOnly;Pooling=False");
        await conn.OpenAsync();
        return await Dapper.SqlMapper.ExecuteScalarAsync<long>(conn, "SELECT COUNT(*) FROM events WHERE type = 'm.room.message' AND room_id = @roomId", new { roomId });
    }
}
