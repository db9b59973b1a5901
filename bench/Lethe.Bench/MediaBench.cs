using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Lethe.Bench;

/// <summary>
/// The media benchmark (issue 6): upload and download throughput for 1 MB and 100 MB files (MB/s, server peak RSS),
/// next to a raw disk copy of the same bytes (write + fsync + rename, then read), and the thumbnail rate for 1024×768
/// JPEGs (every request a cache miss: each JPEG is its own upload). Works against any homeserver (<c>--url</c>, users
/// registered like the other scenarios, <c>--pid</c> for RSS; the disk floor is then measured in the temp folder), or
/// starts its own Lethe with <c>--lethe COMMAND</c> (SQLite, data folder in /tmp, the floor measured in that folder).
/// Downloads and thumbnails use the authenticated media endpoints (<c>/_matrix/client/v1/media</c>), or the legacy
/// <c>/_matrix/media/v3</c> ones when the server does not know those; the 100 MB files are skipped when the server's
/// upload limit is lower.
/// </summary>
public static class MediaBench
{
    private const int MiB = 1024 * 1024;

    /// <summary>Runs the benchmark; <c>--n</c> is the number of 1 MB transfers and of thumbnails.</summary>
    public static async Task<JsonObject> RunAsync(Options o, string? lethe)
    {
        if (lethe is null)
        {
            var dir = Directory.CreateTempSubdirectory("lethe-bench-media");
            try
            {
                using var http = Client.NewHttp(o.Url);
                return await MeasureAsync(o, http, o.SharedSecret, o.Pid, dir.FullName);
            }
            finally
            {
                dir.Delete(recursive: true);
            }
        }

        await using var local = await LocalServer.CreateAsync(lethe, postgres: null, """
            max_upload_size: 200M
            dynamic_thumbnails: true
            """);
        using var localHttp = Client.NewHttp(local.Url);
        var server = await local.StartAsync(localHttp);
        try
        {
            var result = await MeasureAsync(o, localHttp, local.Secret, server.Id, local.Dir);
            result["engine"] = "sqlite";
            return result;
        }
        finally
        {
            await local.StopAsync();
        }
    }

