using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver.Tests.Media;

/// <summary>
/// A small real website on loopback for URL preview tests (Kestrel on 127.0.0.1 and 127.0.0.2, each on its own port):
/// pages with and without OpenGraph tags, an image, oversized bodies, a page that never answers and redirects;
/// counts every request by path.
/// </summary>
public sealed class TestWebsite : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestWebsite(WebApplication app) => _app = app;

    /// <summary>The image served at <c>/img.png</c> (and named by <c>/page</c>'s og:image).</summary>
    public static readonly byte[] Image = TestImages.Png(64, 48);

    /// <summary>Requests received per path.</summary>
    public ConcurrentDictionary<string, int> Hits { get; } = new(StringComparer.Ordinal);

    /// <summary>Base URL on 127.0.0.1, e.g. <c>http://127.0.0.1:12345</c>.</summary>
    public string Url { get; private set; } = "";

    /// <summary>Base URL on 127.0.0.2 (another loopback address, so rules can tell the two apart).</summary>
    public string OtherUrl { get; private set; } = "";

    /// <summary>The port of <see cref="Url"/>.</summary>
    public int Port => new Uri(Url).Port;

    /// <summary>Requests to <paramref name="path"/> so far.</summary>
    public int HitsOf(string path) => Hits.TryGetValue(path, out var n) ? n : 0;

    /// <summary>Starts the site.</summary>
    public static async Task<TestWebsite> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0", "http://127.0.0.2:0");
        var app = builder.Build();
        var site = new TestWebsite(app);
        app.Use(async (ctx, next) =>
        {
            site.Hits.AddOrUpdate(ctx.Request.Path.Value ?? "", 1, (_, n) => n + 1);
            await next(ctx);
        });
        app.MapGet("/page", (HttpContext ctx) => Html(ctx, """
            <!doctype html>
            <html><head>
              <title>Not the OpenGraph title</title>
              <meta property="og:title" content="A   page  with  OpenGraph">
              <meta property="og:description" content="What the page is about.">
              <meta property="og:site_name" content="Test site">
              <meta property="og:type" content="article">
              <meta property="og:image" content="/img.png">
              <meta property="og:image:width" content="9999">
            </head><body><p>Hello</p></body></html>
            """));
        app.MapGet("/plain", (HttpContext ctx) => Html(ctx, """
            <!doctype html>
            <html><head>
              <title>  Plain &amp; simple  </title>
              <meta name="description" content="A page without OpenGraph tags.">
            </head><body>
              <img src="/tiny.png" width="5" height="5">
              <img src="img.png" width="640" height="480">
            </body></html>
            """));
        app.MapGet("/latin1", async (HttpContext ctx) =>
        {
            ctx.Response.ContentType = "text/html; charset=windows-1252";
            var bytes = System.Text.Encoding.Latin1.GetBytes("<html><head><title>Caf\u00e9 cr\u00e8me</title></head></html>");
            await ctx.Response.Body.WriteAsync(bytes);
        });
        app.MapGet("/img.png", async (HttpContext ctx) =>
        {
            ctx.Response.ContentType = "image/png";
            await ctx.Response.Body.WriteAsync(Image);
        });
        app.MapGet("/private/secret", (HttpContext ctx) => Html(ctx, "<title>secret</title>"));
        app.MapGet("/big", async (HttpContext ctx) =>
        {
            ctx.Response.ContentType = "text/html";
            ctx.Response.ContentLength = 2 * 1024 * 1024;
            await ctx.Response.Body.WriteAsync(new byte[2 * 1024 * 1024]);
        });
        app.MapGet("/big-chunked", async (HttpContext ctx) =>
        {
            // No Content-Length: the reader has to count.
            ctx.Response.ContentType = "text/html";
            var chunk = new byte[64 * 1024];
            for (var i = 0; i < 32 && !ctx.RequestAborted.IsCancellationRequested; i++)
            {
                await ctx.Response.Body.WriteAsync(chunk, ctx.RequestAborted);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
            }
        });
        app.MapGet("/hang", async (HttpContext ctx) =>
        {
            // Never answers (until the client goes away).
            try
            {
                await Task.Delay(Timeout.Infinite, ctx.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                // The previewer gave up.
            }
        });
        app.MapGet("/redirect", (HttpContext ctx) =>
        {
            ctx.Response.StatusCode = 302;
            ctx.Response.Headers.Location = ctx.Request.Query["to"].ToString();
            return Task.CompletedTask;
        });
        app.MapGet("/missing", (HttpContext ctx) =>
        {
            ctx.Response.StatusCode = 404;
            return Task.CompletedTask;
        });
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        site.Url = addresses.First(a => a.Contains("127.0.0.1", StringComparison.Ordinal)).TrimEnd('/');
        site.OtherUrl = addresses.First(a => a.Contains("127.0.0.2", StringComparison.Ordinal)).TrimEnd('/');
        return site;
    }

    private static Task Html(HttpContext ctx, string html)
    {
        ctx.Response.ContentType = "text/html; charset=utf-8";
        return ctx.Response.WriteAsync(html);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
