using System.Globalization;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Sync;
using Lethe.Protocol.Json;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Keys;

/// <summary>
/// Dehydrated devices (MSC3814, unstable prefix, as Synapse serves it): a device the client parks on the server, with its
/// keys and an encrypted pickle, so to-device messages (room keys) sent while every real device is offline are kept and
/// can be read by the next device the user logs in.
/// </summary>
public static class DehydratedDeviceEndpoints
{
    private const string Prefix = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device";

    /// <summary>Largest device pickle accepted (bytes).</summary>
    private const int MaxDeviceData = 1024 * 1024;

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // PUT /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device
        app.MapJson("PUT", Prefix, ResourceGroup.Client, async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var userId = requester.UserId;
            var body = await JsonBody.ReadObjectAsync(ctx, allowFloats: true);
            var deviceId = body.RequiredString("device_id", KeyJson.MaxIdLength);
            if (deviceId.Length == 0 || deviceId == requester.DeviceId)
            {
                throw MatrixException.InvalidParam("device_id must name a new device");
            }

            var deviceData = body.OptionalObject("device_data") ?? throw MatrixException.MissingParam("Missing 'device_data'");
            _ = deviceData.RequiredString("algorithm", 255);
            var data = CanonicalJson.Encode(deviceData);
            if (data.Length > MaxDeviceData)
            {
                throw MatrixException.TooLarge($"device_data is larger than {MaxDeviceData} bytes");
            }

            var displayName = body.OptionalString("initial_device_display_name", 255);
            if (body.OptionalObject("device_keys") is null)
            {
                throw MatrixException.MissingParam("Missing 'device_keys': a dehydrated device needs its keys");
            }

            var upload = KeyUpload.Parse(body, userId, deviceId, null);
            var old = await hs.Keys.DehydratedDeviceAsync(userId, ctx.RequestAborted);
            if (old?.DeviceId != deviceId && await hs.Devices.GetAsync(userId, deviceId, ctx.RequestAborted) is not null)
            {
                throw MatrixException.InvalidParam("device_id is already in use by another device");
            }

            // The previous dehydrated device goes, with its keys and inbox, as a deleted device does.
            if (old is not null)
            {
                await AccountEndpoints.DeleteDevicesAsync(hs, userId, [old.Value.DeviceId], ctx.RequestAborted);
            }

            var stream = await hs.Database.WriteAsync(async tx =>
            {
                await DeviceStore.EnsureAsync(tx, userId, deviceId, displayName, hs.NowMs);
                await E2eKeyStore.SetDehydratedDeviceAsync(tx, userId, deviceId, data);
                var (_, changed) = await upload.WriteAsync(tx, userId, deviceId);
                return changed ?? await E2eKeyStore.RecordChangeAsync(tx, userId);
            }, ctx.RequestAborted);
            await hs.DeviceLists.PublishAsync(userId, stream, ctx.RequestAborted);
            return new JsonObject { ["device_id"] = deviceId };
        });

        // GET /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device
        app.MapJson("GET", Prefix, ResourceGroup.Client, async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var device = await hs.Keys.DehydratedDeviceAsync(requester.UserId, ctx.RequestAborted) ?? throw NoDevice();
            return new JsonObject { ["device_id"] = device.DeviceId, ["device_data"] = CanonicalJson.Parse(device.DeviceData, allowFloats: true) };
        });

        // DELETE /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device
        app.MapJson("DELETE", Prefix, ResourceGroup.Client, async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var device = await hs.Keys.DehydratedDeviceAsync(requester.UserId, ctx.RequestAborted) ?? throw NoDevice();
            await AccountEndpoints.DeleteDevicesAsync(hs, requester.UserId, [device.DeviceId], ctx.RequestAborted);
            return new JsonObject { ["device_id"] = device.DeviceId };
        });

        // GET (and the older POST) /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/{deviceId}/events
        app.MapJson("GET", Prefix + "/{deviceId}/events", ResourceGroup.Client, ctx => EventsAsync(ctx, hs, ctx.Query("from")));
        app.MapJson("POST", Prefix + "/{deviceId}/events", ResourceGroup.Client, async ctx =>
        {
            var body = await JsonBody.ReadOptionalObjectAsync(ctx);
            return await EventsAsync(ctx, hs, body.OptionalString("next_batch", 64));
        });
    }

    /// <summary>
    /// The dehydrated device's to-device messages after <paramref name="from"/> (<c>d{position}</c>), which also
    /// acknowledges (deletes) the ones up to it, as a <c>since</c> token does in /sync.
    /// </summary>
    private static async ValueTask<JsonNode> EventsAsync(HttpContext ctx, HomeserverServices hs, string? from)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        var device = await hs.Keys.DehydratedDeviceAsync(requester.UserId, ctx.RequestAborted)
            ?? throw MatrixException.Forbidden("No dehydrated device exists");
        if (device.DeviceId != ctx.Route("deviceId"))
        {
            throw MatrixException.Forbidden("You may only fetch messages for your dehydrated device");
        }

        long after = 0;
        if (from is { Length: > 0 } && (from[0] != 'd' || !long.TryParse(from.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out after)))
        {
            throw MatrixException.InvalidParam("from/next_batch must be a token returned by this endpoint");
        }

        var limit = ctx.Query("limit") is { } l
            ? int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is > 0 and <= 1000 ? n : throw MatrixException.InvalidParam("limit must be 1 to 1000")
            : 100;
        if (after > 0)
        {
            await hs.ToDevice.AcknowledgeAsync(requester.UserId, device.DeviceId, after, ctx.RequestAborted);
        }

        var upTo = hs.Streams.Current(StreamTracker.ToDevice);
        var pending = upTo > after ? await hs.ToDevice.PendingAsync(requester.UserId, device.DeviceId, after, upTo, limit, ctx.RequestAborted) : [];
        var events = new JsonArray();
        foreach (var message in pending)
        {
            events.Add(CanonicalJson.Parse(message.MessageJson, allowFloats: true));
        }

        var next = pending.Count == limit ? pending[^1].StreamOrdering : Math.Max(after, upTo);
        return new JsonObject { ["events"] = events, ["next_batch"] = "d" + next.ToString(CultureInfo.InvariantCulture) };
    }

    private static MatrixException NoDevice() => MatrixException.NotFound("No dehydrated device available");
}
