using System.Text.Json.Nodes;
using Lethe.Homeserver.Admin;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Identifiers;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Retention;

/// <summary>Retention discovery for clients, and the admin API: per-room overrides, purge jobs (status, run now).</summary>
public static class RetentionEndpoints
{
    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs, RetentionPurger purger)
    {
        // GET /_matrix/client/unstable/org.matrix.msc1763/retention/configuration (and the /v3 form): what a room may choose.
        JsonEndpoint configuration = async ctx =>
        {
            await hs.Auth.RequireAsync(ctx);
            var r = hs.Config.Retention;
            return new JsonObject
            {
                ["enabled"] = r.Enabled,
                ["default_policy"] = new JsonObject { ["min_lifetime"] = r.DefaultMinLifetime, ["max_lifetime"] = r.DefaultMaxLifetime },
                ["limits"] = new JsonObject
                {
                    ["max_lifetime"] = new JsonObject { ["min"] = r.AllowedLifetimeMin, ["max"] = r.AllowedLifetimeMax },
                    ["min_lifetime"] = new JsonObject { ["min"] = r.AllowedLifetimeMin, ["max"] = r.AllowedLifetimeMax },
                },
            };
        };
        app.MapJson("GET", "/_matrix/client/unstable/org.matrix.msc1763/retention/configuration", ResourceGroup.Client, configuration);
        app.MapJson("GET", "/_matrix/client/v3/retention/configuration", ResourceGroup.Client, configuration);

        const string Admin = "/_lethe/admin/v1";

        // GET /_lethe/admin/v1/rooms/{roomId}/retention: the override, the room's own policy and the effective one.
        app.MapJson("GET", Admin + "/rooms/{roomId}/retention", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var roomId = await RoomOfAsync(ctx, hs);
            var o = await hs.Retention.GetOverrideAsync(roomId, ctx.RequestAborted);
            var effective = await hs.RetentionPolicies.ForRoomAsync(roomId, ctx.RequestAborted);
            return new JsonObject
            {
                ["room_id"] = roomId,
                ["override"] = o is null ? null : Policy(new RetentionPolicy(o.MinLifetime, o.MaxLifetime)),
                ["effective"] = Policy(effective),
                ["enabled"] = hs.Config.Retention.Enabled,
            };
        });

        // PUT /_lethe/admin/v1/rooms/{roomId}/retention {"min_lifetime": ms, "max_lifetime": ms}
        app.MapJson("PUT", Admin + "/rooms/{roomId}/retention", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var roomId = await RoomOfAsync(ctx, hs);
            var body = await JsonBody.ReadObjectAsync(ctx);
            RetentionPolicy.Validate(body);
            var policy = RetentionPolicy.FromContent(body);
            if (policy.MinLifetime is null && policy.MaxLifetime is null)
            {
                throw MatrixException.MissingParam("Give min_lifetime and/or max_lifetime (milliseconds)");
            }

            await hs.Retention.SetOverrideAsync(new RetentionOverride(roomId, policy.MinLifetime, policy.MaxLifetime, hs.NowMs), ctx.RequestAborted);
            hs.RetentionPolicies.Forget();
            return new JsonObject { ["effective"] = Policy(await hs.RetentionPolicies.ForRoomAsync(roomId, ctx.RequestAborted)) };
        });

        // DELETE /_lethe/admin/v1/rooms/{roomId}/retention
        app.MapJson("DELETE", Admin + "/rooms/{roomId}/retention", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var roomId = await RoomOfAsync(ctx, hs);
            if (!await hs.Retention.DeleteOverrideAsync(roomId, ctx.RequestAborted))
            {
                throw MatrixException.NotFound("This room has no retention override");
            }

            hs.RetentionPolicies.Forget();
            return new JsonObject { ["effective"] = Policy(await hs.RetentionPolicies.ForRoomAsync(roomId, ctx.RequestAborted)) };
        });

        // GET /_lethe/admin/v1/jobs: every background job's last run.
        app.MapJson("GET", Admin + "/jobs", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var jobs = new JsonArray();
            foreach (var j in await hs.Jobs.StatusAsync(ctx.RequestAborted))
            {
                jobs.Add((JsonNode)new JsonObject
                {
                    ["job"] = j.Job,
                    ["running"] = j.LastStartedTs is not null && j.LastFinishedTs is null,
                    ["last_started_ts"] = j.LastStartedTs,
                    ["last_finished_ts"] = j.LastFinishedTs,
                    ["last_items"] = j.LastItems,
                    ["total_items"] = j.TotalItems,
                    ["last_error"] = j.LastError,
                    ["next_run_ts"] = j.NextRunTs,
                });
            }

            return new JsonObject { ["jobs"] = jobs };
        });

        // POST /_lethe/admin/v1/retention/purge: run every purge job (and the put-off deletions that are due) now and wait for it.
        app.MapJson("POST", Admin + "/retention/purge", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            if (!hs.Config.Retention.Enabled)
            {
                throw MatrixException.Of(400, ErrCode.Unknown, "Retention is not enabled (retention.enabled in the config)");
            }

            return new JsonObject { ["purged"] = await purger.RunAllAsync(ctx.RequestAborted) };
        });
    }

    private static JsonObject Policy(RetentionPolicy p) => new() { ["min_lifetime"] = p.MinLifetime, ["max_lifetime"] = p.MaxLifetime };

    private static async Task<string> RoomOfAsync(HttpContext ctx, HomeserverServices hs)
    {
        var roomId = ctx.Route("roomId");
        if (!RoomId.TryParse(roomId, out _))
        {
            throw MatrixException.InvalidParam("Invalid room ID");
        }

        return await hs.RoomDirectory.TryVersionOfAsync(roomId, ctx.RequestAborted) is null
            ? throw MatrixException.NotFound("Unknown room")
            : roomId;
    }
}
