using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using Lethe.Storage;
using Npgsql;

namespace Lethe.Bench;

/// <summary>
/// The retention purge benchmark (issue 4): a Lethe server with <c>--rooms</c> rooms holding <c>--messages</c> expired
/// messages each purges them all through the admin "run now" API while one client keeps sending; reports events
/// purged per second, the server's peak RSS and the senders' latency percentiles.
/// <para>
/// Sending a million messages through the API would take most of an hour, so the history is made the way an import
/// would: each room gets one real message through the API, the server stops, and the message's stored row is copied
/// with fresh event IDs, timestamps two days old and stream positions below every live one (where backfilled history
/// lives). The purge then deletes exactly what it would delete after a real import.
/// </para>
/// </summary>
public static class PurgeBench
{
    private const long Day = 86_400_000;

    /// <summary>Runs the benchmark; <c>--lethe</c> is the server command, <c>--postgres</c> a connection string to use PostgreSQL, <c>--batch</c> the purge batch size.</summary>
    public static async Task<JsonObject> RunAsync(Options o, string lethe, string? postgres, int? batch)
    {
        var dir = Path.Combine(Path.GetTempPath(), "lethe-purge-bench-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        Directory.CreateDirectory(dir);
        var port = FreePort();
        var secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var (databaseYaml, options) = postgres is null ? SqliteDatabase(dir) : PostgresDatabase(postgres);
        var config = Path.Combine(dir, "homeserver.yaml");
        // The server's own batch size and pause unless --batch asks for other sizes (then without a pause).
        var batchYaml = batch is null ? "" : $"  purge_batch_size: {batch}\n  purge_batch_delay: 0ms";
        await File.WriteAllTextAsync(config, $"""
            server_name: "bench.local"
            listeners:
              - port: {port}
                bind_addresses: ["127.0.0.1"]
                type: http
                resources:
                  - names: [client]
            {databaseYaml}
            media_store_path: "{dir}/media_store"
            signing_key_path: "{dir}/bench.signing.key"
            registration_shared_secret: "{secret}"
            rc_message:
              per_second: 100000
              burst_count: 100000
            rc_room_creation:
              per_second: 100000
              burst_count: 100000
            retention:
              enabled: true
              purge_jobs:
                - interval: 1d
            {batchYaml}
            """);
        var url = new Uri($"http://127.0.0.1:{port}");
        using var http = Client.NewHttp(url);
        Process? server = null;
        try
        {
            var result = await RunAsync(o, postgres, options, total: (long)o.Rooms * o.Messages, secret, http,
                start: async () => server = await StartAsync(lethe, config, http),
                stop: async () =>
                {
                    await StopAsync(server!);
                    server = null;
                });
            result["batch_size"] = batch is null ? "default" : batch;
            return result;
        }
        finally
        {
            if (server is { HasExited: false })
            {
                server.Kill();
            }

            Directory.Delete(dir, recursive: true);
            if (postgres is not null)
            {
                await using var conn = new NpgsqlConnection(postgres);
                await conn.ExecuteAsync($"DROP SCHEMA {new NpgsqlConnectionStringBuilder(options.PostgresConnectionString).SearchPath} CASCADE");
            }
        }
    }

    private static async Task<JsonObject> RunAsync(
        Options o, string? postgres, DatabaseOptions options, long total, string secret, HttpClient http, Func<Task<Process>> start, Func<Task> stop)
    {

        // 1. Rooms with a one-day policy, each with one real message to copy.
        await start();
        var admin = await Client.RegisterAsync(http, secret, admin: true);
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
        await stop();
        Console.Error.WriteLine($"setup: {o.Rooms} rooms through the API in {setup.Elapsed.TotalSeconds:F1}s");

        // 2. The expired history, copied from each room's template message.
        setup.Restart();
        await using (var db = await Database.OpenAsync(options))
        {
            var old = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (2 * Day);
            var next = -1L;
            foreach (var room in rooms)
            {
                var top = next;
                await db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
                    """
                    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < @count - 1)
                    INSERT INTO events (event_id, stream_ordering, room_id, type, state_key, sender, origin_server_ts, depth, state_group, json, received_ts)
                    SELECT '$bench' || CAST(@top - i AS TEXT), @top - i, e.room_id, e.type, NULL, e.sender, @old + i, e.depth, e.state_group, e.json, @old + i
                    FROM n, events e
                    WHERE e.room_id = @room AND e.type = 'm.room.message'
                      AND e.stream_ordering = (SELECT MIN(stream_ordering) FROM events WHERE room_id = @room AND type = 'm.room.message')
                    """, new { count = o.Messages, top, old, room }, tx));
                next -= o.Messages;
            }
        }

