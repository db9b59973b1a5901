using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Storage;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Accounts;

/// <summary>Device management: list, get, rename, delete (with user-interactive auth).</summary>
public static class DeviceEndpoints
{
    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // GET /_matrix/client/v3/devices
        app.MapClient("GET", "/devices", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var devices = await hs.Devices.ListAsync(requester.UserId, ctx.RequestAborted);
            return new JsonObject { ["devices"] = new JsonArray(devices.Select(d => (JsonNode)ToJson(hs, d)).ToArray()) };
        });

        // GET /_matrix/client/v3/devices/{deviceId}
        app.MapClient("GET", "/devices/{deviceId}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var device = await hs.Devices.GetAsync(requester.UserId, ctx.Route("deviceId"), ctx.RequestAborted)
                ?? throw MatrixException.NotFound("Device not found");
            return ToJson(hs, device);
        });

        // PUT /_matrix/client/v3/devices/{deviceId}
        app.MapClient("PUT", "/devices/{deviceId}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var body = await JsonBody.ReadObjectAsync(ctx);
            var deviceId = ctx.Route("deviceId");
            if (body.ContainsKey("display_name"))
            {
                var name = body.OptionalString("display_name", 255);
                if (!await hs.Devices.SetDisplayNameAsync(requester.UserId, deviceId, name, ctx.RequestAborted))
                {
                    throw MatrixException.NotFound("Device not found");
                }
            }
            else if (await hs.Devices.GetAsync(requester.UserId, deviceId, ctx.RequestAborted) is null)
            {
                throw MatrixException.NotFound("Device not found");
            }

            return new JsonObject();
        });

        // DELETE /_matrix/client/v3/devices/{deviceId}
        app.MapClient("DELETE", "/devices/{deviceId}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var body = await JsonBody.ReadOptionalObjectAsync(ctx);
            var deviceId = ctx.Route("deviceId");
            if (await hs.Devices.GetAsync(requester.UserId, deviceId, ctx.RequestAborted) is null)
            {
                throw MatrixException.NotFound("Device not found");
            }

            await hs.Uia.RequireAsync(ctx, body, [[UserInteractiveAuth.Password]], requester.UserId);
            await AccountEndpoints.DeleteDevicesAsync(hs, requester.UserId, [deviceId], ctx.RequestAborted);
            return new JsonObject();
        });

        // POST /_matrix/client/v3/delete_devices
        app.MapClient("POST", "/delete_devices", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var body = await JsonBody.ReadObjectAsync(ctx);
            var devices = body.OptionalStringArray("devices") ?? throw MatrixException.MissingParam("Missing 'devices'");
            await hs.Uia.RequireAsync(ctx, body, [[UserInteractiveAuth.Password]], requester.UserId);
            await AccountEndpoints.DeleteDevicesAsync(hs, requester.UserId, devices, ctx.RequestAborted);
            return new JsonObject();
        });
    }

    private static JsonObject ToJson(HomeserverServices hs, DeviceRecord d)
    {
        var lastSeenTs = d.LastSeenTs;
        var lastSeenIp = d.LastSeenIp;
        if (hs.Activity.TryGetPending(d.UserId, d.DeviceId, out var pendingTs, out var pendingIp))
        {
            (lastSeenTs, lastSeenIp) = (pendingTs, pendingIp);
        }

        var json = new JsonObject { ["device_id"] = d.DeviceId, ["display_name"] = d.DisplayName };
        if (lastSeenTs is not null)
        {
            json["last_seen_ts"] = lastSeenTs;
            json["last_seen_ip"] = lastSeenIp;
        }

        return json;
    }
}
