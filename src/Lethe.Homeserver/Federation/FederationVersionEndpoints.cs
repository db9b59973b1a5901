using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Federation;

/// <summary>The federation version endpoint.</summary>
public static class FederationVersionEndpoints
{
    /// <summary>Maps the endpoint.</summary>
    public static void Map(IEndpointRouteBuilder app)
    {
        // GET /_matrix/federation/v1/version
        app.MapJson("GET", "/_matrix/federation/v1/version", ResourceGroup.Federation, _ => ValueTask.FromResult<JsonNode>(new JsonObject
        {
            ["server"] = new JsonObject { ["name"] = "Lethe", ["version"] = LetheVersion.Current },
        }));
    }
}
