using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;
using Lethe.Storage;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Keys;

/// <summary>Cross-signing: <c>/keys/device_signing/upload</c> and <c>/keys/signatures/upload</c>.</summary>
public static class CrossSigningEndpoints
{
    /// <summary>Key type (and usage) of the master key.</summary>
    public const string Master = "master";

    /// <summary>Key type of the self-signing key (signs the user's own devices).</summary>
    public const string SelfSigning = "self_signing";

    /// <summary>Key type of the user-signing key (signs other users' master keys).</summary>
    public const string UserSigning = "user_signing";

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // POST /_matrix/client/v3/keys/device_signing/upload
        app.MapKeys("POST", "/keys/device_signing/upload", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var userId = requester.UserId;
            var body = await JsonBody.ReadObjectAsync(ctx);
            var uploads = new List<(string Type, string KeyId, byte[] Json)>();
            var existing = await hs.Keys.CrossSigningKeysAsync(userId, ctx.RequestAborted);

            byte[]? masterPublic = null;
            string? masterKeyId = null;
            if (body.OptionalObject("master_key") is { } master)
            {
                (masterKeyId, masterPublic) = KeyJson.CheckCrossSigningKey(master, userId, Master, "master_key");
                uploads.Add((Master, masterKeyId, CanonicalJson.EncodeWithout(master, "unsigned")));
            }
            else if (existing.TryGetValue(Master, out var stored))
            {
                masterKeyId = stored.KeyId;
                masterPublic = KeyJson.Ed25519Key(CanonicalJson.ParseObject(stored.KeyJson), stored.KeyId["ed25519:".Length..]);
            }

            foreach (var (field, type) in new[] { ("self_signing_key", SelfSigning), ("user_signing_key", UserSigning) })
            {
                if (body.OptionalObject(field) is not { } key)
                {
                    continue;
                }

                var (keyId, _) = KeyJson.CheckCrossSigningKey(key, userId, type, field);
                if (masterPublic is null)
                {
                    throw MatrixException.MissingParam($"{field} needs a master key: upload master_key with it");
                }

                KeyJson.CheckSigned(key, userId, masterKeyId!, masterPublic, field);
                uploads.Add((type, keyId, CanonicalJson.EncodeWithout(key, "unsigned")));
            }

            if (uploads.Count == 0)
            {
                return new JsonObject();
            }

            // Replacing keys needs the password (a stolen access token must not re-key the account); the first upload
            // does not (MSC3967, spec v1.11), and repeating the current keys is a no-op.
            var unchanged = uploads.All(u => existing.TryGetValue(u.Type, out var old) && old.KeyJson.AsSpan().SequenceEqual(u.Json));
            if (unchanged)
            {
                return new JsonObject();
            }

            if (existing.ContainsKey(Master))
            {
                await hs.Uia.RequireAsync(ctx, body, [[UserInteractiveAuth.Password]], userId);
            }

            var stream = await hs.Database.WriteAsync(async tx =>
            {
                foreach (var (type, keyId, json) in uploads)
                {
                    await E2eKeyStore.SetCrossSigningKeyAsync(tx, userId, type, keyId, json);
                }

                return await E2eKeyStore.RecordChangeAsync(tx, userId);
            }, ctx.RequestAborted);
            await hs.DeviceLists.PublishAsync(userId, stream, ctx.RequestAborted);
            return new JsonObject();
        });

        // POST /_matrix/client/v3/keys/signatures/upload
        app.MapKeys("POST", "/keys/signatures/upload", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var body = await JsonBody.ReadObjectAsync(ctx);
            var failures = new JsonObject();
            var accepted = new List<StoredSignature>();
            var mine = await hs.Keys.CrossSigningKeysAsync(requester.UserId, ctx.RequestAborted);
            foreach (var (targetUser, keys) in body)
            {
                if (keys is not JsonObject byKey || !UserId.TryParse(targetUser, out _))
                {
                    throw MatrixException.BadJson("The body must map user IDs to objects of key ID to signed key");
                }

                foreach (var (keyId, signed) in byKey)
                {
                    try
                    {
                        if (signed is not JsonObject obj)
                        {
                            throw MatrixException.BadJson("A signed key must be an object");
                        }

                        accepted.AddRange(await CheckSignatureUploadAsync(hs, requester.UserId, mine, targetUser, keyId, obj, ctx.RequestAborted));
                    }
                    catch (MatrixException e)
                    {
                        var byUser = failures[targetUser] as JsonObject ?? (JsonObject)(failures[targetUser] = new JsonObject());
                        byUser[keyId] = new JsonObject { ["errcode"] = e.ErrCode, ["error"] = e.Message };
                    }
                }
            }

            if (accepted.Count > 0)
            {
                // The signer's devices learn of the new signatures; a user's own devices and master key concern everyone who sees that user.
                var changedUsers = accepted.Select(s => s.TargetUserId == requester.UserId ? s.TargetUserId : s.SignerUserId).Distinct(StringComparer.Ordinal).ToList();
                var streams = await hs.Database.WriteAsync(async tx =>
                {
                    await E2eKeyStore.AddSignaturesAsync(tx, accepted);
                    var list = new List<(string, long)>();
                    foreach (var user in changedUsers)
                    {
                        list.Add((user, await E2eKeyStore.RecordChangeAsync(tx, user)));
                    }

                    return list;
                }, ctx.RequestAborted);
                foreach (var (user, stream) in streams)
                {
                    await hs.DeviceLists.PublishAsync(user, stream, ctx.RequestAborted);
                }
            }

            return new JsonObject { ["failures"] = failures };
        });
    }

    /// <summary>
    /// Checks one signed key of a signatures upload and returns the requester's valid signatures on it. Allowed: the
    /// user's self-signing key over their own device, their device over their own master key, and their user-signing key
    /// over another user's master key. The signed object must be the key as stored.
    /// </summary>
    private static async Task<List<StoredSignature>> CheckSignatureUploadAsync(
        HomeserverServices hs, string signer, Dictionary<string, CrossSigningKeyRow> mine, string targetUser, string keyId, JsonObject signed, CancellationToken ct)
    {
        byte[] storedJson;
        var targetKeys = targetUser == signer ? mine : await hs.Keys.CrossSigningKeysAsync(targetUser, ct);
        var targetIsMaster = targetKeys.TryGetValue(Master, out var targetMaster) && targetMaster.KeyId == "ed25519:" + keyId;
        if (targetIsMaster)
        {
            storedJson = targetMaster!.KeyJson;
        }
        else if (targetUser == signer && await hs.Keys.DeviceKeyAsync(targetUser, keyId, ct) is { } deviceJson)
        {
            storedJson = deviceJson;
        }
        else
        {
            throw MatrixException.NotFound(targetUser == signer ? "No such device or master key" : "Only another user's current master key can be signed");
        }

        if (!KeyJson.Unsigned(signed).AsSpan().SequenceEqual(KeyJson.Unsigned(CanonicalJson.ParseObject(storedJson))))
        {
            throw KeyJson.BadSignature("The signed object does not match the stored key");
        }

        // Which of the signer's keys may sign this target.
        var allowed = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        if (targetUser != signer)
        {
            AddCrossSigningKey(mine, UserSigning, allowed);
        }
        else if (targetIsMaster)
        {
            foreach (var (deviceId, json, _) in await hs.Keys.DeviceKeysAsync(signer, [], ct))
            {
                if (KeyJson.Ed25519Key(CanonicalJson.ParseObject(json), deviceId) is { } key)
                {
                    allowed["ed25519:" + deviceId] = key;
                }
            }
        }
        else
        {
            AddCrossSigningKey(mine, SelfSigning, allowed);
        }

        var result = new List<StoredSignature>();
        foreach (var signerKeyId in JsonSigning.SignatureKeyIds(signed, signer))
        {
            if (allowed.TryGetValue(signerKeyId, out var publicKey))
            {
                KeyJson.CheckSigned(signed, signer, signerKeyId, publicKey, "the signed key");
                JsonSigning.TryGetSignature(signed, signer, signerKeyId, out var sig);
                result.Add(new StoredSignature(targetUser, keyId, signer, signerKeyId, Base64Unpadded.Encode(sig!)));
            }
        }

        return result.Count > 0 ? result : throw KeyJson.BadSignature("No signature by a key allowed to sign this key (self-signing key for own devices, a device for the own master key, user-signing key for others)");
    }

    private static void AddCrossSigningKey(Dictionary<string, CrossSigningKeyRow> keys, string type, Dictionary<string, byte[]> into)
    {
        if (keys.TryGetValue(type, out var row) && KeyJson.Ed25519Key(CanonicalJson.ParseObject(row.KeyJson), row.KeyId["ed25519:".Length..]) is { } key)
        {
            into[row.KeyId] = key;
        }
    }
}
