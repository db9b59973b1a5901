using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Discovery;

/// <summary>How clients and servers find and size up this server: spec versions, .well-known, health.</summary>
public static class DiscoveryEndpoints
{
    /// <summary>
    /// Client-server spec versions this server claims. A version is listed only when its required endpoints behave as
    /// specified; docs/client-api.md says which parts are still missing.
    /// </summary>
    public static readonly string[] SupportedVersions = [];

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverConfig config)
    {
        // GET /_matrix/client/versions
        app.MapJson("GET", "/_matrix/client/versions", ResourceGroup.Client, _ => ValueTask.FromResult<JsonNode>(new JsonObject
        {
            ["versions"] = new JsonArray(SupportedVersions.Select(v => (JsonNode)v).ToArray()),
            ["unstable_features"] = new JsonObject(),
        }));

        // GET /.well-known/matrix/client
        app.MapJson("GET", "/.well-known/matrix/client", ResourceGroup.Client, _ =>
        {
            var body = new JsonObject { ["m.homeserver"] = new JsonObject { ["base_url"] = config.PublicBaseUrl } };
            if (config.ExtraWellKnownClientContent is { } extra)
            {
                foreach (var kv in extra)
                {
                    if (kv.Key != "m.homeserver")
                    {
                        body[kv.Key] = kv.Value?.DeepClone();
                    }
                }
            }

            return ValueTask.FromResult<JsonNode>(body);
        });

        // GET /.well-known/matrix/server — only when serve_server_wellknown is set, as in Synapse.
        app.MapJson("GET", "/.well-known/matrix/server", ResourceGroup.Federation, _ =>
        {
            if (!config.ServeServerWellKnown)
            {
                throw MatrixException.NotFound(".well-known/matrix/server is not served (serve_server_wellknown is off)");
            }

            var host = new Uri(config.PublicBaseUrl).Authority;
            var delegated = host.Contains(':', StringComparison.Ordinal) && !host.EndsWith(']') ? host : host + ":443";
            return ValueTask.FromResult<JsonNode>(new JsonObject { ["m.server"] = delegated });
        });

        // GET /health
        app.MapRaw("GET", "/health", ResourceGroup.Health, context =>
        {
            context.Response.ContentType = "text/plain";
            return context.Response.WriteAsync("OK");
        });
    }
}
