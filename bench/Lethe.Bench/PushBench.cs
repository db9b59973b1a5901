using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Lethe.Bench;

/// <summary>
/// The push rule benchmark (issue 9): send throughput into a room of <c>--members</c> local members, every one with the
/// default push rules (so each message is evaluated for all of them and notifies all of them), against the same
/// sender's throughput into a room of its own, in the same server run. Target: the large room at ≥ 50 % of the
/// single-member rate. Starts its own server (<c>--lethe COMMAND</c>, SQLite).
/// </summary>
public static class PushBench
{
    /// <summary>Runs the benchmark: rounds of <c>--n</c> sequential sends alternate between the two rooms.</summary>
    public static async Task<JsonObject> RunAsync(Options o, string lethe, int members, int rounds)
    {
        await using var local = await LocalServer.CreateAsync(lethe, postgres: null);
        using var http = Client.NewHttp(local.Url);
        var secret = local.Secret;
        var server = await local.StartAsync(http);
        var sender = await Client.RegisterAsync(http, secret);
        var alone = await sender.CreateRoomAsync();
        var crowded = await sender.CreateRoomAsync();
        var setup = Stopwatch.StartNew();
        var joined = 0;
        // Registration hashes a password (Argon2id, ~0.1 s); four at a time keeps the server's two hashing slots busy.
        await Parallel.ForEachAsync(Enumerable.Range(0, members - 1), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (_, _) =>
        {
            var member = await Client.RegisterAsync(http, secret);
            await member.JoinAsync(crowded);
            if (Interlocked.Increment(ref joined) % 100 == 0)
            {
                Console.Error.WriteLine($"setup: {joined} members joined ({setup.Elapsed.TotalSeconds:F0}s)");
            }
        });
        Console.Error.WriteLine($"setup: {members} members in {setup.Elapsed.TotalSeconds:F1}s");

        for (var i = 0; i < 50; i++)
        {
            await sender.SendAsync(alone, "warm-up " + i);
            await sender.SendAsync(crowded, "warm-up " + i);
        }

        var aloneLatencies = new List<double>();
        var crowdedLatencies = new List<double>();
        double aloneSeconds = 0, crowdedSeconds = 0;
        for (var round = 0; round < rounds; round++)
        {
            aloneSeconds += await SendRoundAsync(sender, alone, o.N, aloneLatencies);
            crowdedSeconds += await SendRoundAsync(sender, crowded, o.N, crowdedLatencies);
        }

        var single = Stats.Summarise("push-send-1-member", aloneLatencies, aloneSeconds, aloneLatencies.Count);
        var large = Stats.Summarise($"push-send-{members}-members", crowdedLatencies, crowdedSeconds, crowdedLatencies.Count);
        var ratio = large["per_second"]!.GetValue<double>() / single["per_second"]!.GetValue<double>();
        Console.Error.WriteLine($"push: {members} members at {ratio:P0} of the single-member rate (target >= 50 %)");
        var result = new JsonObject
        {
            ["scenario"] = "push-room",
            ["members"] = members,
            ["single_member"] = single,
            ["large_room"] = large,
            ["ratio"] = Math.Round(ratio, 3),
            ["rss_kib"] = Rss.Of(server.Id),
        };
        await local.StopAsync();
        return result;
    }

    private static async Task<double> SendRoundAsync(Client sender, string room, int n, List<double> latencies)
    {
        var total = Stopwatch.StartNew();
        for (var i = 0; i < n; i++)
        {
            var t = Stopwatch.GetTimestamp();
            await sender.SendAsync(room, "message " + i + " for everyone");
            latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }

        return total.Elapsed.TotalSeconds;
    }
}
