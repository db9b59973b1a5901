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

        // GET /_lethe/client/v1/privacy: what the server keeps about you, under which rules, and until when.
        app.MapJson("GET", "/_lethe/client/v1/privacy", ResourceGroup.Client, async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            return await PrivacyReportAsync(hs, requester.UserId, ctx.RequestAborted);
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
                ["erasures_completed"] = result.ErasuresCompleted,
                ["reports_pruned"] = result.ReportsPruned,
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

    /// <summary>The right to see what is kept: stored data about the user, the rules in force and when each item goes.</summary>
    private static async Task<JsonObject> PrivacyReportAsync(HomeserverServices hs, string userId, CancellationToken ct)
    {
        var config = hs.Config;
        await hs.Activity.FlushAsync(ct);
        var devices = new JsonArray();
        foreach (var d in await hs.Devices.ListAsync(userId, ct))
        {
            var device = UserExport.DeviceJson(d);
            device["ip_deleted_after_ts"] = d.LastSeenTs is { } seen && config.UserIpsMaxAge is { } maxAge && (d.LastSeenIp ?? d.LastSeenUserAgent) is not null ? seen + maxAge : null;
            devices.Add((JsonNode)device);
        }

        var rooms = new JsonArray();
        foreach (var (roomId, membership) in await hs.StateStore.RoomsForUserAsync(userId, ["join", "invite", "leave", "ban", "knock"], ct))
        {
            var policy = await hs.RetentionPolicies.ForRoomAsync(roomId, ct);
            rooms.Add((JsonNode)new JsonObject
            {
                ["room_id"] = roomId,
                ["membership"] = membership,
                ["retention"] = new JsonObject { ["min_lifetime"] = policy.MinLifetime, ["max_lifetime"] = policy.MaxLifetime },
                ["messages_deleted_after_ms"] = policy.MaxLifetime,
            });
        }

        var pending = new JsonArray();
        foreach (var (eventId, redactedTs) in await hs.Privacy.PendingRedactionsOfAsync(userId, 1000, ct))
        {
            pending.Add((JsonNode)new JsonObject
            {
                ["event_id"] = eventId,
                ["redacted_ts"] = redactedTs,
                ["content_deleted_after_ts"] = config.RedactionRetentionPeriod is { } period ? redactedTs + period : null,
            });
        }

        var profile = await hs.Profiles.GetAsync(userId, ct);
        var (sent, accountData) = await hs.Privacy.CountsAsync(userId, ct);
        return new JsonObject
        {
            ["user_id"] = userId,
            ["stored"] = new JsonObject
            {
                ["profile"] = new JsonObject { ["displayname"] = profile?.Displayname, ["avatar_url"] = profile?.AvatarUrl },
                ["devices"] = devices,
                ["sent_events"] = sent,
                ["account_data_entries"] = accountData,
                ["rooms"] = rooms,
                ["redacted_content_pending_deletion"] = pending,
                ["reports_made"] = new JsonArray([.. (await hs.Reports.ByReporterAsync(userId, ct)).Select(r => (JsonNode)new JsonObject
                {
                    ["report_id"] = r.Id,
                    ["received_ts"] = r.ReceivedTs,
                    ["deleted_after_ts"] = config.ReportRetentionPeriod is { } kept ? r.ReceivedTs + kept : null,
                })]),
            },
            ["policies"] = new JsonObject
            {
                ["retention_enabled"] = config.Retention.Enabled,
                ["default_retention"] = new JsonObject { ["min_lifetime"] = config.Retention.DefaultMinLifetime, ["max_lifetime"] = config.Retention.DefaultMaxLifetime },
                ["redaction_retention_period_ms"] = config.RedactionRetentionPeriod,
                ["user_ips_max_age_ms"] = config.UserIpsMaxAge,
                ["forgotten_room_retention_period_ms"] = config.ForgottenRoomRetentionPeriod,
                ["report_retention_period_ms"] = config.ReportRetentionPeriod,
            },
            ["export"] = "/_lethe/client/v1/export",
        };
    }
}
