using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;

namespace Lethe.Homeserver.Tests.Media;

/// <summary>
/// Media through the real <c>./lethe</c> process, which is the native (AOT) executable where a C compiler is installed.
/// The in-process tests run the JIT build; the native one calls libvips through stubs compiled ahead of time and
/// streams files with no JIT, so its thumbnails, animations and bomb checks are checked here once more.
/// </summary>
public sealed class MediaProcessTests
{
    [Fact]
    public async Task TheNativeServerStoresServesAndThumbnailsImages()
    {
        if (!LetheProcess.NativeBuild)
        {
            Assert.Skip("no C compiler here, so ./lethe runs the JIT build, which the in-process media tests cover");
        }

        var dir = TestHomeserver.NewTempDir();
        var config = await LetheProcess.WriteServeConfigAsync(dir, "media.test");
        await using var lethe = LetheProcess.Start(dir, "serve", "--config", config);
        using var http = new HttpClient { BaseAddress = await lethe.WaitForUrlAsync(TimeSpan.FromSeconds(90)) };
        var alice = await new MatrixClient(http).RegisterAsync("alice");

        var jpeg = TestImages.Jpeg(1024, 768);
        var photo = await UploadAsync(http, alice, jpeg, "image/jpeg");
        using (var download = await GetAsync(http, alice, "/_matrix/client/v1/media/download/" + photo[6..]))
        {
            Assert.Equal(HttpStatusCode.OK, download.StatusCode);
            Assert.Equal(jpeg, await download.Content.ReadAsByteArrayAsync());
        }

        // One of the default sizes (320×240 scale), then again from the cache.
        for (var attempt = 0; attempt < 2; attempt++)
        {
            using var thumbnail = await GetAsync(http, alice, Thumbnail(photo, 320, 240, "scale"));
            var bytes = await thumbnail.Content.ReadAsByteArrayAsync();
            Assert.True(thumbnail.StatusCode == HttpStatusCode.OK, Encoding.UTF8.GetString(bytes));
            Assert.Equal("image/jpeg", thumbnail.Content.Headers.ContentType!.MediaType);
            Assert.Equal((320, 240), TestImages.Decode(bytes, "image/jpeg"));
        }

        var gif = await UploadAsync(http, alice, TestImages.AnimatedGif(200, 100, 4), "image/gif");
        using (var animated = await GetAsync(http, alice, Thumbnail(gif, 96, 96, "crop") + "&animated=true"))
        {
            var bytes = await animated.Content.ReadAsByteArrayAsync();
            Assert.True(animated.StatusCode == HttpStatusCode.OK, Encoding.UTF8.GetString(bytes));
            Assert.Equal("image/gif", animated.Content.Headers.ContentType!.MediaType);
            Assert.Equal(4, TestImages.GifFrames(bytes));
            Assert.Equal((96, 96), TestImages.Decode(bytes, "image/gif"));
        }

        // A PNG that claims 100,000 × 100,000 pixels is refused from its header, never decoded.
        var bomb = await UploadAsync(http, alice, TestImages.PngBomb(100_000, 100_000), "image/png");
        var refused = await alice.GetAsync(Thumbnail(bomb, 320, 240, "scale"));
        refused.Error(HttpStatusCode.RequestEntityTooLarge, "M_TOO_LARGE");
        Assert.Contains("pixels", refused.Body["error"]!.GetValue<string>(), StringComparison.Ordinal);

        lethe.Terminate();
        Assert.Equal(0, await lethe.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }

    private static string Thumbnail(string mxc, int width, int height, string method) =>
        $"/_matrix/client/v1/media/thumbnail/{mxc["mxc://".Length..]}?width={width}&height={height}&method={method}";

    private static async Task<string> UploadAsync(HttpClient http, MatrixClient who, byte[] bytes, string contentType)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/_matrix/media/v3/upload") { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", who.AccessToken);
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"upload: {(int)response.StatusCode} {body}");
        return JsonNode.Parse(body)!["content_uri"]!.GetValue<string>();
    }

    private static async Task<HttpResponseMessage> GetAsync(HttpClient http, MatrixClient who, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", who.AccessToken);
        return await http.SendAsync(request);
    }
}
