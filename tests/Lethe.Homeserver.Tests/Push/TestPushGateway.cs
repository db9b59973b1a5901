using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver.Tests.Push;

/// <summary>A small real push gateway on 127.0.0.1: records every notify request; can fail the first N or reject pushkeys.</summary>
public sealed class TestPushGateway : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _failuresLeft;

    private TestPushGateway(WebApplication app) => _app = app;

    /// <summary>Every request received, in order: body, Content-Length header and whether it was chunked.</summary>
    public ConcurrentQueue<(JsonObject Body, long? ContentLength, bool Chunked)> Received { get; } = new();

    /// <summary>Attempts answered (including failures).</summary>
    public int Attempts;

    /// <summary>Requests answered with a redirect at <see cref="MovedUrl"/>.</summary>
    public int RedirectAttempts;

    /// <summary>Pushkeys to answer as rejected.</summary>
    public ConcurrentBag<string> Reject { get; } = [];

    /// <summary>The notify URL.</summary>
    public string NotifyUrl { get; private set; } = "";

    /// <summary>A notify URL that answers 307 to <see cref="NotifyUrl"/>.</summary>
    public string MovedUrl { get; private set; } = "";

    /// <summary>Answers the next <paramref name="n"/> requests with 500.</summary>
    public void FailNext(int n) => Interlocked.Exchange(ref _failuresLeft, n);

    /// <summary>Starts the gateway.</summary>
    public static async Task<TestPushGateway> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var gateway = new TestPushGateway(app);
        app.MapPost("/_matrix/push/v1/notify", async (HttpContext ctx) =>
        {
            if (ctx.Request.Query.ContainsKey("moved"))
            {
                // A gateway that moved: answers with a redirect to the real one.
                Interlocked.Increment(ref gateway.RedirectAttempts);
                ctx.Response.StatusCode = 307;
                ctx.Response.Headers.Location = gateway.NotifyUrl;
                return;
            }

            Interlocked.Increment(ref gateway.Attempts);
            var chunked = ctx.Request.Headers.TransferEncoding.ToString().Contains("chunked", StringComparison.OrdinalIgnoreCase);
            var length = ctx.Request.ContentLength;
            var body = (await JsonNode.ParseAsync(ctx.Request.Body))!.AsObject();
            if (Interlocked.Decrement(ref gateway._failuresLeft) >= 0)
            {
                ctx.Response.StatusCode = 500;
                return;
            }

            gateway.Received.Enqueue((body, length, chunked));
            var rejected = new JsonArray();
            foreach (var device in body["notification"]!["devices"]!.AsArray())
            {
                var key = device!["pushkey"]!.GetValue<string>();
                if (gateway.Reject.Contains(key))
                {
                    rejected.Add(key);
                }
            }

            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync(new JsonObject { ["rejected"] = rejected }.ToJsonString());
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        gateway.NotifyUrl = address.TrimEnd('/') + "/_matrix/push/v1/notify";
        gateway.MovedUrl = gateway.NotifyUrl + "?moved=1";
        return gateway;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
