using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Http;

/// <summary>A JSON endpoint: returns the response body (status 200 unless the handler set another), or throws <see cref="MatrixException"/>.</summary>
public delegate ValueTask<JsonNode> JsonEndpoint(HttpContext context);

/// <summary>
/// The one way endpoints are mapped. Handlers are plain delegates over <see cref="HttpContext"/>: no model binding, no
/// expression trees compiled at start-up, no reflection per request. Route values come from <see cref="Route"/>.
/// </summary>
public static class Endpoints
{
    /// <summary>Maps a JSON endpoint for one HTTP method in a resource group.</summary>
    public static IEndpointConventionBuilder MapJson(this IEndpointRouteBuilder app, string method, string pattern, ResourceGroup group, JsonEndpoint handler) =>
        app.MapMethods(pattern, [method], async context =>
        {
            var body = await handler(context);
            await MatrixJson.WriteAsync(context, body, context.Response.StatusCode);
        }).WithMetadata(group);

    /// <summary>Maps an endpoint that writes its own response (non-JSON bodies, streaming).</summary>
    public static IEndpointConventionBuilder MapRaw(this IEndpointRouteBuilder app, string method, string pattern, ResourceGroup group, RequestDelegate handler) =>
        app.MapMethods(pattern, [method], handler).WithMetadata(group);

    /// <summary>Maps a client-server endpoint under both <c>/_matrix/client/v3</c> and the legacy <c>/_matrix/client/r0</c> prefix (older clients, e.g. matrix-nio 0.20, still use r0).</summary>
    public static void MapClient(this IEndpointRouteBuilder app, string method, string path, JsonEndpoint handler)
    {
        app.MapJson(method, "/_matrix/client/v3" + path, ResourceGroup.Client, handler);
        app.MapJson(method, "/_matrix/client/r0" + path, ResourceGroup.Client, handler);
    }

    /// <summary>Maps a client-server endpoint the spec places under <c>/_matrix/client/v1</c>.</summary>
    public static void MapClientV1(this IEndpointRouteBuilder app, string method, string path, JsonEndpoint handler) =>
        app.MapJson(method, "/_matrix/client/v1" + path, ResourceGroup.Client, handler);

    /// <summary>A query string parameter, or null.</summary>
    public static string? Query(this HttpContext context, string name) =>
        context.Request.Query.TryGetValue(name, out var v) && v.Count > 0 ? v[0] : null;

    /// <summary>A route value as a string; routing guarantees presence for parameters in the pattern.</summary>
    public static string Route(this HttpContext context, string name) =>
        context.Request.RouteValues[name] as string ?? throw MatrixException.MissingParam($"Missing path parameter {name}");
}
