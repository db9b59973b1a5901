using System.Globalization;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Admin;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Relations;

/// <summary>
/// Synapse's admin API for event reports: list, show and delete them, in Synapse's JSON shapes. Room and user reports
/// are kept in the same table but, as in Synapse, are not part of this API; report retention and erasure delete them.
/// </summary>
public static class ReportAdminEndpoints
{
    private const string V1 = "/_synapse/admin/v1";

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // GET /_synapse/admin/v1/event_reports?from=&limit=&dir=&user_id=&room_id=
        app.MapJson("GET", V1 + "/event_reports", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var from = SynapseAdminEndpoints.QueryInt(ctx, "from", 0, 0, long.MaxValue);
            var limit = (int)SynapseAdminEndpoints.QueryInt(ctx, "limit", 100, 1, 1000);
            var backwards = ctx.Query("dir") switch
            {
                null or "b" => true,
                "f" => false,
                _ => throw MatrixException.InvalidParam("dir must be f or b"),
            };
            var (page, total) = await hs.Reports.EventReportsAsync(from, limit, backwards, ctx.Query("user_id"), ctx.Query("room_id"), ctx.RequestAborted);
            var list = new JsonArray();
            foreach (var report in page)
            {
                list.Add((JsonNode)await ReportJsonAsync(hs, report, withEvent: false, ctx.RequestAborted));
            }

            var result = new JsonObject { ["event_reports"] = list, ["total"] = total };
            if (from + page.Count < total)
            {
                result["next_token"] = from + page.Count;
            }

            return result;
        });

        // GET /_synapse/admin/v1/event_reports/{reportId}
        app.MapJson("GET", V1 + "/event_reports/{reportId}", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var report = await EventReportAsync(ctx, hs);
            return await ReportJsonAsync(hs, report, withEvent: true, ctx.RequestAborted);
        });

        // DELETE /_synapse/admin/v1/event_reports/{reportId}
        app.MapJson("DELETE", V1 + "/event_reports/{reportId}", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var report = await EventReportAsync(ctx, hs);
            await hs.Reports.DeleteAsync(report.Id, ctx.RequestAborted);
            await hs.Database.CompactAfterDeleteAsync(ctx.RequestAborted);
            return new JsonObject();
        });
    }

    private static async Task<ReportRecord> EventReportAsync(HttpContext ctx, HomeserverServices hs)
    {
        if (!long.TryParse(ctx.Route("reportId"), NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            throw MatrixException.InvalidParam("The report_id parameter must be a string representing a positive integer.");
        }

        return await hs.Reports.GetAsync(id, ctx.RequestAborted) is { EventId: not null } report
            ? report
            : throw MatrixException.NotFound("Event report not found");
    }

    /// <summary>
    /// A report as Synapse shows it: the room's current name and canonical alias, the reported event's sender and, for
    /// one report, the event as the reporter may see it (retention and erasure apply; null once the event is gone).
    /// </summary>
    private static async Task<JsonObject> ReportJsonAsync(HomeserverServices hs, ReportRecord report, bool withEvent, CancellationToken ct)
    {
        var snap = report.RoomId is null ? null : await hs.Snapshots.GetAsync(report.RoomId, ct);
        async Task<string?> StateStringAsync(string type, string key) =>
            snap?.StateEventId(type) is { } id && await hs.Events.GetAsync(id, ct) is { IsRedacted: false } e ? e.Pdu.Content.GetString(key) : null;

        var stored = report.EventId is null ? null : await hs.Events.GetAsync(report.EventId, ct);
        var seen = stored is null ? null : await hs.Visibility.ViewAsync(report.UserId, stored, ct);
        var json = new JsonObject
        {
            ["id"] = report.Id,
            ["received_ts"] = report.ReceivedTs,
            ["room_id"] = report.RoomId,
            ["name"] = await StateStringAsync(EventTypes.Name, "name"),
            ["canonical_alias"] = await StateStringAsync(EventTypes.CanonicalAlias, "alias"),
            ["event_id"] = report.EventId,
            ["user_id"] = report.UserId,
            ["reason"] = report.Reason,
            ["score"] = report.Score,
            ["sender"] = stored?.Pdu.Sender,
        };
        if (withEvent)
        {
            json["event_json"] = seen is null ? null : CanonicalJson.ParseObject(seen.Pdu.ToCanonicalBytes());
        }

        return json;
    }
}
