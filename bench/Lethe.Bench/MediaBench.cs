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

        result["disk_copy_1mb_mb_per_s"] = DiskCopy(dir, MiB, Math.Max(1, o.N));
        result["disk_copy_100mb_mb_per_s"] = DiskCopy(dir, 100 * MiB, 3);

        var small = RandomNumberGenerator.GetBytes(MiB);
        var (up1, uris1) = await UploadAsync(http, token, small, Math.Max(1, o.N));
        result["upload_1mb_mb_per_s"] = up1;
        result["download_1mb_mb_per_s"] = await DownloadAsync(http, token, prefix, uris1, MiB);
        if (pid is { } p1)
        {
            result["rss_after_1mb_kib"] = Rss.Of(p1);
            result["rss_peak_1mb_kib"] = peak!.TakePeak();
        }

        if (uploadLimit is null || uploadLimit > 100 * MiB)
        {
            var big = RandomNumberGenerator.GetBytes(100 * MiB);
            var (up100, uris100) = await UploadAsync(http, token, big, 3);
            result["upload_100mb_mb_per_s"] = up100;
            result["download_100mb_mb_per_s"] = await DownloadAsync(http, token, prefix, uris100, 100 * MiB);
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
        var (_, jpegs) = await UploadAsync(http, token, jpeg, Math.Max(2, o.N), "image/jpeg");
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

        Console.Error.WriteLine($"media ({prefix}): upload 1 MB {up1} MB/s, download 1 MB {result["download_1mb_mb_per_s"]} MB/s, thumbnails {result["thumbnails_1024x768_jpeg_per_s"]}/s");
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

    /// <summary>The floor: the same bytes written (fsync, rename) and read back through plain file streams, MB/s for the round trip's slower half.</summary>
    private static JsonObject DiskCopy(string dir, int size, int count)
    {
        var data = RandomNumberGenerator.GetBytes(size);
        var write = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            var tmp = Path.Combine(dir, $"copy{i}.part");
            using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 0))
            {
                f.Write(data);
                f.Flush(flushToDisk: true);
            }

            File.Move(tmp, Path.Combine(dir, $"copy{i}"), overwrite: true);
        }

        var writeSeconds = write.Elapsed.TotalSeconds;
        var read = Stopwatch.StartNew();
        var buffer = new byte[128 * 1024];
        for (var i = 0; i < count; i++)
        {
            using var f = new FileStream(Path.Combine(dir, $"copy{i}"), FileMode.Open, FileAccess.Read, FileShare.Read, 0);
            while (f.Read(buffer) > 0)
            {
            }

            File.Delete(f.Name);
        }

        var mb = (double)size * count / MiB;
        return new JsonObject { ["write"] = Math.Round(mb / writeSeconds, 1), ["read"] = Math.Round(mb / read.Elapsed.TotalSeconds, 1) };
    }

    private static async Task<(double MbPerSecond, List<string> Uris)> UploadAsync(HttpClient http, string token, byte[] data, int count, string type = "application/octet-stream")
    {
        var uris = new List<string>();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
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

            uris.Add(JsonNode.Parse(body)!["content_uri"]!.GetValue<string>());
        }

        return (Math.Round((double)data.Length * count / MiB / clock.Elapsed.TotalSeconds, 1), uris);
    }

    private static async Task<double> DownloadAsync(HttpClient http, string token, string prefix, List<string> uris, int size)
    {
        var buffer = new byte[128 * 1024];
        var clock = Stopwatch.StartNew();
        foreach (var uri in uris)
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

        return Math.Round((double)size * uris.Count / MiB / clock.Elapsed.TotalSeconds, 1);
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
