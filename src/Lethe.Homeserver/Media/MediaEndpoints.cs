using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Net.Http.Headers;

namespace Lethe.Homeserver.Media;

/// <summary>
/// The content repository of the client-server API: uploads (<c>/_matrix/media/v3/upload</c>, async
/// <c>/_matrix/media/v1/create</c>), authenticated downloads and thumbnails (<c>/_matrix/client/v1/media/…</c>), the
/// legacy unauthenticated <c>/_matrix/media/v3/download|thumbnail</c> (only for media uploaded while
/// <c>enable_authenticated_media</c> was off), URL previews, and a user deleting their own upload.
/// </summary>
public static class MediaEndpoints
{
    /// <summary>Synapse's sandboxing policy for served media: nothing in it may run scripts or load anything.</summary>
    public const string ContentSecurityPolicy = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";

    /// <summary>Types a browser may show inline (Synapse's list); everything else is served as an attachment.</summary>
    private static readonly HashSet<string> InlineTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
        "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
        "video/mp4", "video/webm", "video/ogg", "video/quicktime",
        "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave", "audio/wav", "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
    };

    private const long DefaultTimeoutMs = 20_000;
    private const long MaxTimeoutMs = 120_000;

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs, MediaRepository media)
    {
        // POST /_matrix/media/v3/upload?filename=… (and r0, which matrix-nio 0.20 uses)
        RequestDelegate upload = async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var mediaId = await media.UploadAsync(ctx, requester.UserId, reserved: null);
            await MatrixJson.WriteAsync(ctx, new JsonObject { ["content_uri"] = media.ContentUri(mediaId) }, 200);
        };
        foreach (var version in new[] { "v3", "r0" })
        {
            app.MapRaw("POST", $"/_matrix/media/{version}/upload", ResourceGroup.Media, upload);
        }

        // PUT /_matrix/media/v3/upload/{serverName}/{mediaId}: fills a reservation from /create.
        app.MapRaw("PUT", "/_matrix/media/v3/upload/{serverName}/{mediaId}", ResourceGroup.Media, async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var serverName = ctx.Route("serverName");
            var mediaId = ctx.Route("mediaId");
            var reserved = serverName == hs.ServerName && MediaFiles.IsValidId(mediaId) ? await media.Store.GetAsync(mediaId, ctx.RequestAborted) : null;
            if (reserved is null || (reserved.Size is null && reserved.UnusedExpiresTs <= hs.NowMs))
            {
                throw MatrixException.NotFound("Unknown media ID; reserve one with POST /_matrix/media/v1/create");
            }

            if (reserved.UserId != requester.UserId)
            {
                throw MatrixException.Forbidden("This media ID was reserved by another user");
            }

            if (reserved.Size is not null)
            {
                throw MediaRepository.CannotOverwrite();
            }

            await media.UploadAsync(ctx, requester.UserId, reserved);
            await MatrixJson.WriteAsync(ctx, new JsonObject(), 200);
        });

        // POST /_matrix/media/v1/create
        app.MapJson("POST", "/_matrix/media/v1/create", ResourceGroup.Media, async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            hs.RateLimiter.Take("rc_media_create", requester.UserId);
            var (mediaId, expires) = await media.CreateAsync(requester.UserId, ctx.RequestAborted);
            return new JsonObject { ["content_uri"] = media.ContentUri(mediaId), ["unused_expires_at"] = expires };
        });

        // GET /_matrix/client/v1/media/config (and the legacy /_matrix/media/v3/config)
        JsonEndpoint config = async ctx =>
        {
            await hs.Auth.RequireAsync(ctx);
            return new JsonObject { ["m.upload.size"] = hs.Config.MaxUploadSize };
        };
        app.MapJson("GET", "/_matrix/client/v1/media/config", ResourceGroup.Client, config);
        app.MapJson("GET", "/_matrix/media/v3/config", ResourceGroup.Media, config);
        app.MapJson("GET", "/_matrix/media/r0/config", ResourceGroup.Media, config);

        // GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}]
        RequestDelegate download = async ctx =>
        {
            await hs.Auth.RequireAsync(ctx);
            await DownloadAsync(ctx, media, legacy: false);
        };
        app.MapRaw("GET", "/_matrix/client/v1/media/download/{serverName}/{mediaId}", ResourceGroup.Client, download);
        app.MapRaw("GET", "/_matrix/client/v1/media/download/{serverName}/{mediaId}/{fileName}", ResourceGroup.Client, download);

        // GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}?width&height&method&animated
        app.MapRaw("GET", "/_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}", ResourceGroup.Client, async ctx =>
        {
            await hs.Auth.RequireAsync(ctx);
            await ThumbnailAsync(ctx, hs, media, legacy: false);
        });

        // The legacy unauthenticated endpoints: only media uploaded while enable_authenticated_media was off.
        RequestDelegate legacyDownload = ctx => DownloadAsync(ctx, media, legacy: true);
        RequestDelegate legacyThumbnail = ctx => ThumbnailAsync(ctx, hs, media, legacy: true);
        foreach (var version in new[] { "v3", "r0" })
        {
            app.MapRaw("GET", $"/_matrix/media/{version}/download/{{serverName}}/{{mediaId}}", ResourceGroup.Media, legacyDownload);
            app.MapRaw("GET", $"/_matrix/media/{version}/download/{{serverName}}/{{mediaId}}/{{fileName}}", ResourceGroup.Media, legacyDownload);
            app.MapRaw("GET", $"/_matrix/media/{version}/thumbnail/{{serverName}}/{{mediaId}}", ResourceGroup.Media, legacyThumbnail);
        }

        // GET /_matrix/client/v1/media/preview_url?url&ts (and the legacy /_matrix/media/v3|r0/preview_url while
        // enable_authenticated_media is off, like the other legacy media endpoints).
        JsonEndpoint preview = async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            if (!media.Previews.Enabled)
            {
                throw MatrixException.NotFound("URL previews are not enabled on this server");
            }

            var url = ctx.Query("url") ?? throw MatrixException.MissingParam("Missing url");
            long? ts = ctx.Query("ts") is { } text
                ? long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var t) ? t : throw MatrixException.InvalidParam("ts must be a non-negative integer (ms)")
                : null;
            return await media.Previews.PreviewAsync(url, ts, requester.UserId, ctx.RequestAborted);
        };
        JsonEndpoint legacyPreview = ctx => hs.Config.Media.EnableAuthenticatedMedia
            ? throw MatrixException.NotFound("This server previews URLs through the authenticated /_matrix/client/v1/media/preview_url endpoint")
            : preview(ctx);
        app.MapJson("GET", "/_matrix/client/v1/media/preview_url", ResourceGroup.Client, preview);
        app.MapJson("GET", "/_matrix/media/v3/preview_url", ResourceGroup.Media, legacyPreview);
        app.MapJson("GET", "/_matrix/media/r0/preview_url", ResourceGroup.Media, legacyPreview);

        // DELETE /_matrix/client/unstable/org.matrix.msc3911/media/{serverName}/{mediaId}: the uploader deletes their own media, bytes included.
        // Media a message still under its room's min_lifetime names is the room's to keep until the hold ends: refused
        // (403, with held_until_ts) rather than answered as deleted while members can still download it.
        app.MapJson("DELETE", "/_matrix/client/unstable/org.matrix.msc3911/media/{serverName}/{mediaId}", ResourceGroup.Client, async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var serverName = ctx.Route("serverName");
            var mediaId = ctx.Route("mediaId");
            var item = serverName == hs.ServerName && MediaFiles.IsValidId(mediaId) ? await media.Store.GetAsync(mediaId, ctx.RequestAborted) : null;
            if (item is null)
            {
                throw MatrixException.NotFound("Unknown media");
            }

            if (item.UserId != requester.UserId && !requester.IsAdmin)
            {
                throw MatrixException.Forbidden("Only the uploader can delete this media");
            }

            if ((await hs.LegalHolds.HeldMediaAsync([mediaId], ctx.RequestAborted)).TryGetValue(mediaId, out var heldUntil))
            {
                throw MatrixException.Of(403, ErrCode.Forbidden, "A message in a room whose retention policy (min_lifetime) keeps it still shows this media; it can be deleted from held_until_ts on", new JsonObject { ["held_until_ts"] = heldUntil });
            }

            await media.DeleteAsync(mediaId, ctx.RequestAborted);
            return new JsonObject();
        });
    }

    private static long TimeoutOf(HttpContext ctx)
    {
        var text = ctx.Query("timeout_ms");
        if (text is null)
        {
            return DefaultTimeoutMs;
        }

        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
            ? Math.Min(ms, MaxTimeoutMs)
            : throw MatrixException.InvalidParam("timeout_ms must be a non-negative integer");
    }

    private static async Task<MediaRecord> FindAsync(HttpContext ctx, MediaRepository media, bool legacy)
    {
        var record = await media.FindAsync(ctx.Route("serverName"), ctx.Route("mediaId"), TimeoutOf(ctx), ctx.RequestAborted);
        if (legacy && record.Authenticated)
        {
            // Synapse's freeze: once authenticated media is on, new media is never served without a token.
            throw MatrixException.NotFound("Unknown media (this server serves media through the authenticated /_matrix/client/v1/media endpoints)");
        }

        return record;
    }

    private static async Task DownloadAsync(HttpContext ctx, MediaRepository media, bool legacy)
    {
        var record = await FindAsync(ctx, media, legacy);
        // Routing decodes every escape in a segment except %2F, which it leaves as is; a name is text, so decode that too.
        var fileName = ctx.Request.RouteValues.TryGetValue("fileName", out var f) && f is string s
            ? s.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase)
            : record.UploadName;
        MediaRepository.CheckFileName(fileName);
        media.NoteAccess(record);
        var stream = media.Open(record.MediaId);
        var contentType = ServedType(record.ContentType);
        SetSafetyHeaders(ctx, contentType, fileName);
        await TypedResults.File(stream, contentType, lastModified: DateTimeOffset.FromUnixTimeMilliseconds(record.CreatedTs), enableRangeProcessing: true).ExecuteAsync(ctx);
    }

    private static async Task ThumbnailAsync(HttpContext ctx, HomeserverServices hs, MediaRepository media, bool legacy)
    {
        var width = Dimension(ctx, "width");
        var height = Dimension(ctx, "height");
        var method = ctx.Query("method") ?? "scale";
        if (method is not ("scale" or "crop"))
        {
            throw MatrixException.InvalidParam("method must be scale or crop");
        }

        var animated = ctx.Query("animated") switch
        {
            null or "false" => false,
            "true" => true,
            _ => throw MatrixException.InvalidParam("animated must be true or false"),
        };

        if ((long)width * height > hs.Config.Media.MaxImagePixels)
        {
            throw MatrixException.InvalidParam("The requested thumbnail is larger than max_image_pixels");
        }

        var record = await FindAsync(ctx, media, legacy);
        var (path, contentType) = await media.ThumbnailAsync(record, media.ChooseSize(width, height, method), animated, ctx.RequestAborted);
        media.NoteAccess(record);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1, FileOptions.Asynchronous);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw MatrixException.NotFound("Unknown media");
        }

        SetSafetyHeaders(ctx, contentType, fileName: null);
        await TypedResults.File(stream, contentType, enableRangeProcessing: true).ExecuteAsync(ctx);
    }

    private static int Dimension(HttpContext ctx, string name)
    {
        var text = ctx.Query(name) ?? throw MatrixException.MissingParam($"Missing {name}");
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v is > 0 and <= 10_000
            ? v
            : throw MatrixException.InvalidParam($"{name} must be an integer from 1 to 10000");
    }

    /// <summary>Text is served as UTF-8 unless the uploader named a charset, so browsers do not guess.</summary>
    private static string ServedType(string contentType) =>
        contentType.StartsWith("text/", StringComparison.OrdinalIgnoreCase) && !contentType.Contains("charset", StringComparison.OrdinalIgnoreCase)
            ? contentType + "; charset=utf-8"
            : contentType;

    /// <summary>
    /// Headers that keep served media from acting as a web page of this origin: inline only for types browsers treat as
    /// inert (else an attachment), a sandboxing CSP, no type sniffing (the pipeline sets nosniff on every response).
    /// </summary>
    public static void SetSafetyHeaders(HttpContext ctx, string contentType, string? fileName)
    {
        var headers = ctx.Response.Headers;
        var baseType = contentType.Split(';', 2)[0].Trim();
        var disposition = new StringBuilder(InlineTypes.Contains(baseType) ? "inline" : "attachment");
        if (!string.IsNullOrEmpty(fileName))
        {
            // RFC 6266 / 5987: the name percent-encoded as UTF-8, so no quoting or header injection is possible.
            disposition.Append("; filename*=utf-8''").Append(Uri.EscapeDataString(fileName));
        }

        headers[HeaderNames.ContentDisposition] = disposition.ToString();
        headers[HeaderNames.ContentSecurityPolicy] = ContentSecurityPolicy;
        headers["Cross-Origin-Resource-Policy"] = "cross-origin";
        headers[HeaderNames.CacheControl] = "private, max-age=86400";
    }
}
