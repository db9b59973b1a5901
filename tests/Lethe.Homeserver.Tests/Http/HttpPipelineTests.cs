using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Tests.Http;

/// <summary>The shared HTTP stack over real Kestrel: Matrix errors for bad input, never a 500, CORS on everything.</summary>
public sealed class HttpPipelineTests : IAsyncLifetime
{
    private TestHomeserver _server = null!;

    // Probe endpoints that use the production JSON reader and error renderer, standing in for endpoints that take bodies.
    private static void Probes(IEndpointRouteBuilder app)
    {
        app.MapJson("POST", "/_matrix/client/probe/echo", ResourceGroup.Client, async ctx => await JsonBody.ReadObjectAsync(ctx));
        app.MapJson("POST", "/_matrix/client/probe/crash", ResourceGroup.Client, ctx => throw new InvalidOperationException("secret internal detail"));
    }

    public async ValueTask InitializeAsync() => _server = await TestHomeserver.StartAsync(probes: Probes);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    private async Task<(HttpStatusCode Status, JsonObject Body, HttpResponseMessage Response)> SendAsync(HttpMethod method, string path, string? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        var response = await _server.Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? [] : JsonNode.Parse(text)!.AsObject(), response);
    }

    [Fact]
    public async Task UnknownEndpointIs404Unrecognized()
    {
        var (status, body, _) = await SendAsync(HttpMethod.Get, "/_matrix/client/v3/no_such_thing");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("M_UNRECOGNIZED", body["errcode"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(body["error"]!.GetValue<string>()));
    }

    [Fact]
    public async Task KnownEndpointWithWrongMethodIs405Unrecognized()
    {
        var (status, body, _) = await SendAsync(HttpMethod.Delete, "/_matrix/client/versions");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, status);
        Assert.Equal("M_UNRECOGNIZED", body["errcode"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("{\"a\":1")]
    [InlineData("[1,2]")]
    [InlineData("{\"a\":1,\"a\":2}")]
    [InlineData("{\"a\":1.5}")]
    [InlineData("{\"a\":99999999999999999999}")]
    [InlineData("")]
    public async Task BodiesThatAreNotMatrixJsonGet400NotJson(string body)
    {
        var (status, json, _) = await SendAsync(HttpMethod.Post, "/_matrix/client/probe/echo", body);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("M_NOT_JSON", json["errcode"]!.GetValue<string>());
    }

    [Fact]
    public async Task ValidJsonPassesThrough()
    {
        var (status, json, _) = await SendAsync(HttpMethod.Post, "/_matrix/client/probe/echo", "{\"msg\":\"héllo\",\"n\":9007199254740991}");
        Assert.True(status == HttpStatusCode.OK, json.ToJsonString());
        Assert.Equal("héllo", json["msg"]!.GetValue<string>());
        Assert.Equal(9007199254740991, json["n"]!.GetValue<long>());
    }

    [Fact]
    public async Task OversizedBodyGets413TooLarge()
    {
        var big = "{\"a\":\"" + new string('x', (int)JsonBody.DefaultLimit) + "\"}";
        var (status, json, _) = await SendAsync(HttpMethod.Post, "/_matrix/client/probe/echo", big);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("M_TOO_LARGE", json["errcode"]!.GetValue<string>());
    }

    [Fact]
    public async Task OversizedChunkedBodyGets413TooLarge()
    {
        // No Content-Length: the limit must hold while streaming too.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/_matrix/client/probe/echo")
        {
            Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes("{\"a\":\"" + new string('x', (int)JsonBody.DefaultLimit) + "\"}"))),
        };
        request.Headers.TransferEncodingChunked = true;
        using var response = await _server.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("M_TOO_LARGE", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["errcode"]!.GetValue<string>());
    }

    [Fact]
    public async Task AFaultInTheServerIsAGeneric500WithoutInternals()
    {
        var (status, json, _) = await SendAsync(HttpMethod.Post, "/_matrix/client/probe/crash", "{}");
        Assert.Equal(HttpStatusCode.InternalServerError, status);
        Assert.Equal("M_UNKNOWN", json["errcode"]!.GetValue<string>());
        Assert.DoesNotContain("secret", json.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PreflightAnswersWithCorsAndRunsNoEndpoint()
    {
        var (status, _, response) = await SendAsync(HttpMethod.Options, "/_matrix/client/probe/crash");
        Assert.True(response.IsSuccessStatusCode, $"preflight got {status}");
        Assert.Equal("*", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("Authorization", response.Headers.GetValues("Access-Control-Allow-Headers").Single(), StringComparison.Ordinal);
        Assert.Contains("PUT", response.Headers.GetValues("Access-Control-Allow-Methods").Single(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/_matrix/client/versions")]
    [InlineData("/_matrix/client/nope")]
    public async Task EveryResponseCarriesCorsHeaders(string path)
    {
        var (_, _, response) = await SendAsync(HttpMethod.Get, path);
        Assert.Equal("*", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }
}

/// <summary>A listener serves only the resources its config names.</summary>
public sealed class ListenerResourceTests
{
    [Fact]
    public async Task AClientOnlyListenerDoesNotServeFederationOrKeys()
    {
        var dir = TestHomeserver.NewTempDir();
        var yaml = $"""
            server_name: test.local
            listeners:
              - port: 0
                bind_addresses: ['127.0.0.1']
                resources: [{"{"}names: [client]{"}"}]
              - port: 0
                bind_addresses: ['127.0.0.1']
                resources: [{"{"}names: [federation]{"}"}]
            database: {"{"}name: sqlite3, args: {"{"}database: "{dir}/db"{"}"}{"}"}
            signing_key_path: "{dir}/key"
            media_store_path: "{dir}/media"
            """;
        var path = Path.Combine(dir, "homeserver.yaml");
        await File.WriteAllTextAsync(path, yaml);
        await using var host = await LetheHost.StartAsync(Lethe.Homeserver.Configuration.ConfigLoader.LoadFile(path), l => { });
        using var http = new HttpClient();
        var client = host.Addresses[0];
        var federation = host.Addresses[1];

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(client + "/_matrix/client/versions")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(client + "/_matrix/key/v2/server")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(client + "/_matrix/federation/v1/version")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(client + "/health")).StatusCode);

        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(federation + "/_matrix/client/versions")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(federation + "/_matrix/key/v2/server")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(federation + "/_matrix/federation/v1/version")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(federation + "/health")).StatusCode);
    }
}
