using System.Globalization;
using System.Text.Json.Nodes;

namespace Lethe.Bench;

/// <summary>
/// The <c>compare</c> scenario: the ceiling (<see cref="Ceiling"/>) and the server under test through the same scenarios,
/// in one run, each row on the ceiling first and the server straight after, so both see the same machine. Rows:
/// sequential send, concurrent send at 4 and 32 connections (one client and room each), sync wake-up and incremental
/// sync (one room), and both sync rows again with the reader sending a read receipt for each message (untimed), so
/// unread counting sees one unread message instead of up to a thousand. Every server row carries <c>percent_of_ceiling</c>: for send rows the server's rate as a percentage
/// of the ceiling's, for the sync rows the ceiling's p50 as a percentage of the server's (so in both, 100 % is as fast
/// as the ceiling and lower is slower). RSS of both processes is sampled before and after every row.
/// <c>--group-commit</c> adds a second ceiling whose writer groups waiting sends into one transaction, as separate,
/// labelled rows (Lethe commits each send on its own, so its percentage is against the one-insert ceiling).
/// </summary>
public static class Compare
{
    private sealed record Row(string Name, bool IsSend, Func<Options, Task<JsonObject>> Run);

    public static async Task<JsonObject> RunAsync(Options o, string? lethe, string? postgres, bool groupCommit, bool ceilingOnly)
    {
        o = o with { Receipts = false };
        Row[] rows =
        [
            new("send-seq", true, Scenarios.SendSequentialAsync),
            new("send-concurrent-4", true, x => Scenarios.SendConcurrentAsync(x with { C = 4 })),
            new("send-concurrent-32", true, x => Scenarios.SendConcurrentAsync(x with { C = 32 })),
            new("sync-wake", false, x => Scenarios.SyncWakeAsync(x with { Rooms = 1, History = 0 })),
            new("sync-incremental", false, x => Scenarios.SyncIncrementalAsync(x with { Rooms = 1, History = 0 })),
            new("sync-wake-receipts", false, x => Scenarios.SyncWakeAsync(x with { Rooms = 1, History = 0, Receipts = true })),
            new("sync-incremental-receipts", false, x => Scenarios.SyncIncrementalAsync(x with { Rooms = 1, History = 0, Receipts = true })),
        ];

        await using var ceiling = await Ceiling.Child.StartAsync(groupCommit: false);
        await using var grouped = groupCommit ? await Ceiling.Child.StartAsync(groupCommit: true) : null;
        LocalServer? local = null;
        try
        {
            var server = o;
            if (!ceilingOnly && lethe is not null)
            {
                local = await LocalServer.CreateAsync(lethe, postgres);
                using var http = Client.NewHttp(local.Url);
                var process = await local.StartAsync(http);
                server = o with { Url = local.Url, Pid = process.Id, SharedSecret = local.Secret };
            }

            var results = new JsonArray();
            var summary = new List<string>();
            foreach (var row in rows)
            {
                var entry = new JsonObject { ["row"] = row.Name, ["headline"] = row.IsSend ? "per_second" : "p50_ms" };
                var c = await OnAsync(row, o with { Url = ceiling.Url, SharedSecret = null }, ceiling.Pid);
                entry["ceiling"] = c;
                summary.Add(Line(row, "ceiling", c, null));
                if (grouped is not null && row.IsSend)
                {
                    var g = await OnAsync(row, o with { Url = grouped.Url, SharedSecret = null }, grouped.Pid);
                    entry["ceiling_group_commit"] = g;
                    summary.Add(Line(row, "ceiling, group commit", g, null));
                }

                if (!ceilingOnly)
                {
                    var s = await OnAsync(row, server, server.Pid);
                    entry["server"] = s;
                    var percent = Percent(row, s, c);
                    entry["percent_of_ceiling"] = percent;
                    if (entry["ceiling_group_commit"] is JsonObject g)
                    {
                        entry["percent_of_group_commit_ceiling"] = Percent(row, s, g);
                    }

                    summary.Add(Line(row, "server", s, percent));
                }

                results.Add(entry);
            }

            Console.Error.WriteLine();
            Console.Error.WriteLine($"{"row",-25} {"target",-22} {"rate/s",9} {"p50 ms",8} {"p99 ms",8} {"% of ceiling",13}  RSS before → after");
            foreach (var line in summary)
            {
                Console.Error.WriteLine(line);
            }

            return new JsonObject
            {
                ["scenario"] = ceilingOnly ? "ceiling" : "compare",
                ["server_url"] = ceilingOnly ? null : server.Url.ToString(),
                ["n"] = o.N,
                ["rows"] = results,
            };
        }
        finally
        {
            if (local is not null)
            {
                await local.StopAsync();
                await local.DisposeAsync();
            }
        }
    }

    /// <summary>Runs one row against one target, with that process's RSS before (idle) and after.</summary>
    private static async Task<JsonObject> OnAsync(Row row, Options target, int? pid)
    {
        long? before = pid is { } p ? Rss.Of(p) : null;
        var result = await row.Run(target);
        if (pid is { } q)
        {
            Rss.Record(result, before!.Value, Rss.Of(q));
        }

        return result;
    }

    private static double Percent(Row row, JsonObject server, JsonObject ceiling)
    {
        double Get(JsonObject r, string key) => r[key]!.GetValue<double>();
        var ratio = row.IsSend ? Get(server, "per_second") / Get(ceiling, "per_second") : Get(ceiling, "p50_ms") / Get(server, "p50_ms");
        return Math.Round(100 * ratio, 1);
    }

    private static string Line(Row row, string target, JsonObject r, double? percent)
    {
        string F(string key, string format) => r[key]!.GetValue<double>().ToString(format, CultureInfo.InvariantCulture);
        var rss = r["rss_before_kib"] is { } b ? $"{b.GetValue<long>() / 1024} → {r["rss_after_kib"]!.GetValue<long>() / 1024} MiB" : "";
        var pct = percent is { } x ? x.ToString("F1", CultureInfo.InvariantCulture) + " %" : "";
        return $"{row.Name,-25} {target,-22} {F("per_second", "N0"),9} {F("p50_ms", "F3"),8} {F("p99_ms", "F3"),8} {pct,13}  {rss}";
    }
}
