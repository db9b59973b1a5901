using System.Diagnostics;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Lethe.Bench;

/// <summary>
/// The media benchmark (issue 6): starts its own Lethe server (SQLite, data folder in /tmp) and measures upload and
/// download throughput for 1 MB and 100 MB files (MB/s, server peak RSS), next to a raw disk copy of the same bytes
/// on the same file system (write + fsync + rename, then read), and the thumbnail rate for 1024×768 JPEGs (every
/// request a cache miss: each JPEG is its own upload).
/// </summary>
public static class MediaBench
{
    private const int MiB = 1024 * 1024;

    /// <summary>Runs the benchmark; <c>--n</c> is the number of 1 MB transfers and of thumbnails.</summary>
    public static async Task<JsonObject> RunAsync(Options o, string lethe)
    {
        await using var local = await LocalServer.CreateAsync(lethe, postgres: null, """
            max_upload_size: 200M
            dynamic_thumbnails: true
            """);
        var dir = local.Dir;
        var secret = local.Secret;
        using var http = Client.NewHttp(local.Url);
        var server = await local.StartAsync(http);
        try
        {
            var user = await Client.RegisterAsync(http, secret);
            var token = user.Token;
            var result = new JsonObject { ["scenario"] = "media", ["engine"] = "sqlite" };
            var peak = new PeakRss(server.Id);

            result["disk_copy_1mb_mb_per_s"] = DiskCopy(dir, MiB, Math.Max(1, o.N));
            result["disk_copy_100mb_mb_per_s"] = DiskCopy(dir, 100 * MiB, 3);

            var small = RandomNumberGenerator.GetBytes(MiB);
            var (up1, uris1) = await UploadAsync(http, token, small, Math.Max(1, o.N));
            result["upload_1mb_mb_per_s"] = up1;
            result["download_1mb_mb_per_s"] = await DownloadAsync(http, token, uris1, MiB);
            result["rss_after_1mb_kib"] = Rss.Of(server.Id);
            result["rss_peak_1mb_kib"] = peak.TakePeak();

            var big = RandomNumberGenerator.GetBytes(100 * MiB);
            var (up100, uris100) = await UploadAsync(http, token, big, 3);
            result["upload_100mb_mb_per_s"] = up100;
            result["download_100mb_mb_per_s"] = await DownloadAsync(http, token, uris100, 100 * MiB);
            result["rss_peak_100mb_kib"] = peak.TakePeak();

            var jpeg = Jpeg(1024, 768);
            var (_, jpegs) = await UploadAsync(http, token, jpeg, Math.Max(2, o.N), "image/jpeg");
            var clock = Stopwatch.StartNew();
            var next = -1;
            await Task.WhenAll(Enumerable.Range(0, 2).Select(async _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < jpegs.Count)
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, $"/_matrix/client/v1/media/thumbnail/{jpegs[i]["mxc://".Length..]}?width=320&height=240&method=scale");
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                    using var response = await http.SendAsync(request);
                    response.EnsureSuccessStatusCode();
                    await response.Content.ReadAsByteArrayAsync();
                }
            }));
            result["thumbnails_1024x768_jpeg_per_s"] = Math.Round(jpegs.Count / clock.Elapsed.TotalSeconds, 1);
            result["rss_peak_thumbnails_kib"] = peak.TakePeak();
            peak.Dispose();
            return result;
        }
        finally
        {
            await local.StopAsync();
        }
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

    private static async Task<double> DownloadAsync(HttpClient http, string token, List<string> uris, int size)
    {
        var buffer = new byte[128 * 1024];
        var clock = Stopwatch.StartNew();
        foreach (var uri in uris)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/_matrix/client/v1/media/download/" + uri["mxc://".Length..]);
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

    /// <summary>A 1024×768 gradient JPEG made with libgd (quality 85, like a camera export's detail level at this size).</summary>
    private static byte[] Jpeg(int width, int height)
    {
        var im = gdImageCreateTrueColor(width, height);
        try
        {
            for (var y = 0; y < height; y += 2)
            {
                for (var x = 0; x < width; x += 2)
                {
                    gdImageFilledRectangle(im, x, y, x + 1, y + 1, ((x * 255 / width) << 16) | ((y * 255 / height) << 8) | ((x ^ y) & 0xFF));
                }
            }

            var ptr = gdImageJpegPtr(im, out var size, 85);
            try
            {
                var bytes = new byte[size];
                Marshal.Copy(ptr, bytes, 0, size);
                return bytes;
            }
            finally
            {
                gdFree(ptr);
            }
        }
        finally
        {
            gdImageDestroy(im);
        }
    }

    [DllImport("libgd.so.3")]
    private static extern IntPtr gdImageCreateTrueColor(int sx, int sy);

    [DllImport("libgd.so.3")]
    private static extern void gdImageFilledRectangle(IntPtr im, int x1, int y1, int x2, int y2, int color);

    [DllImport("libgd.so.3")]
    private static extern IntPtr gdImageJpegPtr(IntPtr image, out int size, int quality);

    [DllImport("libgd.so.3")]
    private static extern void gdImageDestroy(IntPtr image);

    [DllImport("libgd.so.3")]
    private static extern void gdFree(IntPtr data);
}
