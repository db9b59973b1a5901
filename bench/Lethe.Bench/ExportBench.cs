using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Lethe.Bench;

/// <summary>
/// The export benchmark (privacy issue): a user who sent <c>--messages</c> messages (spread over <c>--rooms</c> rooms)
/// is exported through the admin API; reports the time to the last byte, the archive size and the server's peak RSS
/// during the export. Target: 100,000 messages in under 10 s and under 200 MB RSS, memory flat as history grows.
/// </summary>
public static class ExportBench
{
    public static async Task<JsonObject> RunAsync(Options o, string lethe, string? postgres)
    {
        await using var server = await LocalServer.CreateAsync(lethe, postgres);
        using var http = Client.NewHttp(server.Url);
        var process = await server.StartAsync(http);
        var admin = await Client.RegisterAsync(http, server.Secret, admin: true);
        var user = await Client.RegisterAsync(http, server.Secret);
        var rooms = new List<string>();
        for (var r = 0; r < Math.Max(1, o.Rooms); r++)
        {
            rooms.Add(await user.CreateRoomAsync());
        }

        var setup = Stopwatch.StartNew();
        var sent = 0;
        await Task.WhenAll(rooms.Select(async room =>
        {
            while (Interlocked.Increment(ref sent) <= o.Messages)
            {
                await user.SendAsync(room, "an exported message of ordinary length, sent for the benchmark");
            }
        }));
        Console.Error.WriteLine($"setup: {o.Messages} messages in {rooms.Count} rooms in {setup.Elapsed.TotalSeconds:F1}s");

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
        var clock = Stopwatch.StartNew();
        var bytes = await admin.DownloadAsync($"/_lethe/admin/v1/users/{Uri.EscapeDataString(user.UserId)}/export");
        var seconds = clock.Elapsed.TotalSeconds;
        await done.CancelAsync();
        await sampler;
        Console.Error.WriteLine($"export: {o.Messages} messages in {seconds:F2}s, {bytes / 1048576.0:F1} MiB zip, peak RSS {peakRss / 1024} MiB (start {startRss / 1024} MiB)");
        return new JsonObject
        {
            ["scenario"] = "export",
            ["engine"] = server.Engine,
            ["messages"] = o.Messages,
            ["rooms"] = rooms.Count,
            ["seconds"] = Math.Round(seconds, 2),
            ["zip_bytes"] = bytes,
            ["rss_start_kib"] = startRss,
            ["rss_peak_kib"] = peakRss,
        };
    }
}
