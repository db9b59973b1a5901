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

    /// <summary>A route value as a string; routing guarantees presence for parameters in the pattern.</summary>
    public static string Route(this HttpContext context, string name) =>
        context.Request.RouteValues[name] as string ?? throw MatrixException.MissingParam($"Missing path parameter {name}");
}
