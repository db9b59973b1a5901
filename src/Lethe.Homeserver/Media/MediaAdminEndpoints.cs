using System.Globalization;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Admin;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Retention;
using Lethe.Protocol.Identifiers;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Media;

/// <summary>
/// Synapse's media admin API (<c>/_synapse/admin/v1/media…</c>, <c>/_synapse/admin/v1/users/{userId}/media</c>), so
/// existing tools work: query, delete (bytes included), delete by age and size, list and delete a user's media,
/// quarantine and protect. Every deletion removes the files from disk before the rows. Media that a message still under
/// its room's min_lifetime names is not deleted: it is listed in <c>held_media</c> and deleted when the hold ends, unless
/// <c>force_purge=true</c> (the name of the room deletion's override) deletes it at once.
/// </summary>
public static class MediaAdminEndpoints
{
    private const string Base = "/_synapse/admin/v1";

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs, MediaRepository media)
    {
        // GET /_synapse/admin/v1/media/{serverName}/{mediaId}: one item's metadata.
        app.MapJson("GET", Base + "/media/{serverName}/{mediaId}", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var item = await LocalAsync(ctx, hs, media) ?? throw MatrixException.NotFound("Unknown media");
            return new JsonObject { ["media_info"] = ToJson(item) };
        });

        // DELETE /_synapse/admin/v1/media/{serverName}/{mediaId}?force_purge=
        app.MapJson("DELETE", Base + "/media/{serverName}/{mediaId}", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var force = Bool(ctx, "force_purge", false);
            if (ctx.Route("serverName") != hs.ServerName)
            {
                throw MatrixException.Of(400, ErrCode.Unknown, "Can only delete local media");
            }

            var item = await LocalAsync(ctx, hs, media) ?? throw MatrixException.NotFound("Unknown media");
            return Deleted(await hs.LegalHolds.DeleteMediaAsync([item.MediaId], force, deferHeld: true, ctx.RequestAborted));
        });

        // POST /_synapse/admin/v1/media/delete?before_ts=…&size_gt=…&keep_profiles=…&force_purge=… (and the older /media/{serverName}/delete)
        JsonEndpoint deleteOld = async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            if (ctx.Request.RouteValues.TryGetValue("serverName", out var s) && s as string != hs.ServerName)
            {
                throw MatrixException.Of(400, ErrCode.Unknown, "Can only delete local media");
            }

            var beforeTs = Long(ctx, "before_ts") ?? throw MatrixException.MissingParam("Missing before_ts");
            var sizeGt = Long(ctx, "size_gt") ?? 0;
            var keepProfiles = Bool(ctx, "keep_profiles", true);
            var force = Bool(ctx, "force_purge", false);
            return Deleted(await DeleteOldAsync(hs, beforeTs, sizeGt, lastAccessBeforeTs: null, keepProfiles, force, deferHeld: true, ctx.RequestAborted));
        };
        app.MapJson("POST", Base + "/media/delete", ResourceGroup.Client, deleteOld);
        app.MapJson("POST", Base + "/media/{serverName}/delete", ResourceGroup.Client, deleteOld);

        // GET /_synapse/admin/v1/users/{userId}/media?from=&limit=
        app.MapJson("GET", Base + "/users/{userId}/media", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var userId = LocalUser(ctx, hs);
            var from = (int)(Long(ctx, "from") ?? 0);
            var limit = (int)Math.Clamp(Long(ctx, "limit") ?? 100, 1, 1000);
            var items = await media.Store.ListByUserAsync(userId, from, limit, ctx.RequestAborted);
            var total = await media.Store.CountByUserAsync(userId, ctx.RequestAborted);
            var list = new JsonArray();
            foreach (var item in items)
            {
                list.Add((JsonNode)ToJson(item));
            }

            var body = new JsonObject { ["media"] = list, ["total"] = total };
            if (from + items.Count < total)
            {
                body["next_token"] = from + items.Count;
            }

            return body;
        });

        // DELETE /_synapse/admin/v1/users/{userId}/media?force_purge=: every item the user uploaded.
        app.MapJson("DELETE", Base + "/users/{userId}/media", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            var userId = LocalUser(ctx, hs);
            var force = Bool(ctx, "force_purge", false);
            return Deleted(await hs.LegalHolds.DeleteUploadsAsync(userId, force, ctx.RequestAborted));
        });

        // POST /_synapse/admin/v1/media/quarantine/{serverName}/{mediaId} and …/unquarantine/…
        foreach (var (verb, quarantine) in new[] { ("quarantine", true), ("unquarantine", false) })
        {
            app.MapJson("POST", Base + $"/media/{verb}/{{serverName}}/{{mediaId}}", ResourceGroup.Client, async ctx =>
            {
                var admin = await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
                var item = await LocalAsync(ctx, hs, media) ?? throw MatrixException.NotFound("Unknown media");
                if (!await media.Store.QuarantineAsync(item.MediaId, quarantine ? admin.UserId : null, ctx.RequestAborted) && quarantine)
                {
                    throw MatrixException.Of(400, ErrCode.Unknown, "This media is protected from quarantine");
                }

                return new JsonObject();
            });
        }

        // POST /_synapse/admin/v1/media/protect/{mediaId} and …/unprotect/…
        foreach (var (verb, safe) in new[] { ("protect", true), ("unprotect", false) })
        {
            app.MapJson("POST", Base + $"/media/{verb}/{{mediaId}}", ResourceGroup.Client, async ctx =>
            {
                await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
                var mediaId = ctx.Route("mediaId");
                if (!MediaFiles.IsValidId(mediaId) || !await media.Store.ProtectAsync(mediaId, safe, ctx.RequestAborted))
                {
                    throw MatrixException.NotFound("Unknown media");
                }

                return new JsonObject();
            });
        }

        // POST /_synapse/admin/v1/purge_media_cache?before_ts=…: remote media cache; Lethe keeps none yet.
        app.MapJson("POST", Base + "/purge_media_cache", ResourceGroup.Client, async ctx =>
        {
            await RegistrationTokenEndpoints.RequireAdminAsync(ctx, hs);
            _ = Long(ctx, "before_ts") ?? throw MatrixException.MissingParam("Missing before_ts");
            return new JsonObject { ["deleted"] = 0 };
        });
    }

    /// <summary>
    /// Deletes uploaded local media older than <paramref name="beforeTs"/> (and larger than <paramref name="sizeGt"/>),
    /// optionally sparing avatars, and (unless <paramref name="force"/>) sparing what min_lifetime holds (see
    /// <see cref="LegalHolds.DeleteMediaAsync"/> for <paramref name="deferHeld"/>).
    /// </summary>
    public static async Task<LegalHolds.MediaDeletion> DeleteOldAsync(HomeserverServices hs, long beforeTs, long sizeGt, long? lastAccessBeforeTs, bool keepProfiles, bool force, bool deferHeld, CancellationToken ct)
    {
        var store = hs.Media.Store;
        var keep = keepProfiles ? await store.AvatarMediaIdsAsync(hs.ServerName, ct) : [];
        var result = new LegalHolds.MediaDeletion([], new Dictionary<string, long>(StringComparer.Ordinal));
        var skipped = new HashSet<string>(StringComparer.Ordinal);
        while (true)
        {
            var batch = await store.OldAsync(beforeTs, sizeGt, lastAccessBeforeTs, 500 + skipped.Count, ct);
            var todo = batch.Where(id => !keep.Contains(id) && !skipped.Contains(id)).ToList();
            foreach (var id in batch.Where(keep.Contains))
            {
                skipped.Add(id);
            }

            if (todo.Count == 0)
            {
                return result;
            }

            var outcome = await hs.LegalHolds.DeleteMediaAsync(todo, force, deferHeld, ct);
            result.Deleted.AddRange(outcome.Deleted);
            foreach (var (id, until) in outcome.Held)
            {
                result.Held[id] = until;
                skipped.Add(id);
            }
        }
    }

    private static async Task<MediaRecord?> LocalAsync(HttpContext ctx, HomeserverServices hs, MediaRepository media)
    {
        var mediaId = ctx.Route("mediaId");
        return ctx.Route("serverName") == hs.ServerName && MediaFiles.IsValidId(mediaId) ? await media.Store.GetAsync(mediaId, ctx.RequestAborted) : null;
    }

    private static string LocalUser(HttpContext ctx, HomeserverServices hs)
    {
        var text = ctx.Route("userId");
        if (!UserId.TryParse(text, out var userId) || userId.Server.Value != hs.ServerName)
        {
            throw MatrixException.Of(400, ErrCode.InvalidParam, "Can only look up local users");
        }

        return text;
    }

    /// <summary>Synapse's answer (<c>deleted_media</c>, <c>total</c> deleted), plus Lethe's <c>held_media</c>: what min_lifetime kept, deleted when the hold ends.</summary>
    private static JsonObject Deleted(LegalHolds.MediaDeletion outcome) => new()
    {
        ["deleted_media"] = new JsonArray([.. outcome.Deleted.Select(id => (JsonNode)id)]),
        ["total"] = outcome.Deleted.Count,
        ["held_media"] = new JsonArray([.. outcome.Held.Keys.Order(StringComparer.Ordinal).Select(id => (JsonNode)id)]),
    };

    private static JsonObject ToJson(MediaRecord m) => new()
    {
        ["media_id"] = m.MediaId,
        ["media_type"] = m.ContentType,
        ["media_length"] = m.Size,
        ["upload_name"] = m.UploadName,
        ["created_ts"] = m.CreatedTs,
        ["last_access_ts"] = m.LastAccessTs,
        ["quarantined_by"] = m.QuarantinedBy,
        ["safe_from_quarantine"] = m.SafeFromQuarantine,
        ["user_id"] = m.UserId,
    };

    private static long? Long(HttpContext ctx, string name)
    {
        var text = ctx.Query(name);
        if (text is null)
        {
            return null;
        }

        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : throw MatrixException.InvalidParam($"{name} must be a non-negative integer");
    }

    private static bool Bool(HttpContext ctx, string name, bool fallback) => ctx.Query(name) switch
    {
        null => fallback,
        "true" => true,
        "false" => false,
        _ => throw MatrixException.InvalidParam($"{name} must be true or false"),
    };
}
