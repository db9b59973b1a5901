using System.Text.Json.Nodes;
using Lethe.Homeserver.Admin;
using Lethe.Homeserver.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Privacy;

/// <summary>Admin API of the privacy garbage collectors.</summary>
public static class PrivacyEndpoints
{
    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs, PrivacyGc gc)
    {
        // POST /_lethe/admin/v1/privacy/gc: run the collectors now; answers what they deleted.
        app.MapJson("POST", "/_lethe/admin/v1/privacy/gc", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var result = await gc.RunNowAsync(ctx.RequestAborted);
            return new JsonObject
            {
                ["redactions_pruned"] = result.RedactionsPruned,
                ["client_ips_pruned"] = result.ClientIpsPruned,
                ["forgotten_rooms_purged"] = result.ForgottenRoomsPurged,
            };
        });
    }
}
