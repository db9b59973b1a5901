using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Lethe.Bench;

/// <summary>
/// The ceiling for a send: Kestrel on loopback plus one SQLite insert per request (WAL, synchronous=NORMAL), measured
/// with the same client loop as send-seq, in the same run. A homeserver does much more per send; this says how much.
/// </summary>
public static class Baseline
{
    public static async Task<JsonObject> RunAsync(Options o)
    {
        var dir = Directory.CreateTempSubdirectory("lethe-baseline");
        var connectionString = $"Data Source={Path.Combine(dir.FullName, "b.db")}";
        await using (var setup = new SqliteConnection(connectionString))
        {
            await setup.OpenAsync();
            await using var cmd = setup.CreateCommand();
            cmd.CommandText = "PRAGMA journal_mode=WAL; CREATE TABLE events (id INTEGER PRIMARY KEY, room TEXT, body BLOB)";
            await cmd.ExecuteNonQueryAsync();
        }

        var gate = new SemaphoreSlim(1, 1);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapPut("/send/{room}/{txn}", async (HttpContext ctx) =>
        {
            using var reader = new StreamReader(ctx.Request.Body);
            var body = await reader.ReadToEndAsync();
            await gate.WaitAsync();
            try
            {
                await using var conn = new SqliteConnection(connectionString);
                await conn.OpenAsync();
                await using var cmd = conn.CreateCommand();
                cmd.CommandText = "PRAGMA synchronous=NORMAL; INSERT INTO events (room, body) VALUES ($r, $b)";
                cmd.Parameters.AddWithValue("$r", ctx.Request.RouteValues["room"]);
                cmd.Parameters.AddWithValue("$b", System.Text.Encoding.UTF8.GetBytes(body));
                await cmd.ExecuteNonQueryAsync();
            }
            finally
            {
                gate.Release();
            }

            await ctx.Response.WriteAsJsonAsync(new { event_id = "$x" });
        });
        await app.StartAsync();
        var url = app.Urls.First();
        using var http = Client.NewHttp(new Uri(url));
        var latencies = new List<double>(o.N);
        for (var i = 0; i < 20; i++)
        {
            (await http.PutAsJsonAsync($"/send/r/w{i}", new { msgtype = "m.text", body = "warm-up" })).EnsureSuccessStatusCode();
        }

        var total = Stopwatch.StartNew();
        for (var i = 0; i < o.N; i++)
        {
            var t = Stopwatch.GetTimestamp();
            (await http.PutAsJsonAsync($"/send/r/t{i}", new { msgtype = "m.text", body = "message " + i })).EnsureSuccessStatusCode();
            latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }

        var result = Stats.Summarise("baseline-kestrel-sqlite", latencies, total.Elapsed.TotalSeconds, o.N);
        await app.StopAsync();
        dir.Delete(true);
        return result;
    }
}
