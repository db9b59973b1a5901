using System.Diagnostics;
using System.Text.Json.Nodes;
using Dapper;
using Lethe.Storage;

namespace Lethe.Bench;

/// <summary>
/// The retention purge benchmark (issue 4): a Lethe server with <c>--rooms</c> rooms holding <c>--messages</c> expired
/// messages each purges them all through the admin "run now" API while one client keeps sending; reports events
/// purged per second, the server's peak RSS and the senders' latency percentiles.
/// <para>
/// Sending a million messages through the API would take most of an hour, so the history is made the way an import
/// would: each room gets one real message through the API, the server stops, and the message's stored row is copied
/// with fresh random event IDs (as real ones, which are hashes: numbered IDs sat side by side in the event ID index, so
/// a batch touched a few of its pages instead of one per event, and the purge measured 2.8× faster than on real
/// IDs), timestamps two days old and stream positions below every live one (where backfilled history
/// lives). The purge then deletes exactly what it would delete after a real import.
/// </para>
/// </summary>
public static class PurgeBench
{
    private const long Day = 86_400_000;

    /// <summary>Runs the benchmark; <c>--lethe</c> is the server command, <c>--postgres</c> a connection string to use PostgreSQL, <c>--batch</c> the purge batch size.</summary>
    public static async Task<JsonObject> RunAsync(Options o, string lethe, string? postgres, int? batch)
    {
        // The server's own batch size and pause unless --batch asks for other sizes (then without a pause).
        var batchYaml = batch is null ? "" : $"  purge_batch_size: {batch}\n  purge_batch_delay: 0ms";
        await using var server = await LocalServer.CreateAsync(lethe, postgres, $"""
            retention:
              enabled: true
              purge_jobs:
                - interval: 1d
            {batchYaml}
            """);
        using var http = Client.NewHttp(server.Url);
        var result = await RunAsync(o, server, total: (long)o.Rooms * o.Messages, http);
        result["batch_size"] = batch is null ? "default" : batch;
        return result;
    }

    private static async Task<JsonObject> RunAsync(Options o, LocalServer server, long total, HttpClient http)
    {
        var options = server.Database;
        // 1. Rooms with a one-day policy, each with one real message to copy.
        await server.StartAsync(http);
        var admin = await Client.RegisterAsync(http, server.Secret, admin: true);
        var rooms = new List<string>(o.Rooms);
        var setup = Stopwatch.StartNew();
        for (var r = 0; r < o.Rooms; r++)
        {
            var room = await admin.CreateRoomAsync(initialState: new JsonArray(new JsonObject
            {
                ["type"] = "m.room.retention", ["state_key"] = "", ["content"] = new JsonObject { ["max_lifetime"] = Day },
            }));
            await admin.SendAsync(room, "template message " + r);
            await admin.SendAsync(room, "newest message " + r);
            rooms.Add(room);
        }

        var liveRoom = await admin.CreateRoomAsync();
        await server.StopAsync();
        Console.Error.WriteLine($"setup: {o.Rooms} rooms through the API in {setup.Elapsed.TotalSeconds:F1}s");

        // 2. The expired history, copied from each room's template message.
        setup.Restart();
        await using (var db = await Database.OpenAsync(options))
        {
            var old = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (2 * Day);
            var next = -1L;
            // 44 random hex digits, about as long as a real event ID's 43 base64 characters.
            var randomHex = db.Engine == DatabaseEngine.Postgres ? "md5(random()::text) || substr(md5(random()::text), 1, 12)" : "lower(hex(randomblob(22)))";
            foreach (var room in rooms)
            {
                var top = next;
                await db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
                    $"""
                    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < @count - 1)
                    INSERT INTO events (event_id, stream_ordering, room_id, type, state_key, sender, origin_server_ts, depth, state_group, json, received_ts)
                    SELECT '$' || {randomHex}, @top - i, e.room_id, e.type, NULL, e.sender, @old + i, e.depth, e.state_group, e.json, @old + i
                    FROM n, events e
                    WHERE e.room_id = @room AND e.type = 'm.room.message'
                      AND e.stream_ordering = (SELECT MIN(stream_ordering) FROM events WHERE room_id = @room AND type = 'm.room.message')
                    """, new { count = o.Messages, top, old, room }, tx));
                next -= o.Messages;
            }
        }

        Console.Error.WriteLine($"setup: {total} expired events written in {setup.Elapsed.TotalSeconds:F1}s");

        // 3. Purge everything while one client sends ten messages a second and the RSS is sampled.
        var process = await server.StartAsync(http);
        for (var i = 0; i < 20; i++)
        {
            // Warm-up: the first sends of a fresh process include JIT compilation, which is not the purge's doing.
            await admin.SendAsync(liveRoom, "warm-up " + i);
        }

        var startRss = Rss.Of(process.Id);
        var peakRss = startRss;
        using var done = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                peakRss = Math.Max(peakRss, Rss.Of(process.Id));
                await Task.Delay(20, CancellationToken.None);
            }
        });
        var latencies = new List<double>();
        var sender = Task.Run(async () =>
        {
            for (var i = 0; !done.IsCancellationRequested; i++)
            {
                var t = Stopwatch.GetTimestamp();
                await admin.SendAsync(liveRoom, "during the purge " + i);
                latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                await Task.Delay(100, CancellationToken.None);
            }
        });

        var clock = Stopwatch.StartNew();
        var purged = (await admin.AdminPostAsync("/_lethe/admin/v1/retention/purge"))["purged"]!.GetValue<long>();
        var seconds = clock.Elapsed.TotalSeconds;
        await done.CancelAsync();
        await Task.WhenAll(sampler, sender);
        await server.StopAsync();
        if (purged != total)
        {
            throw new InvalidOperationException($"purged {purged} events, expected {total}");
        }

        var result = Stats.Summarise("purge-concurrent-sends", latencies, seconds, latencies.Count);
        result["scenario"] = "purge";
        result["engine"] = server.Engine;
        result["rooms"] = o.Rooms;
        result["events_purged"] = purged;
        result["purge_seconds"] = Math.Round(seconds, 2);
        result["events_per_second"] = Math.Round(purged / seconds);
        result["rss_start_kib"] = startRss;
        result["rss_peak_kib"] = peakRss;
        Console.Error.WriteLine($"purge: {purged} events in {seconds:F1}s = {purged / seconds:F0}/s, peak RSS {peakRss / 1024} MiB");
        if (server.Engine == "sqlite")
        {
            result["sqlite_file_mib"] = Math.Round(new FileInfo(options.SqlitePath).Length / 1048576.0, 1);
        }

        return result;
    }
}
