using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Sync;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Keys;

/// <summary>Device keys: <c>/keys/upload</c>, <c>/keys/query</c>, <c>/keys/claim</c>, <c>/keys/changes</c>.</summary>
public static class KeyEndpoints
{
    /// <summary>Most users in one query or claim.</summary>
    private const int MaxUsers = 10_000;

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // POST /_matrix/client/v3/keys/upload (and the r0 form with the device ID in the path, which must be the caller's)
        app.MapKeys("POST", "/keys/upload", ctx => UploadAsync(ctx, hs, null));
        app.MapKeys("POST", "/keys/upload/{deviceId}", ctx => UploadAsync(ctx, hs, ctx.Route("deviceId")));

        // POST /_matrix/client/v3/keys/query
        app.MapKeys("POST", "/keys/query", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var body = await JsonBody.ReadObjectAsync(ctx);
            var wanted = body.OptionalObject("device_keys") ?? throw MatrixException.MissingParam("Missing 'device_keys'");
            if (wanted.Count > MaxUsers)
            {
                throw MatrixException.InvalidParam($"At most {MaxUsers} users per query");
            }

            return await QueryAsync(hs, requester.UserId, wanted, ctx.RequestAborted);
        });

        // POST /_matrix/client/v3/keys/claim
        app.MapKeys("POST", "/keys/claim", async ctx =>
        {
            await hs.Auth.RequireAsync(ctx);
            var body = await JsonBody.ReadObjectAsync(ctx);
            var wanted = body.OptionalObject("one_time_keys") ?? throw MatrixException.MissingParam("Missing 'one_time_keys'");
            var requests = new List<(string, string, string)>();
            var failures = new JsonObject();
            foreach (var (userId, devices) in wanted)
            {
                if (devices is not JsonObject byDevice)
                {
                    throw MatrixException.BadJson("one_time_keys must map user IDs to objects of device ID to algorithm");
                }

                if (!UserId.TryParse(userId, out var parsed))
                {
                    throw MatrixException.InvalidParam($"'{userId}' is not a user ID");
                }

                if (parsed.Server.Value != hs.ServerName)
                {
                    // Claiming from other servers comes with federation.
                    failures[parsed.Server.Value] = new JsonObject { ["status"] = 503, ["message"] = "Federation of keys is not available" };
                    continue;
                }

                foreach (var (deviceId, algorithm) in byDevice)
                {
                    var alg = algorithm.AsString();
                    if (alg is null || alg.Length == 0 || alg.Length > KeyJson.MaxIdLength || deviceId.Length > KeyJson.MaxIdLength)
                    {
                        throw MatrixException.BadJson("one_time_keys must map device IDs to an algorithm name");
                    }

                    requests.Add((userId, deviceId, alg));
                    if (requests.Count > MaxUsers * 10)
                    {
                        throw MatrixException.InvalidParam("Too many keys in one claim");
                    }
                }
            }

            var claimed = await hs.Keys.ClaimAsync(requests, ctx.RequestAborted);
            var result = new JsonObject();
            foreach (var (userId, deviceId, key) in claimed)
            {
                var byUser = result[userId] as JsonObject ?? (JsonObject)(result[userId] = new JsonObject());
                var byDevice = byUser[deviceId] as JsonObject ?? (JsonObject)(byUser[deviceId] = new JsonObject());
                byDevice[key.Algorithm + ":" + key.KeyId] = CanonicalJson.Parse(key.KeyJson);
            }

            return new JsonObject { ["one_time_keys"] = result, ["failures"] = failures };
        });

        // GET /_matrix/client/v3/keys/changes
        app.MapKeys("GET", "/keys/changes", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var from = SyncToken.Parse(ctx.Query("from") ?? throw MatrixException.MissingParam("Missing 'from'"));
            var to = SyncToken.Parse(ctx.Query("to") ?? throw MatrixException.MissingParam("Missing 'to'"));
            var (changed, left) = await hs.DeviceLists.ChangesAsync(requester.UserId, from, to, ctx.RequestAborted);
            return new JsonObject
            {
                ["changed"] = new JsonArray(changed.Select(u => (JsonNode)u).ToArray()),
                ["left"] = new JsonArray(left.Select(u => (JsonNode)u).ToArray()),
            };
        });
    }

    private static async ValueTask<JsonNode> UploadAsync(HttpContext ctx, HomeserverServices hs, string? pathDeviceId)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        var userId = requester.UserId;
        var deviceId = requester.DeviceId;
        if (deviceId.Length == 0 || (pathDeviceId is not null && pathDeviceId != deviceId))
        {
            throw MatrixException.InvalidParam("Keys can only be uploaded for the device of the access token");
        }

        var body = await JsonBody.ReadObjectAsync(ctx);
        var stored = body["device_keys"] is JsonObject ? null : await hs.Keys.DeviceKeyAsync(userId, deviceId, ctx.RequestAborted);
        var upload = KeyUpload.Parse(body, userId, deviceId, stored is null ? null : KeyJson.Ed25519Key(CanonicalJson.ParseObject(stored), deviceId));
        var (counts, changeStream) = await hs.Database.WriteAsync(tx => upload.WriteAsync(tx, userId, deviceId), ctx.RequestAborted);
        if (changeStream is { } s)
        {
            await hs.DeviceLists.PublishAsync(userId, s, ctx.RequestAborted);
        }

        return new JsonObject { ["one_time_key_counts"] = CountsJson(counts) };
    }

    /// <summary>One-time key counts as /sync and /keys/upload return them: <c>signed_curve25519</c> is always present, 0 when none are left.</summary>
    public static JsonObject CountsJson(Dictionary<string, long> counts)
    {
        var json = new JsonObject { ["signed_curve25519"] = 0 };
        foreach (var (algorithm, count) in counts)
        {
            json[algorithm] = count;
        }

        return json;
    }

    /// <summary>Answers /keys/query for local users, with the signatures and cross-signing keys the requester may see.</summary>
    public static async Task<JsonObject> QueryAsync(HomeserverServices hs, string requester, JsonObject wanted, CancellationToken ct)
    {
        var deviceKeys = new JsonObject();
        var masterKeys = new JsonObject();
        var selfSigningKeys = new JsonObject();
        var userSigningKeys = new JsonObject();
        var failures = new JsonObject();
        var local = new List<(string UserId, List<string> Devices)>();
        foreach (var (userId, devices) in wanted)
        {
            if (!UserId.TryParse(userId, out var parsed))
            {
                throw MatrixException.InvalidParam($"'{(userId.Length > 64 ? userId[..64] : userId)}' is not a user ID");
            }

            var list = new List<string>();
            if (devices is JsonArray array)
            {
                foreach (var d in array)
                {
                    list.Add(d.AsString() is { Length: > 0 and <= KeyJson.MaxIdLength } id ? id : throw MatrixException.BadJson("device_keys must map user IDs to arrays of device IDs"));
                }
            }
            else if (devices is not null)
            {
                throw MatrixException.BadJson("device_keys must map user IDs to arrays of device IDs");
            }

            if (parsed.Server.Value != hs.ServerName)
            {
                failures[parsed.Server.Value] = new JsonObject { ["status"] = 503, ["message"] = "Federation of keys is not available" };
                continue;
            }

            local.Add((userId, list));
        }

        var signatures = local.Count == 0 ? [] : await hs.Keys.SignaturesForAsync(local.Select(l => l.UserId).ToList(), ct);
        foreach (var (userId, devices) in local)
        {
            var byDevice = new JsonObject();
            foreach (var (deviceId, json, displayName) in await hs.Keys.DeviceKeysAsync(userId, devices, ct))
            {
                var keys = CanonicalJson.ParseObject(json);
                MergeSignatures(keys, signatures, userId, deviceId, requester);
                keys["unsigned"] = new JsonObject { ["device_display_name"] = displayName };
                byDevice[deviceId] = keys;
            }

            deviceKeys[userId] = byDevice;
            var crossSigning = await hs.Keys.CrossSigningKeysAsync(userId, ct);
            if (crossSigning.TryGetValue(CrossSigningEndpoints.Master, out var master))
            {
                var keys = CanonicalJson.ParseObject(master.KeyJson);
                MergeSignatures(keys, signatures, userId, master.KeyId["ed25519:".Length..], requester);
                masterKeys[userId] = keys;
            }

            if (crossSigning.TryGetValue(CrossSigningEndpoints.SelfSigning, out var selfSigning))
            {
                selfSigningKeys[userId] = CanonicalJson.ParseObject(selfSigning.KeyJson);
            }

            // A user-signing key says whom its owner verified: only the owner sees it.
            if (userId == requester && crossSigning.TryGetValue(CrossSigningEndpoints.UserSigning, out var userSigning))
            {
                userSigningKeys[userId] = CanonicalJson.ParseObject(userSigning.KeyJson);
            }
        }

        return new JsonObject
        {
            ["device_keys"] = deviceKeys,
            ["master_keys"] = masterKeys,
            ["self_signing_keys"] = selfSigningKeys,
            ["user_signing_keys"] = userSigningKeys,
            ["failures"] = failures,
        };
    }

    /// <summary>Adds uploaded signatures to a key: the owner's own, and another user's only when that user is asking (who verified whom is theirs to know).</summary>
    private static void MergeSignatures(JsonObject key, List<StoredSignature> signatures, string owner, string targetKeyId, string requester)
    {
        foreach (var s in signatures)
        {
            if (s.TargetUserId != owner || s.TargetKeyId != targetKeyId || (s.SignerUserId != owner && s.SignerUserId != requester))
            {
                continue;
            }

            var all = key["signatures"] as JsonObject ?? (JsonObject)(key["signatures"] = new JsonObject());
            var bySigner = all[s.SignerUserId] as JsonObject ?? (JsonObject)(all[s.SignerUserId] = new JsonObject());
            bySigner[s.SignerKeyId] = s.Signature;
        }
    }
}