    private static async Task<JsonObject> MeasureAsync(Options o, HttpClient http, string? secret, int? pid, string dir)
    {
        var user = await Client.RegisterAsync(http, secret);
        var token = user.Token;
        var (prefix, uploadLimit) = await MediaConfigAsync(http, token);
        var result = new JsonObject { ["scenario"] = "media", ["server_url"] = http.BaseAddress!.ToString(), ["media_endpoints"] = prefix, ["upload_limit_bytes"] = uploadLimit };
        using var peak = pid is { } p ? new PeakRss(p) : null;

        // Warm-up, not counted: a fresh server's first requests compile its upload and download paths, and .NET recompiles
        // a method optimised only after 30 calls; 5 warm-ups measured a fresh server 10–20% slower than a warm one.
        var small = RandomNumberGenerator.GetBytes(MiB);
        await TransfersAsync(http, token, prefix, dir, small, WarmUp);
        peak?.TakePeak();

        var up1 = await TransfersAsync(http, token, prefix, dir, small, Math.Max(1, o.N));
        Record(result, "1mb", up1);

        // Throughput with 4 transfers in flight (against 4 disk copies at once): a server's uploads overlap one
        // another's network, CPU and fsync waits, as the file system's journal commits overlap the copies'.
        var up4 = await TransfersAsync(http, token, prefix, dir, small, Math.Max(4, o.N), inFlight: 4);
        Record(result, "1mb_4_in_flight", up4);
        if (pid is { } p1)
        {
            result["rss_after_1mb_kib"] = Rss.Of(p1);
            result["rss_peak_1mb_kib"] = peak!.TakePeak();
        }

        if (uploadLimit is null || uploadLimit > 100 * MiB)
        {
            var big = RandomNumberGenerator.GetBytes(100 * MiB);
            Record(result, "100mb", await TransfersAsync(http, token, prefix, dir, big, 3));
            if (peak is not null)
            {
                result["rss_peak_100mb_kib"] = peak.TakePeak();
            }
        }
        else
        {
            Console.Error.WriteLine($"media: 100 MB transfers skipped, the server's upload limit is {uploadLimit} bytes");
            result["skipped_100mb"] = "the server's upload limit is lower";
        }

        var jpeg = Jpeg(1024, 768);
        var jpegs = new List<string>();
        for (var i = 0; i < Math.Max(2, o.N); i++)
        {
            jpegs.Add(await UploadAsync(http, token, jpeg, "image/jpeg"));
        }

        var clock = Stopwatch.StartNew();
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, 2).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < jpegs.Count)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, $"{prefix}/thumbnail/{jpegs[i]["mxc://".Length..]}?width=320&height=240&method=scale");
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                using var response = await http.SendAsync(request);
                response.EnsureSuccessStatusCode();
                await response.Content.ReadAsByteArrayAsync();
            }
        }));
        result["thumbnails_1024x768_jpeg_per_s"] = Math.Round(jpegs.Count / clock.Elapsed.TotalSeconds, 1);
        if (peak is not null)
        {
            result["rss_peak_thumbnails_kib"] = peak.TakePeak();
        }

        Console.Error.WriteLine($"media ({prefix}): upload 1 MB {up1.Upload} MB/s ({up1.UploadRatio}× the disk floor, median round {up1.UploadRatioMedian}×, {up1.UploadRatioDurable}× a durable copy; 4 in flight {up4.Upload} MB/s, {up4.UploadRatio}×, median round {up4.UploadRatioMedian}×, {up4.UploadRatioDurable}×), download 1 MB {up1.Download} MB/s ({up1.DownloadRatio}×; 4 in flight {up4.Download} MB/s, {up4.DownloadRatio}×), thumbnails {result["thumbnails_1024x768_jpeg_per_s"]}/s");
        return result;
    }

    /// <summary>
    /// Which media endpoints the server serves (the authenticated <c>/_matrix/client/v1/media</c>, or the legacy
    /// <c>/_matrix/media/v3</c> when the first answers 404 or <c>M_UNRECOGNIZED</c>) and its upload limit, if it says.
    /// </summary>
    private static async Task<(string Prefix, long? UploadLimit)> MediaConfigAsync(HttpClient http, string token)
    {
        foreach (var prefix in new[] { "/_matrix/client/v1/media", "/_matrix/media/v3" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, prefix + "/config");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            var json = body.StartsWith('{') ? JsonNode.Parse(body) : null;
            if (response.StatusCode == System.Net.HttpStatusCode.NotFound || json?["errcode"]?.GetValue<string>() == "M_UNRECOGNIZED")
            {
                continue;
            }

            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"GET {prefix}/config: {(int)response.StatusCode} {body}");
            }

            return (prefix, json?["m.upload.size"]?.GetValue<long>());
        }

        throw new InvalidOperationException("the server serves neither the authenticated nor the legacy media endpoints");
    }

    private const int WarmUp = 50;

    private sealed record Transfers(double DiskWrite, double DiskRead, double Upload, double Download, double UploadRatioMedian, double DurableDiskWrite)
    {
        public double UploadRatio => Math.Round(DiskWrite / Upload, 2);

        // Against a copy that survives a power cut, as an answered upload must: the floor plus its folder's fsync.
        public double UploadRatioDurable => Math.Round(DurableDiskWrite / Upload, 2);

        // A download is judged against the same disk copy: a page-cache read alone (DiskRead, in the JSON for reference)
        // runs at memory speed, which nothing that sends over a socket can come within 2× of.
        public double DownloadRatio => Math.Round(DiskWrite / Download, 2);
    }

    private static void Record(JsonObject result, string size, Transfers t)
    {
        result[$"disk_copy_{size}_mb_per_s"] = new JsonObject { ["write"] = t.DiskWrite, ["write_with_folder_fsync"] = t.DurableDiskWrite, ["read"] = t.DiskRead };
        result[$"upload_{size}_mb_per_s"] = t.Upload;
        result[$"download_{size}_mb_per_s"] = t.Download;
        result[$"upload_{size}_times_slower_than_disk"] = t.UploadRatio;
        result[$"upload_{size}_times_slower_than_disk_median_round"] = t.UploadRatioMedian;
        result[$"upload_{size}_times_slower_than_durable_disk_copy"] = t.UploadRatioDurable;
        result[$"download_{size}_times_slower_than_disk"] = t.DownloadRatio;
    }

    /// <summary>
    /// <paramref name="count"/> uploads of <paramref name="data"/>, then as many downloads, <paramref name="inFlight"/>
    /// at a time, each round right after the floor does the same on the disk with as many threads: the bytes written
    /// through a plain file stream (fsync, rename) before each round of uploads, read back before each round of
    /// downloads. Interleaving puts the floor and the server at the same moment of a shared machine, whose disk speed
    /// here moves by 2× within a minute. MB/s of each of the four.
    /// </summary>
    private static async Task<Transfers> TransfersAsync(HttpClient http, string token, string prefix, string dir, byte[] data, int count, int inFlight = 1)
    {
        var disk = new Stopwatch();
        var folderSync = new Stopwatch(); // what the floor adds to be a durable copy: the folder's fsync after the rename
        var server = new Stopwatch();
        var uris = new string[count];
        var rounds = Enumerable.Range(0, count).Chunk(inFlight).ToList();
        var ratios = new List<double>(); // each round's upload time over its disk copy's, just before it
        foreach (var round in rounds)
        {
            var (diskBefore, serverBefore) = (disk.Elapsed, server.Elapsed);
            disk.Start();
            Parallel.ForEach(round, new ParallelOptions { MaxDegreeOfParallelism = inFlight }, i =>
            {
                var tmp = Path.Combine(dir, $"copy{i}.part");
                using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 0))
                {
                    f.Write(data);
                    f.Flush(flushToDisk: true);
                }

                File.Move(tmp, Path.Combine(dir, $"copy{i}"), overwrite: true);
            });
            disk.Stop();
            folderSync.Start();
            SyncFolder(dir);
            folderSync.Stop();

            server.Start();
            await Task.WhenAll(round.Select(async i => uris[i] = await UploadAsync(http, token, data)));
            server.Stop();
            ratios.Add((server.Elapsed - serverBefore) / (disk.Elapsed - diskBefore));
        }

        var (diskWrite, durableWrite, upload) = (disk.Elapsed.TotalSeconds, (disk.Elapsed + folderSync.Elapsed).TotalSeconds, server.Elapsed.TotalSeconds);
        disk.Reset();
        server.Reset();
        foreach (var round in rounds)
        {
            disk.Start();
            Parallel.ForEach(round, new ParallelOptions { MaxDegreeOfParallelism = inFlight }, i =>
            {
                var buffer = new byte[128 * 1024];
                using var f = new FileStream(Path.Combine(dir, $"copy{i}"), FileMode.Open, FileAccess.Read, FileShare.Read, 0);
                while (f.Read(buffer) > 0)
                {
                }
            });
            disk.Stop();
            foreach (var i in round)
            {
                File.Delete(Path.Combine(dir, $"copy{i}"));
            }

            server.Start();
            await Task.WhenAll(round.Select(i => DownloadAsync(http, token, prefix, uris[i], data.Length, new byte[128 * 1024])));
            server.Stop();
        }

        var mb = (double)data.Length * count / MiB;
        ratios.Sort();
        return new Transfers(Math.Round(mb / diskWrite, 1), Math.Round(mb / disk.Elapsed.TotalSeconds, 1), Math.Round(mb / upload, 1), Math.Round(mb / server.Elapsed.TotalSeconds, 1),
            Math.Round(ratios[ratios.Count / 2], 2), Math.Round(mb / durableWrite, 1));
    }

    /// <summary>fsync of a folder (Linux; elsewhere nothing), which .NET cannot open as a file.</summary>
    private static void SyncFolder(string folder)
    {
        if (OperatingSystem.IsLinux() && Open(folder, 0) is var fd and >= 0)
        {
            _ = Fsync(fd);
            _ = Close(fd);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "open")]
    private static extern int Open([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, int flags);

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "fsync")]
    private static extern int Fsync(int fd);

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "close")]
    private static extern int Close(int fd);

    private static async Task<string> UploadAsync(HttpClient http, string token, byte[] data, string type = "application/octet-stream")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/_matrix/media/v3/upload") { Content = new ByteArrayContent(data) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(type);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"upload: {(int)response.StatusCode} {body}");
        }

        return JsonNode.Parse(body)!["content_uri"]!.GetValue<string>();
    }

    private static async Task DownloadAsync(HttpClient http, string token, string prefix, string uri, int size, byte[] buffer)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, prefix + "/download/" + uri["mxc://".Length..]);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        await using var stream = await response.Content.ReadAsStreamAsync();
        long total = 0;
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            total += n;
        }

        if (total != size)
        {
            throw new InvalidOperationException($"downloaded {total} bytes, expected {size}");
        }
    }

    /// <summary>Samples a process's RSS every 20 ms and reports the peak since the last call.</summary>
    private sealed class PeakRss : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private long _peak;

        public PeakRss(int pid) => _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                var rss = Rss.Of(pid);
                long seen;
                do
                {
                    seen = Interlocked.Read(ref _peak);
                }
                while (rss > seen && Interlocked.CompareExchange(ref _peak, rss, seen) != seen);

                await Task.Delay(20, CancellationToken.None);
            }
        });

        public long TakePeak() => Interlocked.Exchange(ref _peak, 0);

        public void Dispose()
        {
            _stop.Cancel();
            _stop.Dispose();
        }
    }

    /// <summary>A 1024×768 patterned JPEG made with libvips, as the server's thumbnailer (quality 85, like a camera export's detail level at this size).</summary>
    private static byte[] Jpeg(int width, int height)
    {
        var rgb = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                // 2×2 blocks: the colour of the block's top-left pixel.
                int bx = x & ~1, by = y & ~1, i = ((y * width) + x) * 3;
                rgb[i] = (byte)(bx * 255 / width);
                rgb[i + 1] = (byte)(by * 255 / height);
                rgb[i + 2] = (byte)((bx ^ by) & 0xFF);
            }
        }

        using var image = NetVips.Image.NewFromMemory(rgb, width, height, 3, NetVips.Enums.BandFormat.Uchar);
        return image.JpegsaveBuffer(q: 85);
    }
}
