using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;
using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver.Tests.Media;

/// <summary>The media repository end to end over real HTTP: uploads, downloads, thumbnails, bad input and deletion, on both engines.</summary>
public abstract class MediaTests(DatabaseEngine engine) : IAsyncLifetime
{
    private const string Config = "max_upload_size: 200M\ndynamic_thumbnails: true\n";

    protected TestHomeserver Server { get; private set; } = null!;

    protected MatrixClient Alice { get; private set; } = null!;

    protected MatrixClient Bob { get; private set; } = null!;

    private string MediaDir => Path.Combine(Server.Dir, "media");

    public async ValueTask InitializeAsync()
    {
        Server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + Config);
        Alice = await Server.RegisterAsync("alice");
        Bob = await Server.RegisterAsync("bob");
    }

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    [Fact]
    public async Task UploadAndAuthenticatedDownloadAreByteExactWithSafeHeaders()
    {
        var bytes = RandomNumberGenerator.GetBytes(70_000);
        var uri = await UploadAsync(Alice, bytes, "image/png", "holiday photo.png");
        Assert.StartsWith("mxc://test.local/", uri, StringComparison.Ordinal);

        using var response = await GetAsync(Bob, Download(uri));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(bytes, await response.Content.ReadAsByteArrayAsync());
        Assert.Equal("image/png", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("inline; filename*=utf-8''holiday%20photo.png", string.Join(",", response.Content.Headers.GetValues("Content-Disposition")));
        Assert.StartsWith("sandbox;", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());

        // The file name in the path overrides the uploaded one.
        using var renamed = await GetAsync(Bob, Download(uri) + "/other.png");
        Assert.Equal("inline; filename*=utf-8''other.png", string.Join(",", renamed.Content.Headers.GetValues("Content-Disposition")));

        var config = (await Alice.GetAsync("/_matrix/client/v1/media/config")).Ok();
        Assert.Equal(200L * 1024 * 1024, config["m.upload.size"]!.GetValue<long>());
    }

    [Fact]
    public async Task ActiveContentIsServedAsAnAttachmentNeverInline()
    {
        var uri = await UploadAsync(Alice, "<script>alert(1)</script>"u8.ToArray(), "text/html", "page\".html");
        using var response = await GetAsync(Bob, Download(uri));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var disposition = string.Join(",", response.Content.Headers.GetValues("Content-Disposition"));
        Assert.StartsWith("attachment;", disposition, StringComparison.Ordinal);
        Assert.Contains("filename*=utf-8''page%22.html", disposition, StringComparison.Ordinal);
        Assert.Equal("text/html", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("utf-8", response.Content.Headers.ContentType.CharSet);
        Assert.StartsWith("sandbox;", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RangeRequestsServePartsOfTheFile()
    {
        var bytes = RandomNumberGenerator.GetBytes(10_000);
        var uri = await UploadAsync(Alice, bytes, "application/octet-stream", null);
        using var request = new HttpRequestMessage(HttpMethod.Get, Download(uri));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Bob.AccessToken);
        request.Headers.Range = new RangeHeaderValue(100, 199);
        using var response = await Server.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal(bytes[100..200], await response.Content.ReadAsByteArrayAsync());
        Assert.Equal(10_000, response.Content.Headers.ContentRange!.Length);
        Assert.StartsWith("attachment", string.Join(",", response.Content.Headers.GetValues("Content-Disposition")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task LegacyUnauthenticatedDownloadsAreRefusedWhileAuthenticatedMediaIsOn()
    {
        var bytes = RandomNumberGenerator.GetBytes(1000);
        var uri = await UploadAsync(Alice, bytes, "image/png", null);
        var anonymous = Server.NewClient();
        (await anonymous.GetAsync(Download(uri))).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
        (await anonymous.GetAsync(uri.Replace("mxc://", "/_matrix/media/v3/download/", StringComparison.Ordinal))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await anonymous.GetAsync(uri.Replace("mxc://", "/_matrix/media/r0/download/", StringComparison.Ordinal))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await Bob.GetAsync(uri.Replace("mxc://", "/_matrix/media/v3/download/", StringComparison.Ordinal))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await anonymous.GetAsync(uri.Replace("mxc://", "/_matrix/media/v3/thumbnail/", StringComparison.Ordinal) + "?width=32&height=32")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }

    [Fact]
    public async Task MediaUploadedWhileAuthenticationWasOffStaysOnTheLegacyEndpointsAfterItIsTurnedOn()
    {
        // A server with authenticated media off: legacy downloads work without a token.
        var dir = Server.Dir;
        await Server.Host.StopAsync();
        var yamlPath = Path.Combine(dir, "homeserver.yaml");
        var yaml = await File.ReadAllTextAsync(yamlPath);
        var old = RandomNumberGenerator.GetBytes(500);
        string oldUri;
        await using (var off = await StartAsync(yamlPath, yaml + "enable_authenticated_media: false\n"))
        {
            using var http = ClientFor(off);
            var alice = new MatrixClient(http);
            await alice.LoginAsync("alice");
            oldUri = await UploadAsync(alice, old, "image/png", null, http);
            var legacy = await http.GetAsync(oldUri.Replace("mxc://", "/_matrix/media/v3/download/", StringComparison.Ordinal));
            Assert.Equal(HttpStatusCode.OK, legacy.StatusCode);
            Assert.Equal(old, await legacy.Content.ReadAsByteArrayAsync());
        }

        // Turned on (the default): the old media stays reachable there, new media does not (Synapse's freeze).
        await using var on = await StartAsync(yamlPath, yaml);
        using var client = ClientFor(on);
        var a = new MatrixClient(client);
        await a.LoginAsync("alice");
        var newUri = await UploadAsync(a, RandomNumberGenerator.GetBytes(500), "image/png", null, client);
        using var oldLegacy = await client.GetAsync(oldUri.Replace("mxc://", "/_matrix/media/v3/download/", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, oldLegacy.StatusCode);
        Assert.Equal(old, await oldLegacy.Content.ReadAsByteArrayAsync());
        using var newLegacy = await client.GetAsync(newUri.Replace("mxc://", "/_matrix/media/v3/download/", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.NotFound, newLegacy.StatusCode);
    }

    [Fact]
    public async Task AsyncUploadReservesAnIdThatOnlyItsOwnerFillsOnce()
    {
        var created = (await Alice.PostAsync("/_matrix/media/v1/create", null)).Ok();
        var uri = created["content_uri"]!.GetValue<string>();
        Assert.True(created["unused_expires_at"]!.GetValue<long>() > DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        (await Bob.GetAsync(Download(uri) + "?timeout_ms=0")).Error(HttpStatusCode.GatewayTimeout, "M_NOT_YET_UPLOADED");

        // A download waiting for the bytes gets them as soon as they arrive.
        var waiting = GetAsync(Bob, Download(uri) + "?timeout_ms=20000");
        var bytes = RandomNumberGenerator.GetBytes(3000);
        var put = uri.Replace("mxc://", "/_matrix/media/v3/upload/", StringComparison.Ordinal);
        using (var denied = await PutBytesAsync(Bob, put, bytes))
        {
            Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        }

        using (var ok = await PutBytesAsync(Alice, put, bytes))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using var response = await waiting;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(bytes, await response.Content.ReadAsByteArrayAsync());

        using var again = await PutBytesAsync(Alice, put, bytes);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Contains("M_CANNOT_OVERWRITE_MEDIA", await again.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var unknown = await PutBytesAsync(Alice, "/_matrix/media/v3/upload/test.local/NoSuchReservation", bytes);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task PerUserUploadVolumeLimitsAreEnforced()
    {
        await using var limited = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + "media_upload_limits:\n  - time_period: 1h\n    max_size: 1K\n");
        var alice = await limited.RegisterAsync("alice");
        var bob = await limited.RegisterAsync("bob");
        await UploadAsync(alice, new byte[600], "application/octet-stream", null, limited.Client);
        using (var refused = await PostBytesAsync(alice, "/_matrix/media/v3/upload", new byte[600], "application/octet-stream", limited.Client))
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("M_RESOURCE_LIMIT_EXCEEDED", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Chunked (no announced size): checked once the size is known, and nothing is kept.
        using var content = new StreamContent(new PatternStream(600));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/_matrix/media/v3/upload") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", alice.AccessToken);
        using (var chunked = await limited.Client.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.BadRequest, chunked.StatusCode);
        }

        Assert.Single(Directory.GetFiles(Path.Combine(limited.Dir, "media", "local_content"), "*", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(Path.Combine(limited.Dir, "media", "tmp")));

        // The limit is per user.
        await UploadAsync(bob, new byte[600], "application/octet-stream", null, limited.Client);
    }

    [Fact]
    public async Task TooManyPendingReservationsAreRefused()
    {
        for (var i = 0; i < 5; i++)
        {
            (await Bob.PostAsync("/_matrix/media/v1/create", null)).Ok();
        }

        (await Bob.PostAsync("/_matrix/media/v1/create", null)).Error((HttpStatusCode)429, "M_LIMIT_EXCEEDED");
    }

    [Theory]
    [InlineData("jpeg", "scale", 320, 240, "image/jpeg", 320, 240)]
    [InlineData("jpeg", "crop", 100, 100, "image/jpeg", 100, 100)]
    [InlineData("jpeg", "scale", 200, 200, "image/jpeg", 200, 150)]
    [InlineData("jpeg", "scale", 4000, 3000, "image/jpeg", 1024, 768)]
    [InlineData("png", "crop", 64, 32, "image/png", 64, 32)]
    [InlineData("gif", "scale", 100, 100, "image/png", 100, 75)]
    [InlineData("webp", "scale", 320, 240, "image/jpeg", 320, 240)]
    public async Task ThumbnailsHaveTheRequestedDimensionsAndType(string format, string method, int width, int height, string type, int expectedWidth, int expectedHeight)
    {
        var image = format switch
        {
            "jpeg" => TestImages.Jpeg(1024, 768),
            "png" => TestImages.Png(1024, 768),
            "webp" => TestImages.WebP(1024, 768),
            _ => TestImages.Gif(1024, 768),
        };
        var uri = await UploadAsync(Alice, image, "image/" + format, null);
        for (var attempt = 0; attempt < 2; attempt++)
        {
            // The second request is served from the cache.
            using var response = await GetAsync(Bob, Thumbnail(uri, width, height, method));
            var bytes = await response.Content.ReadAsByteArrayAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, Encoding.UTF8.GetString(bytes));
            Assert.Equal(type, response.Content.Headers.ContentType!.MediaType);
            Assert.Equal((expectedWidth, expectedHeight), TestImages.Decode(bytes, type));
        }

        Assert.Single(Directory.GetFiles(ThumbnailFolder(uri)));
    }

    [Theory]
    [InlineData("gif", "scale", 100, 100, "image/gif", 100, 50)]
    [InlineData("gif", "crop", 40, 40, "image/gif", 40, 40)]
    [InlineData("webp", "scale", 100, 100, "image/webp", 100, 50)]
    public async Task AnimatedImagesGiveAnimatedThumbnailsWhenAskedAndStillsOtherwise(string format, string method, int width, int height, string type, int expectedWidth, int expectedHeight)
    {
        var source = format == "gif" ? TestImages.AnimatedGif(200, 100, 4) : TestImages.AnimatedWebP(200, 100, 4);
        Assert.Equal(4, format == "gif" ? TestImages.GifFrames(source) : TestImages.WebPFrames(source));
        var uri = await UploadAsync(Alice, source, "image/" + format, null);

        for (var attempt = 0; attempt < 2; attempt++)
        {
            // The second round is served from the cache, where the animation and the still sit side by side.
            using var animated = await GetAsync(Bob, Thumbnail(uri, width, height, method) + "&animated=true");
            var bytes = await animated.Content.ReadAsByteArrayAsync();
            Assert.True(animated.StatusCode == HttpStatusCode.OK, Encoding.UTF8.GetString(bytes));
            Assert.Equal(type, animated.Content.Headers.ContentType!.MediaType);
            Assert.Equal(4, format == "gif" ? TestImages.GifFrames(bytes) : TestImages.WebPFrames(bytes));
            Assert.Equal((expectedWidth, expectedHeight), TestImages.Decode(bytes, type));

            using var still = await GetAsync(Bob, Thumbnail(uri, width, height, method) + "&animated=false");
            bytes = await still.Content.ReadAsByteArrayAsync();
            Assert.Equal(HttpStatusCode.OK, still.StatusCode);
            var stillType = format == "gif" ? "image/png" : "image/jpeg";
            Assert.Equal(stillType, still.Content.Headers.ContentType!.MediaType);
            Assert.Equal((expectedWidth, expectedHeight), TestImages.Decode(bytes, stillType));
        }

        Assert.Equal(2, Directory.GetFiles(ThumbnailFolder(uri)).Length);
    }

    [Fact]
    public async Task AnimatedRequestsForStillImagesGetStills()
    {
        var uri = await UploadAsync(Alice, TestImages.Gif(200, 100), "image/gif", null);
        for (var attempt = 0; attempt < 2; attempt++)
        {
            using var response = await GetAsync(Bob, Thumbnail(uri, 100, 100, "scale") + "&animated=true");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("image/png", response.Content.Headers.ContentType!.MediaType);
            Assert.Equal((100, 50), TestImages.Decode(await response.Content.ReadAsByteArrayAsync(), "image/png"));
        }

        Assert.Single(Directory.GetFiles(ThumbnailFolder(uri)));
    }

    [Fact]
    public async Task AnAnimationWhoseFramesTogetherPassThePixelLimitGetsAStill()
    {
        // 40 frames of 200×100 is 800,000 pixels: over a 500,000 limit although each frame is well under it.
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + "dynamic_thumbnails: true\nmax_image_pixels: 500000\n");
        var alice = await server.RegisterAsync("alice");
        var uri = await UploadAsync(alice, TestImages.AnimatedGif(200, 100, 40), "image/gif", null, server.Client);
        using var response = await GetAsync(alice, Thumbnail(uri, 100, 100, "scale") + "&animated=true", server.Client);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("image/png", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal((100, 50), TestImages.Decode(await response.Content.ReadAsByteArrayAsync(), "image/png"));
    }

    [Theory]
    [InlineData("png-bomb")]
    [InlineData("jpeg-bomb")]
    public async Task ImageBombsAreRefusedWithoutDecoding(string kind)
    {
        var bomb = kind == "png-bomb" ? TestImages.PngBomb(100_000, 100_000) : TestImages.JpegBomb(60_000, 60_000);
        var uri = await UploadAsync(Alice, bomb, kind == "png-bomb" ? "image/png" : "image/jpeg", null);
        var response = await Bob.GetAsync(Thumbnail(uri, 96, 96, "crop"));
        response.Error(HttpStatusCode.RequestEntityTooLarge, "M_TOO_LARGE");
        Assert.Contains("pixels", response.Body["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(ThumbnailFolder(uri)));

        // The server is fine afterwards.
        var ok = await UploadAsync(Alice, TestImages.Jpeg(64, 64), "image/jpeg", null);
        using var thumb = await GetAsync(Bob, Thumbnail(ok, 32, 32, "crop"));
        Assert.Equal(HttpStatusCode.OK, thumb.StatusCode);
    }

    [Fact]
    public async Task ThumbnailsOfNonImagesAndBadParametersAreClearErrors()
    {
        var text = await UploadAsync(Alice, "hello"u8.ToArray(), "text/plain", null);
        (await Bob.GetAsync(Thumbnail(text, 32, 32, "crop"))).Error(HttpStatusCode.BadRequest, "M_UNKNOWN");
        var broken = await UploadAsync(Alice, [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x10], "image/jpeg", null);
        (await Bob.GetAsync(Thumbnail(broken, 32, 32, "crop"))).Error(HttpStatusCode.BadRequest, "M_UNKNOWN");
        var image = await UploadAsync(Alice, TestImages.Png(10, 10), "image/png", null);
        (await Bob.GetAsync(Thumbnail(image, 32, 32, "stretch"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Bob.GetAsync(Thumbnail(image, 0, 32, "crop"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Bob.GetAsync(Thumbnail(image, -5, 32, "crop"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Bob.GetAsync(Download(image).Replace("/download/", "/thumbnail/", StringComparison.Ordinal))).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
    }

    [Fact]
    public async Task UnknownRemoteAndHostileMediaIdsAreNotFound()
    {
        var stored = await UploadAsync(Alice, "secret"u8.ToArray(), "text/plain", null);
        await File.WriteAllTextAsync(Path.Combine(MediaDir, "outside.txt"), "not media");
        foreach (var path in new[]
        {
            "/_matrix/client/v1/media/download/test.local/NoSuchMediaIdAtAll",
            "/_matrix/client/v1/media/download/other.server/" + MediaId(stored),
            "/_matrix/client/v1/media/download/test.local/..%2F..%2Fhomeserver.yaml",
            "/_matrix/client/v1/media/download/test.local/..%2Foutside.txt",
            "/_matrix/client/v1/media/download/test.local/local_content%2F..%2F..%2Fhomeserver.yaml",
            "/_matrix/client/v1/media/download/test.local/tmp",
            "/_matrix/client/v1/media/download/test.local/%2E%2E%2F%2E%2E",
            "/_matrix/client/v1/media/thumbnail/test.local/..%2F..%2Fhomeserver.yaml?width=32&height=32",
        })
        {
            (await Bob.GetAsync(path)).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        }

        // A hostile file name is only ever a name: the bytes served are the media's, the header is encoded.
        using var response = await GetAsync(Bob, Download(stored) + "/..%2F..%2Fhomeserver.yaml");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("secret", await response.Content.ReadAsStringAsync());
        Assert.Contains("filename*=utf-8''..%2F..%2Fhomeserver.yaml", string.Join(",", response.Content.Headers.GetValues("Content-Disposition")), StringComparison.Ordinal);

        // Upload file names with path separators are stored as names, never as paths.
        var before = StoreFiles();
        var uri = await UploadAsync(Alice, "x"u8.ToArray(), "text/plain", "../../../escape.txt");
        Assert.False(File.Exists(Path.Combine(Server.Dir, "..", "escape.txt")));
        Assert.Equal(before.Append(ContentPath(uri)).Order(StringComparer.Ordinal), StoreFiles());
        using var bad = await PostBytesAsync(Alice, "/_matrix/media/v3/upload?filename=" + Uri.EscapeDataString("a\nb"), "x"u8.ToArray(), "text/plain");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task OversizedUploadsAreRefusedAndLeaveNothingOnDisk()
    {
        await using var small = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + "max_upload_size: 1K\n");
        var alice = await small.RegisterAsync("alice");
        var media = Path.Combine(small.Dir, "media");

        // Announced too large: refused before reading.
        using (var declared = await PostBytesAsync(alice, "/_matrix/media/v3/upload", new byte[2048], "application/octet-stream", small.Client))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, declared.StatusCode);
            Assert.Contains("M_TOO_LARGE", await declared.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Chunked, so no length is announced: refused when the count passes the limit.
        using var content = new StreamContent(new PatternStream(5000));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/_matrix/media/v3/upload") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", alice.AccessToken);
        using (var chunked = await small.Client.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, chunked.StatusCode);
            Assert.Contains("M_TOO_LARGE", await chunked.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Empty(Directory.GetFiles(media, "*", SearchOption.AllDirectories));
        Assert.Equal(0, await small.Host.Database.ReadAsync(c => Dapper.SqlMapper.ExecuteScalarAsync<long>(c, "SELECT COUNT(*) FROM media")));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TruncatedUploadsLeaveNothingOnDisk(bool halfClose)
    {
        var before = StoreFiles();
        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(Server.BaseAddress.Host, Server.BaseAddress.Port);
            var head = $"POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: {Server.BaseAddress.Authority}\r\nAuthorization: Bearer {Alice.AccessToken}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n";
            await socket.SendAsync(Encoding.ASCII.GetBytes(head));
            await socket.SendAsync(new byte[300_000]);

            // The body ends 700,000 bytes early: the client stops sending, or goes away entirely.
            await Poll.UntilAsync(() => Task.FromResult(Directory.GetFiles(Path.Combine(MediaDir, "tmp")).Length > 0), TimeSpan.FromSeconds(20), "the upload to start streaming to a temp file");
            if (halfClose)
            {
                socket.Shutdown(SocketShutdown.Send);
            }
        }

        // Kestrel treats the end of the client's stream as the end of the connection, so there is nobody to answer; what
        // matters is what is left behind: the partial file is gone and no media row names it.
        await Poll.UntilAsync(() => Task.FromResult(StoreFiles().SequenceEqual(before)), TimeSpan.FromSeconds(20), "the partial upload to be deleted");
        Assert.Equal(0, await Server.Host.Database.ReadAsync(c => Dapper.SqlMapper.ExecuteScalarAsync<long>(c, "SELECT COUNT(*) FROM media")));
        Assert.DoesNotContain("Unhandled", Server.Log.Text, StringComparison.Ordinal);

        // And the next upload works.
        var uri = await UploadAsync(Alice, RandomNumberGenerator.GetBytes(1000), "application/octet-stream", null);
        Assert.True(File.Exists(ContentPath(uri)));
    }

    [Fact]
    public async Task AnAdminDeletingMediaDeletesTheBytesAndThumbnails()
    {
        var admin = await AdminAsync();
        var uri = await UploadAsync(Alice, TestImages.Jpeg(300, 200), "image/jpeg", null);
        using (var thumb = await GetAsync(Bob, Thumbnail(uri, 96, 96, "crop")))
        {
            Assert.Equal(HttpStatusCode.OK, thumb.StatusCode);
        }

        Assert.True(File.Exists(ContentPath(uri)));
        Assert.NotEmpty(Directory.GetFiles(ThumbnailFolder(uri)));
        (await Alice.DeleteAsync("/_synapse/admin/v1/media/test.local/" + MediaId(uri))).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");

        var deleted = (await admin.DeleteAsync("/_synapse/admin/v1/media/test.local/" + MediaId(uri))).Ok();
        Assert.Equal(1, deleted["total"]!.GetValue<int>());
        Assert.Equal(MediaId(uri), deleted["deleted_media"]![0]!.GetValue<string>());
        Assert.False(File.Exists(ContentPath(uri)));
        Assert.False(Directory.Exists(ThumbnailFolder(uri)));
        (await Bob.GetAsync(Download(uri))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await admin.DeleteAsync("/_synapse/admin/v1/media/test.local/" + MediaId(uri))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await admin.DeleteAsync("/_synapse/admin/v1/media/other.server/" + MediaId(uri))).Error(HttpStatusCode.BadRequest, "M_UNKNOWN");
    }

    [Fact]
    public async Task UploadersDeleteTheirOwnMediaAndNobodyElses()
    {
        var uri = await UploadAsync(Alice, RandomNumberGenerator.GetBytes(100), "image/png", null);
        var path = "/_matrix/client/unstable/org.matrix.msc3911/media/test.local/" + MediaId(uri);
        (await Bob.DeleteAsync(path)).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        Assert.True(File.Exists(ContentPath(uri)));
        (await Alice.DeleteAsync(path)).Ok();
        Assert.False(File.Exists(ContentPath(uri)));
        (await Alice.DeleteAsync(path)).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }

    [Fact]
    public async Task AnAdminListsAndDeletesEveryUploadOfAUser()
    {
        var admin = await AdminAsync();
        var mine = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            mine.Add(await UploadAsync(Alice, RandomNumberGenerator.GetBytes(100 + i), "application/octet-stream", $"f{i}"));
        }

        var bobs = await UploadAsync(Bob, RandomNumberGenerator.GetBytes(10), "application/octet-stream", null);
        var list = (await admin.GetAsync($"/_synapse/admin/v1/users/{Uri.EscapeDataString(Alice.UserId)}/media")).Ok();
        Assert.Equal(3, list["total"]!.GetValue<int>());
        Assert.Equal(mine.Select(MediaId).Order(), list["media"]!.AsArray().Select(m => m!["media_id"]!.GetValue<string>()).Order());

        var deleted = (await admin.DeleteAsync($"/_synapse/admin/v1/users/{Uri.EscapeDataString(Alice.UserId)}/media")).Ok();
        Assert.Equal(3, deleted["total"]!.GetValue<int>());
        Assert.All(mine, m => Assert.False(File.Exists(ContentPath(m))));
        Assert.True(File.Exists(ContentPath(bobs)));
        (await admin.GetAsync("/_synapse/admin/v1/users/@someone:elsewhere/media")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }

    [Fact]
    public async Task DeletingMediaBeforeATimeKeepsAvatarsAndNewerMedia()
    {
        var admin = await AdminAsync();
        var old = await UploadAsync(Alice, RandomNumberGenerator.GetBytes(100), "image/png", null);
        var avatar = await UploadAsync(Alice, RandomNumberGenerator.GetBytes(100), "image/png", null);
        (await Alice.PutAsync($"/_matrix/client/v3/profile/{Uri.EscapeDataString(Alice.UserId)}/avatar_url", new JsonObject { ["avatar_url"] = avatar })).Ok();
        var cutoff = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 1;
        await Poll.UntilAsync(() => Task.FromResult(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() > cutoff), TimeSpan.FromSeconds(5), "the clock to pass the cutoff");
        var newer = await UploadAsync(Alice, RandomNumberGenerator.GetBytes(100), "image/png", null);

        var deleted = (await admin.PostAsync($"/_synapse/admin/v1/media/delete?before_ts={cutoff}", null)).Ok();
        Assert.Equal([MediaId(old)], deleted["deleted_media"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.False(File.Exists(ContentPath(old)));
        Assert.True(File.Exists(ContentPath(avatar)));
        Assert.True(File.Exists(ContentPath(newer)));

        deleted = (await admin.PostAsync($"/_synapse/admin/v1/media/test.local/delete?before_ts={cutoff}&keep_profiles=false", null)).Ok();
        Assert.Equal([MediaId(avatar)], deleted["deleted_media"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.False(File.Exists(ContentPath(avatar)));
        (await admin.PostAsync("/_synapse/admin/v1/media/delete", null)).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
    }

    [Fact]
    public async Task QuarantinedMediaIsNotServedAndProtectedMediaCannotBeQuarantined()
    {
        var admin = await AdminAsync();
        var uri = await UploadAsync(Alice, RandomNumberGenerator.GetBytes(100), "image/png", null);
        (await admin.PostAsync("/_synapse/admin/v1/media/quarantine/test.local/" + MediaId(uri), null)).Ok();
        (await Bob.GetAsync(Download(uri))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        var info = (await admin.GetAsync("/_synapse/admin/v1/media/test.local/" + MediaId(uri))).Ok();
        Assert.Equal(admin.UserId, info["media_info"]!["quarantined_by"]!.GetValue<string>());
        (await admin.PostAsync("/_synapse/admin/v1/media/unquarantine/test.local/" + MediaId(uri), null)).Ok();
        using (var ok = await GetAsync(Bob, Download(uri)))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        (await admin.PostAsync("/_synapse/admin/v1/media/protect/" + MediaId(uri), null)).Ok();
        (await admin.PostAsync("/_synapse/admin/v1/media/quarantine/test.local/" + MediaId(uri), null)).Error(HttpStatusCode.BadRequest, "M_UNKNOWN");
    }

    [Fact]
    public async Task MediaNotDownloadedWithinTheLocalLifetimeIsDeletedWithItsBytes()
    {
        var clock = new TestClock();
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + "media_retention:\n  local_media_lifetime: 30d\n", clock: clock);
        var alice = await server.RegisterAsync("alice");
        var idle = await UploadAsync(alice, RandomNumberGenerator.GetBytes(100), "image/png", null, server.Client);
        var used = await UploadAsync(alice, RandomNumberGenerator.GetBytes(100), "image/png", null, server.Client);
        clock.Advance(TimeSpan.FromDays(20));
        using (var r = await GetAsync(alice, Download(used), server.Client))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }

        clock.Advance(TimeSpan.FromDays(15));
        Assert.Equal(1, await server.Host.MediaRetention.RunAsync(CancellationToken.None));
        var files = server.Host.Services.Media.Files;
        Assert.False(File.Exists(files.ContentPath(MediaId(idle))));
        Assert.True(File.Exists(files.ContentPath(MediaId(used))));
        (await alice.GetAsync(Download(idle))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }

    [Fact]
    public async Task WhatACrashLeavesInTheTempFolderIsCleanedUpButUploadsInProgressAreNot()
    {
        var tmp = Path.Combine(MediaDir, "tmp");
        var stale = Path.Combine(tmp, "crashed.part");
        var fresh = Path.Combine(tmp, "in-progress.part");
        await File.WriteAllBytesAsync(stale, new byte[100]);
        await File.WriteAllBytesAsync(fresh, new byte[100]);
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow.AddHours(-2));
        await Server.Host.MediaRetention.RunAsync(CancellationToken.None);
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(fresh));
    }

    // ---- helpers ----

    private async Task<MatrixClient> AdminAsync()
    {
        await Accounts.UserStoreSeed.AdminAsync(Server, "root");
        var admin = Server.NewClient();
        await admin.LoginAsync("root");
        return admin;
    }

    private static string MediaId(string mxc) => mxc[(mxc.LastIndexOf('/') + 1)..];

    private static string Download(string mxc) => "/_matrix/client/v1/media/download/" + mxc["mxc://".Length..];

    private static string Thumbnail(string mxc, int width, int height, string method) =>
        $"/_matrix/client/v1/media/thumbnail/{mxc["mxc://".Length..]}?width={width}&height={height}&method={method}";

    private string ContentPath(string mxc) => Server.Host.Services.Media.Files.ContentPath(MediaId(mxc));

    private string ThumbnailFolder(string mxc) => Server.Host.Services.Media.Files.ThumbnailFolder(MediaId(mxc));

    private List<string> StoreFiles() => [.. Directory.GetFiles(MediaDir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)];

    private async Task<string> UploadAsync(MatrixClient who, byte[] bytes, string contentType, string? fileName, HttpClient? http = null)
    {
        var path = "/_matrix/media/v3/upload" + (fileName is null ? "" : "?filename=" + Uri.EscapeDataString(fileName));
        using var response = await PostBytesAsync(who, path, bytes, contentType, http);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"upload: {(int)response.StatusCode} {body}\n{Server.Log.Text}");
        return JsonNode.Parse(body)!["content_uri"]!.GetValue<string>();
    }

    private async Task<HttpResponseMessage> PostBytesAsync(MatrixClient who, string path, byte[] bytes, string contentType, HttpClient? http = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", who.AccessToken);
        return await (http ?? Server.Client).SendAsync(request);
    }

    private async Task<HttpResponseMessage> PutBytesAsync(MatrixClient who, string path, byte[] bytes)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, path) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", who.AccessToken);
        return await Server.Client.SendAsync(request);
    }

    private async Task<HttpResponseMessage> GetAsync(MatrixClient who, string path, HttpClient? http = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", who.AccessToken);
        return await (http ?? Server.Client).SendAsync(request);
    }

    private static async Task<LetheHost> StartAsync(string yamlPath, string yaml)
    {
        await File.WriteAllTextAsync(yamlPath, yaml);
        var config = ConfigLoader.LoadFile(yamlPath);
        return await LetheHost.StartAsync(config, logging => logging.SetMinimumLevel(LogLevel.Warning), null, TimeProvider.System, CancellationToken.None);
    }

    private static HttpClient ClientFor(LetheHost host) =>
        new() { BaseAddress = new Uri(host.Addresses[0].Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal) + "/"), Timeout = TimeSpan.FromSeconds(30) };
}

/// <summary>A read-only stream of <c>length</c> pseudo-random but reproducible bytes, generated as read (nothing held in memory).</summary>
internal sealed class PatternStream(long length) : Stream
{
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => length;

    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = (int)Math.Min(buffer.Length, length - _position);
        for (var i = 0; i < n; i++)
        {
            var p = _position + i;
            buffer[i] = (byte)((p * 2654435761L) >> 13);
        }

        _position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer, offset, count));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

public sealed class SqliteMediaTests() : MediaTests(DatabaseEngine.Sqlite);

public sealed class PostgresMediaTests() : MediaTests(DatabaseEngine.Postgres)
{
}
