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
    public async Task AKilledPurgeLosesNothingThatShouldStayAndTheNextRunFinishes()
    {
        var dir = TestHomeserver.NewTempDir();
        var config = await ConfigAsync(dir);
        await Accounts.UserStoreSeed.AdminInDatabaseAsync(ConfigLoader.LoadFile(config), "root");
        string roomId, token;
        await using (var first = LetheProcess.Start(dir, "serve", "--config", config))
        {
            using var http = new HttpClient { BaseAddress = await first.WaitForUrlAsync(StartTimeout), Timeout = TimeSpan.FromMinutes(2) };
            var alice = await new MatrixClient(http).RegisterAsync("alice");
            roomId = await alice.CreateRoomAsync();
            for (var i = 0; i < 300; i++)
            {
                await alice.SendTextAsync(roomId, "expiring " + i);
            }

            var admin = new MatrixClient(http);
            await admin.LoginAsync("root");
            token = admin.AccessToken!;
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

        var remaining = await CountMessagesAsync(config);
        Assert.InRange(remaining, 1, 299);

        await using var second = LetheProcess.Start(dir, "serve", "--config", config);
        using var http2 = new HttpClient { BaseAddress = await second.WaitForUrlAsync(StartTimeout), Timeout = TimeSpan.FromMinutes(2) };
        var root = new MatrixClient(http2, token);
        (await root.PostAsync("/_lethe/admin/v1/retention/purge", new JsonObject())).Ok();

        // Every expired message is gone except the newest (the DAG's forward extremity); all state survives.
        Assert.Equal(1, await CountMessagesAsync(config));
        var state = (await root.GetAsync($"/_lethe/admin/v1/rooms/{roomId}/retention")).Ok();
        Assert.Equal(1000, state["effective"]!["max_lifetime"]!.GetValue<long>());
        var alice2 = new MatrixClient(http2);
        await alice2.LoginAsync("alice");
        (await alice2.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.create")).Ok();
        await alice2.SendTextAsync(roomId, "after the purge");
        Assert.Equal(["after the purge"], (await alice2.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=5")).Ok()["chunk"]!.AsArray().Bodies());
        second.Terminate();
        Assert.Equal(0, await second.WaitForExitAsync(TimeSpan.FromSeconds(10)));
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

    private static async Task<long> CountMessagesAsync(string configPath)
    {
        await using var db = await Database.OpenAsync(ConfigLoader.LoadFile(configPath).Database);
        return await db.ReadAsync(c => Dapper.SqlMapper.ExecuteScalarAsync<long>(c, "SELECT COUNT(*) FROM events WHERE type = 'm.room.message'"));
    }
}