        Console.Error.WriteLine($"setup: {total} expired events written in {setup.Elapsed.TotalSeconds:F1}s");

        // 3. Purge everything while one client sends ten messages a second and the RSS is sampled.
        var server = await start();
        for (var i = 0; i < 20; i++)
        {
            // Warm-up: the first sends of a fresh process include JIT compilation, which is not the purge's doing.
            await admin.SendAsync(liveRoom, "warm-up " + i);
        }

        var startRss = Rss.Of(server.Id);
        var peakRss = startRss;
        using var done = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                peakRss = Math.Max(peakRss, Rss.Of(server.Id));
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
        await stop();
        if (purged != total)
        {
            throw new InvalidOperationException($"purged {purged} events, expected {total}");
        }

        var result = Stats.Summarise("purge-concurrent-sends", latencies, seconds, latencies.Count);
        result["scenario"] = "purge";
        result["engine"] = postgres is null ? "sqlite" : "postgres";
        result["rooms"] = o.Rooms;
        result["events_purged"] = purged;
        result["purge_seconds"] = Math.Round(seconds, 2);
        result["events_per_second"] = Math.Round(purged / seconds);
        result["rss_start_kib"] = startRss;
        result["rss_peak_kib"] = peakRss;
        Console.Error.WriteLine($"purge: {purged} events in {seconds:F1}s = {purged / seconds:F0}/s, peak RSS {peakRss / 1024} MiB");
        if (postgres is null)
        {
            result["sqlite_file_mib"] = Math.Round(new FileInfo(options.SqlitePath).Length / 1048576.0, 1);
        }

        return result;
    }

    internal static (string Yaml, DatabaseOptions Options) SqliteDatabase(string dir)
    {
        var path = Path.Combine(dir, "homeserver.db");
        return ($"""
            database:
              name: sqlite3
              args:
                database: "{path}"
            """, new DatabaseOptions { SqlitePath = path });
    }

    private static (string Yaml, DatabaseOptions Options) PostgresDatabase(string connectionString)
    {
        var schema = "purge_bench_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        using (var conn = new NpgsqlConnection(connectionString))
        {
            conn.Open();
            conn.Execute($"CREATE SCHEMA {schema}");
        }

        var b = new NpgsqlConnectionStringBuilder(connectionString) { SearchPath = schema };
        return ($"""
            database:
              name: psycopg2
              args:
                user: "{b.Username}"
                password: "{b.Password}"
                dbname: "{b.Database}"
                host: "{b.Host}"
                port: {b.Port}
                options: "-c search_path={schema}"
            """, new DatabaseOptions { Engine = DatabaseEngine.Postgres, PostgresConnectionString = b.ToString() });
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    internal static async Task<Process> StartAsync(string lethe, string config, HttpClient http)
    {
        var process = Process.Start(new ProcessStartInfo(lethe, ["serve", "--config", config]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(120))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException("the server exited with code " + process.ExitCode.ToString(CultureInfo.InvariantCulture));
            }

            try
            {
                using var response = await http.GetAsync(new Uri("/health", UriKind.Relative));
                if (response.IsSuccessStatusCode)
                {
                    return process;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(100);
        }

        process.Kill();
        throw new TimeoutException("the server did not start within 120 s");
    }

    internal static async Task StopAsync(Process process)
    {
        // SIGTERM: a clean shutdown, so the database is closed before it is edited.
        Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
    }
}
