using System.Text.Json.Nodes;
using Lethe.Homeserver.Admin;
using Lethe.Homeserver.Http;
using System.IO.Compression;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Privacy;

/// <summary>Admin API of the privacy garbage collectors.</summary>
public static class PrivacyEndpoints
{
    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs, PrivacyGc gc)
    {
        // GET /_lethe/admin/v1/users/{userId}/export: the user's data export as a zip archive (docs/export.md).
        app.MapRaw("GET", "/_lethe/admin/v1/users/{userId}/export", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var userId = ctx.Route("userId");
            if (await hs.Admin.UserAsync(userId, ctx.RequestAborted) is null)
            {
                throw MatrixException.NotFound("User not found");
            }

            await WriteZipAsync(ctx, hs, userId);
        });

        // POST /_lethe/client/v1/export: your own data export, as a zip archive; rate-limited (rc_export).
        app.MapRaw("POST", "/_lethe/client/v1/export", ResourceGroup.Client, async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            hs.RateLimiter.Take("rc_export", requester.UserId);
            await WriteZipAsync(ctx, hs, requester.UserId);
        });

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

    /// <summary>
    /// Streams the export as a zip archive straight into the response. Once the first byte is out, a failure can only
    /// cut the download short (an incomplete archive that no unzip tool accepts), never corrupt it silently.
    /// </summary>
    private static async Task WriteZipAsync(HttpContext ctx, HomeserverServices hs, string userId)
    {
        // ZipArchive writes its headers synchronously; the entries themselves are written asynchronously.
        ctx.Features.Get<IHttpBodyControlFeature>()!.AllowSynchronousIO = true;
        ctx.Response.ContentType = "application/zip";
        var name = "lethe-export-" + new string(userId.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray()) + ".zip";
        ctx.Response.Headers.ContentDisposition = $"attachment; filename=\"{name}\"";
        using var archive = new ZipArchive(ctx.Response.Body, ZipArchiveMode.Create, leaveOpen: true);
        await hs.Export.WriteAsync(userId, new UserExport.ZipSink(archive), ctx.RequestAborted);
    }
}
