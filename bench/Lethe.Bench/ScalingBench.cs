using System.Text.Json.Nodes;

namespace Lethe.Bench;

/// <summary>
/// The scaling run (bench issue): incremental sync wake-up latency and server RSS as the reader's joined rooms grow
/// (1, 10, 100, 1,000) and as the history of the room it waits on grows (1k, 10k, 100k events). Each point runs
/// against a fresh server started for it, so one point's caches and heap do not carry into the next.
/// <c>--n</c> is the number of wake-ups measured per point (default 1,000; 200 is plenty).
/// </summary>
public static class ScalingBench
{
    public static async Task<JsonObject> RunAsync(Options o, string lethe, string? postgres)
    {
        var points = new JsonArray();
        foreach (var (rooms, history) in new[] { (1, 0), (10, 0), (100, 0), (1000, 0), (1, 1000), (1, 10_000), (1, 100_000) })
        {
            await using var server = await LocalServer.CreateAsync(lethe, postgres);
            using var http = Client.NewHttp(server.Url);
            var process = await server.StartAsync(http);
            var idle = Rss.Of(process.Id);
            var point = await Scenarios.SyncWakeAsync(o with { Url = server.Url, Rooms = rooms, History = history, SharedSecret = server.Secret });
            Rss.Record(point, idle, Rss.Of(process.Id));
            Console.Error.WriteLine($"  rooms {rooms}, history {history}: p50 {point["p50_ms"]} ms, p99 {point["p99_ms"]} ms, RSS {Rss.Of(process.Id) / 1024} MiB");
            points.Add(point);
            await server.StopAsync();
        }

        return new JsonObject { ["scenario"] = "scaling", ["engine"] = postgres is null ? "sqlite" : "postgres", ["points"] = points };
    }
}
