using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Media;

/// <summary>URL previews against a real website on loopback, on both engines.</summary>
public abstract class UrlPreviewTests(DatabaseEngine engine) : IAsyncLifetime
{
    /// <summary>
    /// Loopback must be reachable for the test website, so this blacklist leaves it out (never do this in production);
    /// <see cref="ALoopbackBlacklistRefusesLoopbackDirectlyByNameAndThroughRedirects"/> checks the real thing.
    /// </summary>
    private const string Enabled = """
        url_preview_enabled: true
        url_preview_ip_range_blacklist: ['10.0.0.0/8']
        url_preview_url_blacklist:
          - path: '/private/*'
          - netloc: 'blocked.example'
          - scheme: 'http'
            query: '^.*secret=1'
        max_spider_size: 1M
        url_preview_timeout: 2s

        """;

    private TestWebsite _site = null!;

    private TestHomeserver Server { get; set; } = null!;

    private MatrixClient Alice { get; set; } = null!;

    public async ValueTask InitializeAsync()
    {
        _site = await TestWebsite.StartAsync();
        Server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + Enabled);
        Alice = await Server.RegisterAsync("alice");
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        await _site.DisposeAsync();
    }

    private static string Preview(string url) => "/_matrix/client/v1/media/preview_url?url=" + Uri.EscapeDataString(url);

    [Fact]
    public async Task PreviewsAreOffByDefaultAndFetchNothing()
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);
        var bob = await server.RegisterAsync("bob");
        (await bob.GetAsync(Preview(_site.Url + "/page"))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await server.NewClient().GetAsync(Preview(_site.Url + "/page"))).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
        Assert.Empty(_site.Hits);
    }

    [Fact]
    public async Task APageGivesItsOpenGraphDataAndItsImageAsLocalMedia()
    {
        var og = (await Alice.GetAsync(Preview(_site.Url + "/page"))).Ok();
        Assert.Equal("A page with OpenGraph", og["og:title"]!.GetValue<string>());
        Assert.Equal("What the page is about.", og["og:description"]!.GetValue<string>());
        Assert.Equal("Test site", og["og:site_name"]!.GetValue<string>());
        Assert.Equal("article", og["og:type"]!.GetValue<string>());

        // The image was fetched, stored here and is described by what it is, not what the page claimed.
        var mxc = og["og:image"]!.GetValue<string>();
        Assert.StartsWith("mxc://test.local/", mxc, StringComparison.Ordinal);
        Assert.Equal(64, og["og:image:width"]!.GetValue<int>());
        Assert.Equal(48, og["og:image:height"]!.GetValue<int>());
        Assert.Equal("image/png", og["og:image:type"]!.GetValue<string>());
        Assert.Equal(TestWebsite.Image.Length, og["matrix:image:size"]!.GetValue<int>());
        Assert.Equal(TestWebsite.Image, await DownloadAsync(mxc));
        Assert.Equal(1, _site.HitsOf("/img.png"));

        // Authenticated media is on: the legacy endpoint does not preview.
        (await Alice.GetAsync("/_matrix/media/v3/preview_url?url=" + Uri.EscapeDataString(_site.Url + "/page"))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }

    [Fact]
    public async Task APageWithoutOpenGraphFallsBackToItsTitleDescriptionAndLargestImage()
    {
        var og = (await Alice.GetAsync(Preview(_site.Url + "/plain"))).Ok();
        Assert.Equal("Plain & simple", og["og:title"]!.GetValue<string>());
        Assert.Equal("A page without OpenGraph tags.", og["og:description"]!.GetValue<string>());
        Assert.Equal(TestWebsite.Image, await DownloadAsync(og["og:image"]!.GetValue<string>()));
        Assert.Equal(0, _site.HitsOf("/tiny.png"));

        // A legacy encoding named in Content-Type is decoded as such.
        og = (await Alice.GetAsync(Preview(_site.Url + "/latin1"))).Ok();
        Assert.Equal("Caf\u00e9 cr\u00e8me", og["og:title"]!.GetValue<string>());
    }

    [Fact]
    public async Task AnImageUrlIsItsOwnPreview()
    {
        var og = (await Alice.GetAsync(Preview(_site.Url + "/img.png"))).Ok();
        Assert.Equal("image/png", og["og:image:type"]!.GetValue<string>());
        Assert.Equal(64, og["og:image:width"]!.GetValue<int>());
        Assert.Equal(48, og["og:image:height"]!.GetValue<int>());
        Assert.Equal(TestWebsite.Image.Length, og["matrix:image:size"]!.GetValue<long>());
        Assert.Equal(TestWebsite.Image, await DownloadAsync(og["og:image"]!.GetValue<string>()));

        // Preview images are nobody's upload: they count against nobody's media.
        var files = Server.Host.Services.Media;
        var mediaId = og["og:image"]!.GetValue<string>().Split('/')[^1];
        Assert.Equal(Lethe.Homeserver.Media.UrlPreviewer.ImageOwner, (await files.Store.GetAsync(mediaId))!.UserId);
    }

    [Fact]
    public async Task ASecondRequestIsServedFromTheCacheWithoutFetchingAgain()
    {
        var first = (await Alice.GetAsync(Preview(_site.Url + "/page"))).Ok();
        var second = (await Alice.GetAsync(Preview(_site.Url + "/page"))).Ok();
        Assert.Equal(first.ToJsonString(), second.ToJsonString());

        // A ts from before the fetch still gets the cached preview (the oldest one after it), as in Synapse.
        var yesterday = DateTimeOffset.UtcNow.AddDays(-1).ToUnixTimeMilliseconds();
        var old = (await Alice.GetAsync(Preview(_site.Url + "/page") + "&ts=" + yesterday)).Ok();
        Assert.Equal(first.ToJsonString(), old.ToJsonString());
        Assert.Equal(1, _site.HitsOf("/page"));
        Assert.Equal(1, _site.HitsOf("/img.png"));

        (await Alice.GetAsync(Preview(_site.Url + "/page") + "&ts=yesterday")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }

    [Theory]
    [InlineData("/big")]
    [InlineData("/big-chunked")]
    public async Task ABodyOverMaxSpiderSizeIsTooLarge(string path)
    {
        var response = await Alice.GetAsync(Preview(_site.Url + path));
        response.Error(HttpStatusCode.BadGateway, "M_TOO_LARGE");
    }

    [Fact]
    public async Task AServerThatNeverAnswersTimesOut()
    {
        // url_preview_timeout is 2 s and the test client waits 30 s: the answer is the previewer giving up.
        var response = await Alice.GetAsync(Preview(_site.Url + "/hang"));
        response.Error(HttpStatusCode.GatewayTimeout, "M_UNKNOWN");
        Assert.Equal(1, _site.HitsOf("/hang"));

        // Nothing was cached: the next request tries again.
        (await Alice.GetAsync(Preview(_site.Url + "/hang"))).Error(HttpStatusCode.GatewayTimeout, "M_UNKNOWN");
        Assert.Equal(2, _site.HitsOf("/hang"));
    }

    [Fact]
    public async Task BlacklistedUrlsAreNeverFetched()
    {
        (await Alice.GetAsync(Preview(_site.Url + "/private/secret"))).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await Alice.GetAsync(Preview("http://blocked.example/anything"))).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await Alice.GetAsync(Preview(_site.Url + "/page?secret=1"))).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");

        // A redirect into a blacklisted URL is checked at the hop.
        (await Alice.GetAsync(Preview(_site.Url + "/redirect?to=" + Uri.EscapeDataString("/private/secret")))).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        Assert.Equal(1, _site.HitsOf("/redirect"));
        Assert.Equal(0, _site.HitsOf("/private/secret"));
        Assert.Equal(0, _site.HitsOf("/page"));

        // And an allowed redirect is followed.
        var og = (await Alice.GetAsync(Preview(_site.Url + "/redirect?to=" + Uri.EscapeDataString("/page")))).Ok();
        Assert.Equal("A page with OpenGraph", og["og:title"]!.GetValue<string>());
    }

    [Fact]
    public async Task BadUrlsAndFailedFetchesAreClearErrors()
    {
        (await Alice.GetAsync("/_matrix/client/v1/media/preview_url")).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await Alice.GetAsync(Preview("file:///etc/passwd"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Alice.GetAsync(Preview("not a url"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Alice.GetAsync(Preview(_site.Url + "/missing"))).Error(HttpStatusCode.BadGateway, "M_UNKNOWN");
        (await Alice.GetAsync(Preview("http://no-such-host.invalid/"))).Error(HttpStatusCode.BadGateway, "M_UNKNOWN");
        (await Alice.GetAsync(Preview(_site.Url + "/redirect?to=" + Uri.EscapeDataString("ftp://example.org/")))).Error(HttpStatusCode.BadGateway, "M_UNKNOWN");
        Assert.DoesNotContain("Unhandled", Server.Log.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ALoopbackBlacklistRefusesLoopbackDirectlyByNameAndThroughRedirects()
    {
        // The default-style blacklist, with one loopback address let through so there is an allowed host to redirect from.
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + """
            url_preview_enabled: true
            url_preview_ip_range_blacklist: ['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '::1/128', 'fe80::/10', 'fc00::/7']
            url_preview_ip_range_whitelist: ['127.0.0.2']

            """);
        var bob = await server.RegisterAsync("bob");

        // The whitelisted address works, so the refusals below are the blacklist's doing.
        var og = (await bob.GetAsync(Preview(_site.OtherUrl + "/page"))).Ok();
        Assert.Equal("A page with OpenGraph", og["og:title"]!.GetValue<string>());
        var pageHits = _site.HitsOf("/page");

        var direct = await bob.GetAsync(Preview(_site.Url + "/page"));
        direct.Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        Assert.Contains("IP address blocked", direct.Body["error"]!.GetValue<string>(), StringComparison.Ordinal);

        // A host name is resolved and every address checked when connecting.
        var byName = await bob.GetAsync(Preview($"http://localhost:{_site.Port}/page"));
        byName.Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        Assert.Contains("IP address blocked", byName.Body["error"]!.GetValue<string>(), StringComparison.Ordinal);

        // Redirects from the allowed host to a blocked one, by address and by name.
        (await bob.GetAsync(Preview(_site.OtherUrl + "/redirect?to=" + Uri.EscapeDataString(_site.Url + "/page")))).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await bob.GetAsync(Preview(_site.OtherUrl + "/redirect?to=" + Uri.EscapeDataString($"http://localhost:{_site.Port}/page")))).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        Assert.Equal(2, _site.HitsOf("/redirect"));
        Assert.Equal(pageHits, _site.HitsOf("/page"));
    }

    [Fact]
    public async Task FetchesAreRateLimitedPerUserButCacheHitsAreNot()
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + Enabled + "rc_url_preview: {per_second: 0.001, burst_count: 2}\n");
        var bob = await server.RegisterAsync("bob");
        (await bob.GetAsync(Preview(_site.Url + "/page"))).Ok();
        (await bob.GetAsync(Preview(_site.Url + "/plain"))).Ok();
        (await bob.GetAsync(Preview(_site.Url + "/img.png"))).Error((HttpStatusCode)429, "M_LIMIT_EXCEEDED");
        (await bob.GetAsync(Preview(_site.Url + "/page"))).Ok();
    }

    [Fact]
    public async Task ExpiredPreviewsAndOldPreviewImagesAreDeletedWithTheirBytes()
    {
        var clock = new TestClock();
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + Enabled, clock: clock);
        var bob = await server.RegisterAsync("bob");
        var og = (await bob.GetAsync(Preview(_site.Url + "/page"))).Ok();
        var mediaId = og["og:image"]!.GetValue<string>().Split('/')[^1];
        var path = server.Host.Services.Media.Files.ContentPath(mediaId);
        Assert.True(File.Exists(path));

        // After the hour the preview is fetched again; after two days the image's bytes are gone.
        clock.Advance(TimeSpan.FromHours(2));
        await server.Host.MediaRetention.RunAsync(CancellationToken.None);
        Assert.True(File.Exists(path));
        (await bob.GetAsync(Preview(_site.Url + "/page"))).Ok();
        Assert.Equal(2, _site.HitsOf("/page"));

        clock.Advance(TimeSpan.FromDays(3));
        await server.Host.MediaRetention.RunAsync(CancellationToken.None);
        Assert.False(File.Exists(path));
        Assert.Null(await server.Host.Services.Media.Store.GetAsync(mediaId));
        Assert.Equal(0, await server.Host.Database.ReadAsync(c => Dapper.SqlMapper.ExecuteScalarAsync<long>(c, "SELECT COUNT(*) FROM url_previews")));
    }

    [Fact]
    public async Task APreviewGoesWhenTheLastMessageNamingItsLinkIsPurged()
    {
        // Messages live 10 minutes here, the preview cache an hour: the purge must take the previews with the messages.
        var clock = new TestClock();
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + Enabled + """
            retention:
              enabled: true
              purge_jobs:
                - interval: 1y

            """, clock: clock);
        var bob = await server.RegisterAsync("bob");
        var shortLived = await bob.CreateRoomAsync();
        var kept = await bob.CreateRoomAsync();
        (await bob.SetStateAsync(shortLived, "m.room.retention", new JsonObject { ["max_lifetime"] = 600_000 })).Ok();
        var page = _site.Url + "/page";
        var plain = _site.Url + "/plain";
        (await bob.SendEventAsync(shortLived, "m.room.message", new JsonObject
        {
            ["msgtype"] = "m.text",
            ["body"] = $"see {page}. and {plain}",
            ["format"] = "org.matrix.custom.html",
            ["formatted_body"] = $"see <a href=\"{page}\">the page</a>. and <a href=\"{plain}\">this</a>",
        }, "t1")).Ok();
        await bob.SendTextAsync(kept, $"also ({plain})");
        await bob.SendTextAsync(shortLived, "newest");
        var image = (await bob.GetAsync(Preview(page))).Ok()["og:image"]!.GetValue<string>().Split('/')[^1];
        (await bob.GetAsync(Preview(plain))).Ok();
        var imageFile = server.Host.Services.Media.Files.ContentPath(image);
        Assert.True(File.Exists(imageFile));
        Task<List<string>> CachedAsync() => server.Host.Database.ReadAsync(async c => (await Dapper.SqlMapper.QueryAsync<string>(c, "SELECT url FROM url_previews ORDER BY url")).ToList());
        Assert.Equal([page, plain], await CachedAsync());

        clock.Advance(TimeSpan.FromMinutes(20));
        Assert.Equal(1, await server.Host.Purger.RunAllAsync(CancellationToken.None));

        // The page's preview and its image went with the only message naming the page; the other room still names /plain.
        Assert.Equal([plain], await CachedAsync());
        Assert.False(File.Exists(imageFile));
        Assert.Null(await server.Host.Services.Media.Store.GetAsync(image));
        (await bob.GetAsync(Preview(plain))).Ok();
        Assert.Equal(1, _site.HitsOf("/plain"));
        (await bob.GetAsync(Preview(page))).Ok();
        Assert.Equal(2, _site.HitsOf("/page"));
    }

    [Fact]
    public async Task ASelfDestructingMessageTakesItsLinksPreviewWithIt()
    {
        var clock = new TestClock();
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + Enabled, clock: clock);
        var bob = await server.RegisterAsync("bob");
        var roomId = await bob.CreateRoomAsync();
        var page = _site.Url + "/page";
        (await bob.SendEventAsync(roomId, "m.room.message", new JsonObject
        {
            ["msgtype"] = "m.text",
            ["body"] = $"gone in a minute: {page}",
            ["org.matrix.self_destruct_after"] = server.Host.Services.NowMs + 60_000,
        })).Ok();
        await bob.SendTextAsync(roomId, "later");
        var image = (await bob.GetAsync(Preview(page))).Ok()["og:image"]!.GetValue<string>().Split('/')[^1];
        var imageFile = server.Host.Services.Media.Files.ContentPath(image);
        Task<long> CachedAsync() => server.Host.Database.ReadAsync(c => Dapper.SqlMapper.ExecuteScalarAsync<long>(c, "SELECT COUNT(*) FROM url_previews"));
        Assert.Equal(1, await CachedAsync());

        clock.Advance(TimeSpan.FromMinutes(2));
        // The server's own self-destruct loop may get there first; either way the preview must go.
        await server.Host.SelfDestruct.RunDueAsync(CancellationToken.None);
        await Poll.UntilAsync(async () => await CachedAsync() == 0, TimeSpan.FromSeconds(10), "the self-destruct pass drops the preview");
        Assert.False(File.Exists(imageFile));
    }

    [Theory]
    [InlineData("see https://example.org/a.", new[] { "https://example.org/a.", "https://example.org/a" })]
    [InlineData("(HTTP://Example.org/x?q=1)", new[] { "HTTP://Example.org/x?q=1)", "HTTP://Example.org/x?q=1" })]
    [InlineData("<a href=\"https://e.org/p\">https://e.org/p</a>", new[] { "https://e.org/p" })]
    [InlineData("mxc://test.local/abc xhttp://e.org/ https:// ftp://e.org/", new string[0])]
    public void LinksAreFoundInEventJsonWithAndWithoutTrailingPunctuation(string body, string[] urls)
    {
        var json = System.Text.Encoding.UTF8.GetBytes(new JsonObject { ["content"] = new JsonObject { ["body"] = body } }.ToJsonString(new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        var expected = urls.Select(u => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(u)))).ToHashSet();
        Assert.Equal(expected, MediaStore.UrlHashesIn(json));
    }

    private async Task<byte[]> DownloadAsync(string mxc)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/_matrix/client/v1/media/download/" + mxc["mxc://".Length..]);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Alice.AccessToken);
        using var response = await Server.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsByteArrayAsync();
    }
}

public sealed class SqliteUrlPreviewTests() : UrlPreviewTests(DatabaseEngine.Sqlite);

public sealed class PostgresUrlPreviewTests() : UrlPreviewTests(DatabaseEngine.Postgres);
