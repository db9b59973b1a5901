using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;

namespace Lethe.Homeserver.Tests.Metrics;

/// <summary>Prometheus metrics: off unless configured, only on listeners that name them, and counting real work.</summary>
public sealed class MetricsTests
{
    private static async Task<(HttpStatusCode Status, string Body)> ScrapeAsync(TestHomeserver server, string path = "_synapse/metrics")
    {
        using var response = await server.Client.GetAsync(new Uri(path, UriKind.Relative));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>The value of one series in a scrape, or null when absent.</summary>
    private static double? Sample(string scrape, string series) =>
        scrape.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal)) is { } line
            ? double.Parse(line[(series.Length + 1)..], CultureInfo.InvariantCulture)
            : null;

    [Fact]
    public async Task MetricsAreOffByDefaultAndOnlyOnListenersThatNameThem()
    {
        await using (var off = await TestHomeserver.StartAsync(resources: "client, metrics"))
        {
            Assert.Equal(HttpStatusCode.NotFound, (await ScrapeAsync(off)).Status);
        }

        await using (var elsewhere = await TestHomeserver.StartAsync(extraYaml: "enable_metrics: true\n"))
        {
            // Enabled, but this listener serves client and federation only: metrics must not leak onto it.
            Assert.Equal(HttpStatusCode.NotFound, (await ScrapeAsync(elsewhere)).Status);
        }

        await using var on = await TestHomeserver.StartAsync(extraYaml: "enable_metrics: true\n", resources: "client, metrics");
        foreach (var path in new[] { "_synapse/metrics", "metrics" })
        {
            var (status, body) = await ScrapeAsync(on, path);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Contains("# TYPE process_resident_memory_bytes gauge", body, StringComparison.Ordinal);
            Assert.True(Sample(body, "process_resident_memory_bytes") > 10_000_000, body);
            Assert.True(Sample(body, "process_cpu_seconds_total") > 0, body);
        }
    }

    [Fact]
    public async Task PurgesAreCounted()
    {
        var clock = new TestClock();
        await using var server = await TestHomeserver.StartAsync(
            extraYaml: TestHomeserver.OpenRegistration + "enable_metrics: true\nretention:\n  enabled: true\n  purge_jobs:\n    - interval: 1y\n",
            clock: clock,
            resources: "client, metrics");
        var alice = await server.RegisterAsync("alice");
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var admin = server.NewClient();
        await admin.LoginAsync("root");
        var roomId = await alice.CreateRoomAsync(new JsonObject());
        (await alice.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["max_lifetime"] = 3_600_000 })).Ok();
        for (var i = 0; i < 3; i++)
        {
            await alice.SendTextAsync(roomId, "expiring " + i);
        }

        await alice.SendTextAsync(roomId, "newest");
        clock.Advance(TimeSpan.FromHours(2));
        var purged = (await admin.PostAsync("/_lethe/admin/v1/retention/purge", new JsonObject())).Ok()["purged"]!.GetValue<long>();
        Assert.Equal(3, purged);

        var scrape = (await ScrapeAsync(server)).Body;
        Assert.Equal(3, Sample(scrape, "lethe_retention_purged_events_total{job=\"retention_purge:-:-\"}"));
        Assert.Equal(1, Sample(scrape, "lethe_retention_purge_runs_total{job=\"retention_purge:-:-\",outcome=\"ok\"}"));
        Assert.Contains("# TYPE lethe_retention_purged_events_total counter", scrape, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PrivacyGcRunsAndDeletionsAreCountedPerJob()
    {
        var clock = new TestClock();
        await using var server = await TestHomeserver.StartAsync(
            extraYaml: TestHomeserver.OpenRegistration + "enable_metrics: true\nredaction_retention_period: 1d\nuser_ips_max_age: 1d\nforgotten_room_retention_period: 1d\nmedia_retention:\n  local_media_lifetime: 30d\n",
            clock: clock,
            resources: "client, metrics");
        var alice = await server.RegisterAsync("alice");
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var admin = server.NewClient();
        await admin.LoginAsync("root");
        var roomId = await alice.CreateRoomAsync(new JsonObject());
        var id = await alice.SendTextAsync(roomId, "to be redacted");
        (await alice.PutAsync($"/_matrix/client/v3/rooms/{roomId}/redact/{id}/r1", new JsonObject())).Ok();
        string[] jobs = ["redactions", "client_ips", "forgotten_rooms", "erasures"];
        var before = (await ScrapeAsync(server)).Body;
        foreach (var job in jobs)
        {
            Assert.Null(Sample(before, $"lethe_privacy_gc_runs_total{{job=\"{job}\",outcome=\"ok\"}}"));
        }

        clock.Advance(TimeSpan.FromDays(2));
        Assert.Equal(1, (await admin.PostAsync("/_lethe/admin/v1/privacy/gc", new JsonObject())).Ok()["redactions_pruned"]!.GetValue<long>());
        var scrape = (await ScrapeAsync(server)).Body;
        Assert.Contains("# TYPE lethe_privacy_gc_runs_total counter", scrape, StringComparison.Ordinal);
        foreach (var job in jobs)
        {
            Assert.Equal(1, Sample(scrape, $"lethe_privacy_gc_runs_total{{job=\"{job}\",outcome=\"ok\"}}"));
        }

        Assert.Equal(1, Sample(scrape, "lethe_privacy_gc_items_total{job=\"redactions\"}"));

        // A second run is counted again; it found nothing more to delete.
        (await admin.PostAsync("/_lethe/admin/v1/privacy/gc", new JsonObject())).Ok();
        scrape = (await ScrapeAsync(server)).Body;
        Assert.Equal(2, Sample(scrape, "lethe_privacy_gc_runs_total{job=\"redactions\",outcome=\"ok\"}"));
        Assert.Equal(1, Sample(scrape, "lethe_privacy_gc_items_total{job=\"redactions\"}"));

        // Media retention: an upload nobody downloads for the lifetime is deleted, and the run counted.
        using (var upload = new HttpRequestMessage(HttpMethod.Post, "/_matrix/media/v3/upload") { Content = new ByteArrayContent([1, 2, 3]) })
        {
            upload.Content.Headers.ContentType = new("application/octet-stream");
            upload.Headers.Authorization = new("Bearer", alice.AccessToken);
            using var response = await server.Client.SendAsync(upload);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        clock.Advance(TimeSpan.FromDays(31));
        Assert.Equal(1, await server.Host.MediaRetention.RunAsync(CancellationToken.None));
        scrape = (await ScrapeAsync(server)).Body;
        Assert.Equal(1, Sample(scrape, "lethe_privacy_gc_runs_total{job=\"media_retention\",outcome=\"ok\"}"));
        Assert.Equal(1, Sample(scrape, "lethe_privacy_gc_items_total{job=\"media_retention\"}"));
    }

    [Fact]
    public async Task RequestsEventsDatabaseWritesAndSyncWaitersAreCounted()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration + "enable_metrics: true\n", resources: "client, metrics");
        var alice = await server.RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync(new JsonObject());
        var before = Sample((await ScrapeAsync(server)).Body, "lethe_events_persisted_total{origin=\"local\"}") ?? 0;
        for (var i = 0; i < 3; i++)
        {
            await alice.SendTextAsync(roomId, "hello " + i);
        }

        var scrape = (await ScrapeAsync(server)).Body;
        Assert.Equal(before + 3, Sample(scrape, "lethe_events_persisted_total{origin=\"local\"}"));
        const string Send = "{group=\"client\",method=\"PUT\",route=\"/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}\"}";
        Assert.Equal(3, Sample(scrape, "lethe_http_request_duration_seconds_count" + Send));
        Assert.Equal(3, Sample(scrape, "lethe_http_request_duration_seconds_bucket" + Send[..^1] + ",le=\"+Inf\"}"));
        Assert.True(Sample(scrape, "lethe_http_request_duration_seconds_sum" + Send) > 0, scrape);
        Assert.Contains("# TYPE lethe_http_request_duration_seconds histogram", scrape, StringComparison.Ordinal);
        Assert.True(Sample(scrape, "lethe_http_responses_total{code=\"200\",group=\"client\"}") >= 5, scrape);
        Assert.True(Sample(scrape, "lethe_database_writes_total") >= 3, scrape);
        var transactions = Sample(scrape, "lethe_database_write_transactions_total");
        Assert.True(transactions >= 1 && transactions <= Sample(scrape, "lethe_database_writes_total"), scrape);
        Assert.True(Sample(scrape, "dotnet_gc_heap_bytes") > 0, scrape);
        Assert.NotNull(Sample(scrape, "dotnet_gc_collections_total{generation=\"0\"}"));

        // A request to no endpoint is counted without its path (paths carry IDs).
        await alice.GetAsync("/_matrix/client/v3/rooms/" + roomId + "/nonsense");
        scrape = (await ScrapeAsync(server)).Body;
        Assert.Equal(1, Sample(scrape, "lethe_http_responses_total{code=\"404\",group=\"none\"}"));
        Assert.DoesNotContain(roomId, scrape, StringComparison.Ordinal);

        // A long-poll shows as a waiter while it waits, and no longer once a message wakes it.
        var since = (await alice.GetAsync("/_matrix/client/v3/sync")).Ok()["next_batch"]!.GetValue<string>();
        var poll = alice.GetAsync("/_matrix/client/v3/sync?timeout=30000&since=" + since);
        await Poll.UntilAsync(async () => Sample((await ScrapeAsync(server)).Body, "lethe_sync_waiters") == 1, TimeSpan.FromSeconds(10), "the long-poll to be counted");
        await alice.SendTextAsync(roomId, "wake up");
        (await poll).Ok();
        await Poll.UntilAsync(async () => Sample((await ScrapeAsync(server)).Body, "lethe_sync_waiters") == 0, TimeSpan.FromSeconds(10), "the woken long-poll to leave the count");
    }
}
