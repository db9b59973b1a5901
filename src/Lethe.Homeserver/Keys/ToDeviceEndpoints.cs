using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Sync;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;
using Lethe.Storage;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Keys;

/// <summary><c>PUT /sendToDevice/{eventType}/{txnId}</c>: queues messages in the recipients' per-device inboxes, once per transaction ID.</summary>
public static class ToDeviceEndpoints
{
    /// <summary>Most recipient devices in one request.</summary>
    public const int MaxRecipients = 100_000;

    /// <summary>How long a transaction ID is remembered (ms): a client retries within minutes, not days.</summary>
    public const long TransactionMemoryMs = 24L * 60 * 60 * 1000;

    /// <summary>Maps the endpoint.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}
        app.MapKeys("PUT", "/sendToDevice/{eventType}/{txnId}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var eventType = ctx.Route("eventType");
            var txnId = ctx.Route("txnId");
            if (eventType.Length is 0 or > 255 || txnId.Length is 0 or > 255)
            {
                throw MatrixException.InvalidParam("The event type and transaction ID must be 1 to 255 characters");
            }

            var body = await JsonBody.ReadObjectAsync(ctx, allowFloats: true);
            var messages = body.OptionalObject("messages") ?? throw MatrixException.MissingParam("Missing 'messages'");
            // One message per device: a named device's own message wins over the user's "*" message.
            var queued = new Dictionary<(string UserId, string DeviceId), byte[]>();
            foreach (var (userId, byDevice) in messages)
            {
                if (!UserId.TryParse(userId, out var parsed))
                {
                    throw MatrixException.InvalidParam($"'{(userId.Length > 64 ? userId[..64] : userId)}' is not a user ID");
                }

                if (byDevice is not JsonObject devices)
                {
                    throw MatrixException.BadJson("messages must map user IDs to objects of device ID to content");
                }

                // Remote recipients are the federation sender's job (EDUs); until then they get nothing.
                var local = parsed.Server.Value == hs.ServerName;
                List<string>? allDevices = null;
                foreach (var (deviceId, content) in devices)
                {
                    if (content is not JsonObject contentObject)
                    {
                        throw MatrixException.BadJson("Each message's content must be an object");
                    }

                    if (!local)
                    {
                        continue;
                    }

                    var message = CanonicalJson.Encode(new JsonObject { ["content"] = contentObject.DeepClone(), ["sender"] = requester.UserId, ["type"] = eventType });
                    if (deviceId == "*")
                    {
                        allDevices ??= (await hs.Devices.ListAsync(userId, ctx.RequestAborted)).Select(d => d.DeviceId).ToList();
                        foreach (var d in allDevices)
                        {
                            queued.TryAdd((userId, d), message);
                        }
                    }
                    else if (deviceId.Length is > 0 and <= KeyJson.MaxIdLength)
                    {
                        queued[(userId, deviceId)] = message;
                    }

                    if (queued.Count > MaxRecipients)
                    {
                        throw MatrixException.InvalidParam($"At most {MaxRecipients} recipient devices per request");
                    }
                }
            }

            var unique = queued.Select(q => (q.Key.UserId, q.Key.DeviceId, q.Value)).ToList();
            var last = await hs.ToDevice.EnqueueAsync(requester.UserId, requester.DeviceId, txnId, unique, hs.NowMs, ctx.RequestAborted);
            if (last is > 0)
            {
                hs.Streams.Advance(StreamTracker.ToDevice, last.Value);
                foreach (var user in unique.Select(q => q.UserId).Distinct(StringComparer.Ordinal))
                {
                    hs.Notifier.Notify(user);
                }
            }

            return new JsonObject();
        });
    }
}
