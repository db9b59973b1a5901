using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Sync;
using Lethe.Protocol.Json;

namespace Lethe.Homeserver.Keys;

/// <summary>The encryption parts of a /sync response: to_device, device_lists, one-time key counts and unused fallback key types.</summary>
public static class E2eeSyncSection
{
    /// <summary>Most to-device messages per response; the rest follow in the next sync.</summary>
    public const int ToDeviceLimit = 100;

    /// <summary>
    /// Fills the sections into <paramref name="response"/> and returns whether there is anything new for the client.
    /// Using a <c>since</c> token acknowledges the to-device messages delivered before it, which are deleted now. When
    /// more messages wait than one response carries, <c>next_batch</c> stops after the last one delivered.
    /// </summary>
    public static async Task<bool> AddToAsync(HomeserverServices hs, Requester requester, SyncToken? since, SyncToken upTo, JsonObject response, CancellationToken ct)
    {
        var hasContent = false;
        var toDevice = new JsonArray();
        if (requester.DeviceId.Length > 0)
        {
            var after = since?.ToDevice ?? 0;
            if (after > 0)
            {
                await hs.ToDevice.AcknowledgeAsync(requester.UserId, requester.DeviceId, after, ct);
            }

            // Positions are global: when the stream has not moved, nothing new can be waiting for this device.
            var pending = upTo.ToDevice > after
                ? await hs.ToDevice.PendingAsync(requester.UserId, requester.DeviceId, after, upTo.ToDevice, ToDeviceLimit, ct)
                : [];
            foreach (var message in pending)
            {
                toDevice.Add(CanonicalJson.Parse(message.MessageJson, allowFloats: true));
            }

            if (pending.Count == ToDeviceLimit)
            {
                response["next_batch"] = (upTo with { ToDevice = pending[^1].StreamOrdering }).ToString();
            }

            hasContent |= pending.Count > 0;
            var (counts, unusedFallback) = await hs.Keys.SyncCountsAsync(requester.UserId, requester.DeviceId, ct);
            response["device_one_time_keys_count"] = KeyEndpoints.CountsJson(counts);
            var fallback = new JsonArray(unusedFallback.Select(a => (JsonNode)a).ToArray());
            response["device_unused_fallback_key_types"] = fallback;
            response["org.matrix.msc2732.device_unused_fallback_key_types"] = fallback.DeepClone();
        }

        response["to_device"] = new JsonObject { ["events"] = toDevice };
        var changed = new JsonArray();
        var left = new JsonArray();
        if (since is { } s && (upTo.DeviceLists > s.DeviceLists || upTo.Events > s.Events))
        {
            var (c, l) = await hs.DeviceLists.ChangesAsync(requester.UserId, s, upTo, ct);
            foreach (var u in c)
            {
                changed.Add((JsonNode)u);
            }

            foreach (var u in l)
            {
                left.Add((JsonNode)u);
            }

            hasContent |= c.Count + l.Count > 0;
        }

        response["device_lists"] = new JsonObject { ["changed"] = changed, ["left"] = left };
        return hasContent;
    }
}
