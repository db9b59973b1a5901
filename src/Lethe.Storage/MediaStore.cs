using System.Data.Common;
using System.Text;
using Dapper;
using Lethe.Protocol.Crypto;

namespace Lethe.Storage;

/// <summary>One local media item's metadata; the bytes are on disk.</summary>
public sealed record MediaRecord
{
    /// <summary>The media ID (the last part of <c>mxc://server/id</c>).</summary>
    public required string MediaId { get; init; }

    /// <summary>Who uploaded (or reserved) it.</summary>
    public required string UserId { get; init; }

    /// <summary>Content type as given by the uploader.</summary>
    public required string ContentType { get; init; }

    /// <summary>File name as given by the uploader, if any.</summary>
    public string? UploadName { get; init; }

    /// <summary>Size in bytes; null while an async upload's bytes have not arrived.</summary>
    public long? Size { get; init; }

    /// <summary>When it was created or reserved (ms).</summary>
    public long CreatedTs { get; init; }

    /// <summary>For a reservation: when it lapses unless uploaded (ms).</summary>
    public long? UnusedExpiresTs { get; init; }

    /// <summary>Last download (ms), for <c>media_retention</c>.</summary>
    public long? LastAccessTs { get; init; }

    /// <summary>Uploaded while authenticated media was on: never served by the legacy unauthenticated endpoints.</summary>
    public bool Authenticated { get; init; }

    /// <summary>The admin who quarantined it, if it is.</summary>
    public string? QuarantinedBy { get; init; }

    /// <summary>Protected from quarantine.</summary>
    public bool SafeFromQuarantine { get; init; }
}

/// <summary>A cached thumbnail of a media item.</summary>
public sealed record ThumbnailRecord
{
    /// <summary>The media item.</summary>
    public required string MediaId { get; init; }

    /// <summary>Width in pixels.</summary>
    public int Width { get; init; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; init; }

    /// <summary><c>scale</c> or <c>crop</c>.</summary>
    public required string Method { get; init; }

    /// <summary>The thumbnail's content type.</summary>
    public required string ContentType { get; init; }

    /// <summary>Size in bytes.</summary>
    public long Size { get; init; }
}

/// <summary>A cached URL preview.</summary>
public sealed record UrlPreviewRecord
{
    /// <summary>SHA-256 (hex) of <see cref="Url"/>: the key.</summary>
    public required string UrlHash { get; init; }

    /// <summary>When it was fetched (ms).</summary>
    public long FetchedTs { get; init; }

    /// <summary>The URL as requested.</summary>
    public required string Url { get; init; }

    /// <summary>Until when it is served (ms).</summary>
    public long ExpiresTs { get; init; }

    /// <summary>The OpenGraph JSON served.</summary>
    public required string Og { get; init; }

    /// <summary>The local media holding the preview's image, if any.</summary>
    public string? ImageMediaId { get; init; }
}

/// <summary>Metadata of local media and their thumbnails (the bytes are files under media_store_path).</summary>
public sealed class MediaStore(Database db)
{
    private const string Columns = "media_id, user_id, content_type, upload_name, size, created_ts, unused_expires_ts, last_access_ts, authenticated, quarantined_by, safe_from_quarantine";

    /// <summary>Records an uploaded item (or a reservation when <see cref="MediaRecord.Size"/> is null).</summary>
    public Task AddAsync(MediaRecord media, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            $"INSERT INTO media ({Columns}) VALUES (@MediaId, @UserId, @ContentType, @UploadName, @Size, @CreatedTs, @UnusedExpiresTs, @LastAccessTs, @Authenticated, @QuarantinedBy, @SafeFromQuarantine)",
            media, tx), ct);

    /// <summary>Fills a reservation with its uploaded bytes' metadata; false when it was already filled or is gone.</summary>
    public Task<bool> CompleteAsync(string mediaId, string contentType, string? uploadName, long size, long now, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync(
            "UPDATE media SET content_type = @contentType, upload_name = @uploadName, size = @size, created_ts = @now, unused_expires_ts = NULL WHERE media_id = @mediaId AND size IS NULL",
            new { mediaId, contentType, uploadName, size, now }, tx) == 1, ct);

    /// <summary>The item, or null.</summary>
    public Task<MediaRecord?> GetAsync(string mediaId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.QuerySingleOrDefaultAsync<MediaRecord>($"SELECT {Columns} FROM media WHERE media_id = @mediaId", new { mediaId }), ct);

    /// <summary>Reservations a user holds that are neither filled nor lapsed.</summary>
    public Task<long> PendingCountAsync(string userId, long now, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM media WHERE user_id = @userId AND size IS NULL AND unused_expires_ts > @now", new { userId, now }), ct);

    /// <summary>Bytes a user uploaded since <paramref name="sinceTs"/> (for <c>media_upload_limits</c>).</summary>
    public Task<long> UploadedSinceAsync(string userId, long sinceTs, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COALESCE(SUM(size), 0) FROM media WHERE user_id = @userId AND created_ts >= @sinceTs", new { userId, sinceTs }), ct);

    /// <summary>Records downloads (media ID, time) in one transaction.</summary>
    public Task TouchAsync(IReadOnlyList<(string MediaId, long Ts)> accesses, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            foreach (var (mediaId, ts) in accesses)
            {
                await tx.Connection!.ExecuteAsync(
                    "UPDATE media SET last_access_ts = @ts WHERE media_id = @mediaId AND (last_access_ts IS NULL OR last_access_ts < @ts)", new { mediaId, ts }, tx);
            }
        }, ct);

    /// <summary>A user's media, newest first.</summary>
    public Task<List<MediaRecord>> ListByUserAsync(string userId, int from, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<MediaRecord>(
            $"SELECT {Columns} FROM media WHERE user_id = @userId ORDER BY created_ts DESC, media_id LIMIT @limit OFFSET @from", new { userId, limit, from })).ToList(), ct);

    /// <summary>How many items a user has.</summary>
    public Task<long> CountByUserAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM media WHERE user_id = @userId", new { userId }), ct);

    /// <summary>IDs of a user's media (every one, for deletion).</summary>
    public Task<List<string>> IdsByUserAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>("SELECT media_id FROM media WHERE user_id = @userId", new { userId })).ToList(), ct);

    /// <summary>
    /// IDs of uploaded media created before <paramref name="beforeTs"/>, larger than <paramref name="sizeGt"/> bytes and,
    /// when <paramref name="lastAccessBeforeTs"/> is given, not downloaded since then; skipping media safe from quarantine.
    /// </summary>
    public Task<List<string>> OldAsync(long beforeTs, long sizeGt, long? lastAccessBeforeTs, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(
            """
            SELECT media_id FROM media
            WHERE size IS NOT NULL AND created_ts < @beforeTs AND size > @sizeGt AND NOT safe_from_quarantine
              AND (@lastAccessBeforeTs IS NULL OR COALESCE(last_access_ts, created_ts) < @lastAccessBeforeTs)
            ORDER BY created_ts LIMIT @limit
            """, new { beforeTs, sizeGt, lastAccessBeforeTs, limit })).ToList(), ct);

    /// <summary>Reservations that lapsed unfilled.</summary>
    public Task<List<string>> LapsedReservationsAsync(long now, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(
            "SELECT media_id FROM media WHERE size IS NULL AND unused_expires_ts <= @now LIMIT @limit", new { now, limit })).ToList(), ct);

    /// <summary>Sets or clears quarantine; false when there is no such item (or it is protected and <paramref name="by"/> is set).</summary>
    public Task<bool> QuarantineAsync(string mediaId, string? by, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync(
            "UPDATE media SET quarantined_by = @by WHERE media_id = @mediaId AND (@by IS NULL OR NOT safe_from_quarantine)", new { mediaId, by }, tx) == 1, ct);

    /// <summary>Marks an item as protected from quarantine (or not); false when there is no such item.</summary>
    public Task<bool> ProtectAsync(string mediaId, bool safe, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync(
            "UPDATE media SET safe_from_quarantine = @safe WHERE media_id = @mediaId", new { mediaId, safe }, tx) == 1, ct);

    /// <summary>
    /// Deletes the rows of an item and its thumbnails, and URL previews showing it (so a deleted or expired preview
    /// image is never advertised); the caller deletes the files. False when there was no row.
    /// </summary>
    public Task<bool> DeleteAsync(string mediaId, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            await tx.Connection!.ExecuteAsync("DELETE FROM media_thumbnails WHERE media_id = @mediaId", new { mediaId }, tx);
            await tx.Connection!.ExecuteAsync("DELETE FROM url_previews WHERE image_media_id = @mediaId", new { mediaId }, tx);
            await tx.Connection!.ExecuteAsync("DELETE FROM media_references WHERE media_id = @mediaId", new { mediaId }, tx);
            return await tx.Connection!.ExecuteAsync("DELETE FROM media WHERE media_id = @mediaId", new { mediaId }, tx) == 1;
        }, ct);

    /// <summary>Media IDs of this server's media that some user has as their avatar (<c>mxc://{serverName}/{id}</c>).</summary>
    public Task<HashSet<string>> AvatarMediaIdsAsync(string serverName, CancellationToken ct = default) =>
        db.ReadAsync(async c =>
        {
            var prefix = $"mxc://{serverName}/";
            var urls = await c.QueryAsync<string>("SELECT avatar_url FROM profiles WHERE avatar_url LIKE @pattern", new { pattern = prefix + "%" });
            return urls.Where(u => u.StartsWith(prefix, StringComparison.Ordinal)).Select(u => u[prefix.Length..]).ToHashSet(StringComparer.Ordinal);
        }, ct);

    /// <summary>
    /// Records, in the event's own transaction, which of this server's media an event names: every
    /// <c>mxc://{serverName}/{id}</c> in its JSON (url, info.thumbnail_url, avatar_url, formatted bodies…), and which
    /// web links it names (<see cref="UrlHashesIn"/>), whose cached previews go with the last event naming them.
    /// Events with neither cost two byte searches.
    /// </summary>
    public static async Task RecordReferencesAsync(DbTransaction tx, string eventId, ReadOnlyMemory<byte> json, string serverName)
    {
        if (json.Span.IndexOf("mxc://"u8) >= 0)
        {
            foreach (var mediaId in MediaIdsIn(json.Span, serverName))
            {
                await tx.Connection!.ExecuteAsync(
                    "INSERT INTO media_references (media_id, event_id) VALUES (@mediaId, @eventId) ON CONFLICT DO NOTHING", new { mediaId, eventId }, tx);
                await tx.Connection!.ExecuteAsync("UPDATE media SET referenced = TRUE WHERE media_id = @mediaId AND NOT referenced", new { mediaId }, tx);
            }
        }

        if (json.Span.IndexOf("://"u8) >= 0)
        {
            foreach (var urlHash in UrlHashesIn(json.Span))
            {
                await tx.Connection!.ExecuteAsync(
                    "INSERT INTO url_references (event_id, url_hash) VALUES (@eventId, @urlHash) ON CONFLICT DO NOTHING", new { eventId, urlHash }, tx);
            }
        }
    }

    /// <summary>The most links of one event whose previews are tracked; a 64 KiB event could otherwise name thousands.</summary>
    public const int MaxUrlsPerEvent = 32;

    /// <summary>
    /// The SHA-256 (hex, as <c>url_previews.url_hash</c>) of each http(s) link in <paramref name="json"/>, as a client
    /// would ask to preview it: the link runs to the first space, quote, backslash (a JSON escape, as in an
    /// <c>href=\"…\"</c>) or angle bracket, and each form with trailing punctuation (<c>.,;:!?)]}'*</c>) taken off one
    /// character at a time counts too, since "see https://example.org." links to https://example.org.
    /// </summary>
    public static HashSet<string> UrlHashesIn(ReadOnlySpan<byte> json)
    {
        var hashes = new HashSet<string>(StringComparer.Ordinal);
        var links = 0;
        var from = 0;
        while (links < MaxUrlsPerEvent && json[from..].IndexOf("://"u8) is >= 0 and var found)
        {
            var colon = from + found;
            var after = colon + 3;
            from = after;
            var start = colon >= 5 && Ascii.EqualsIgnoreCase(json[(colon - 5)..colon], "https"u8) ? colon - 5
                : colon >= 4 && Ascii.EqualsIgnoreCase(json[(colon - 4)..colon], "http"u8) ? colon - 4
                : -1;
            if (start < 0 || (start > 0 && char.IsAsciiLetterOrDigit((char)json[start - 1])))
            {
                continue; // another scheme (mxc://), or "xhttp://"
            }

            var end = after;
            while (end < json.Length && json[end] > 0x20 && json[end] is not ((byte)'"' or (byte)'\\' or (byte)'<' or (byte)'>'))
            {
                end++;
            }

            if (end == after)
            {
                continue;
            }

            links++;
            from = end;
            for (var e = end; e > after; e--)
            {
                hashes.Add(Convert.ToHexStringLower(Sha256.Hash(json[start..e])));
                if (json[e - 1] is not ((byte)'.' or (byte)',' or (byte)';' or (byte)':' or (byte)'!' or (byte)'?' or (byte)')' or (byte)']' or (byte)'}' or (byte)'\'' or (byte)'*'))
                {
                    break;
                }
            }
        }

        return hashes;
    }

    /// <summary>The distinct local media IDs named in <paramref name="json"/>.</summary>
    public static HashSet<string> MediaIdsIn(ReadOnlySpan<byte> json, string serverName)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var prefix = System.Text.Encoding.UTF8.GetBytes("mxc://" + serverName + "/");
        var rest = json;
        int i;
        while ((i = rest.IndexOf(prefix)) >= 0)
        {
            rest = rest[(i + prefix.Length)..];
            var n = 0;
            while (n < rest.Length && (char.IsAsciiLetterOrDigit((char)rest[n]) || rest[n] is (byte)'_' or (byte)'-'))
            {
                n++;
            }

            if (n > 0)
            {
                ids.Add(System.Text.Encoding.ASCII.GetString(rest[..n]));
            }
        }

        return ids;
    }

    /// <summary>
    /// Drops the references of events being purged or pruned, in the caller's transaction, with the cached previews of
    /// links no other event names, and returns the media they named that no other event names any more, and those
    /// previews' images (candidates for deletion; the caller deletes bytes and rows).
    /// </summary>
    public async Task<List<string>> ReleaseReferencesAsync(DbTransaction tx, IReadOnlyList<string> eventIds)
    {
        if (eventIds.Count == 0)
        {
            return [];
        }

        var conn = tx.Connection!;
        var ids = db.List(eventIds);
        var inIds = db.In("event_id", "ids");
        var orphans = new List<string>();
        var named = (await conn.QueryAsync<string>($"SELECT DISTINCT media_id FROM media_references WHERE {inIds}", new { ids }, tx)).ToList();
        if (named.Count > 0)
        {
            await conn.ExecuteAsync($"DELETE FROM media_references WHERE {inIds}", new { ids }, tx);
            foreach (var mediaId in named)
            {
                if (await conn.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM media_references WHERE media_id = @mediaId", new { mediaId }, tx) == 0)
                {
                    orphans.Add(mediaId);
                }
            }
        }

        // Links: the cached previews of a URL no remaining event names go now, and their images unless another preview shows them.
        var links = (await conn.QueryAsync<string>($"SELECT DISTINCT url_hash FROM url_references WHERE {inIds}", new { ids }, tx)).ToList();
        if (links.Count > 0)
        {
            await conn.ExecuteAsync($"DELETE FROM url_references WHERE {inIds}", new { ids }, tx);
            foreach (var urlHash in links)
            {
                if (await conn.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM url_references WHERE url_hash = @urlHash", new { urlHash }, tx) > 0)
                {
                    continue;
                }

                var images = await conn.QueryAsync<string>("DELETE FROM url_previews WHERE url_hash = @urlHash RETURNING COALESCE(image_media_id, '')", new { urlHash }, tx);
                foreach (var mediaId in images.Where(id => id.Length > 0).Distinct(StringComparer.Ordinal))
                {
                    if (await conn.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM url_previews WHERE image_media_id = @mediaId", new { mediaId }, tx) == 0)
                    {
                        orphans.Add(mediaId);
                    }
                }
            }
        }

        return orphans;
    }

    /// <summary>Whether any event names the item now.</summary>
    public Task<bool> IsReferencedAsync(string mediaId, CancellationToken ct = default) =>
        db.ReadAsync(async c => await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM media_references WHERE media_id = @mediaId", new { mediaId }) > 0, ct);

    /// <summary>Media once named by events that no event names now (what a crash between a purge and its file deletion leaves).</summary>
    public Task<List<string>> UnreferencedAsync(int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(
            "SELECT m.media_id FROM media m WHERE m.referenced AND NOT EXISTS (SELECT 1 FROM media_references r WHERE r.media_id = m.media_id) LIMIT @limit",
            new { limit })).ToList(), ct);

    /// <summary>Records a cached thumbnail (idempotent).</summary>
    public Task AddThumbnailAsync(ThumbnailRecord thumbnail, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            """
            INSERT INTO media_thumbnails (media_id, width, height, method, content_type, size) VALUES (@MediaId, @Width, @Height, @Method, @ContentType, @Size)
            ON CONFLICT (media_id, width, height, method, content_type) DO UPDATE SET size = @Size
            """, thumbnail, tx), ct);

    /// <summary>Cached thumbnails of an item.</summary>
    public Task<List<ThumbnailRecord>> ThumbnailsAsync(string mediaId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<ThumbnailRecord>(
            "SELECT media_id, width, height, method, content_type, size FROM media_thumbnails WHERE media_id = @mediaId", new { mediaId })).ToList(), ct);

    /// <summary>Caches a URL preview.</summary>
    public Task AddPreviewAsync(UrlPreviewRecord preview, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            """
            INSERT INTO url_previews (url_hash, fetched_ts, url, expires_ts, og, image_media_id) VALUES (@UrlHash, @FetchedTs, @Url, @ExpiresTs, @Og, @ImageMediaId)
            ON CONFLICT (url_hash, fetched_ts) DO NOTHING
            """, preview, tx), ct);

    /// <summary>
    /// The cached preview of a URL for time <paramref name="ts"/>, as Synapse picks it: the newest fetched at or before
    /// <paramref name="ts"/>, else the oldest fetched after it. The caller checks it has not expired.
    /// </summary>
    public Task<UrlPreviewRecord?> GetPreviewAsync(string urlHash, long ts, CancellationToken ct = default) =>
        db.ReadAsync(async c =>
        {
            const string Select = "SELECT url_hash, fetched_ts, url, expires_ts, og, image_media_id FROM url_previews WHERE url_hash = @urlHash";
            return await c.QuerySingleOrDefaultAsync<UrlPreviewRecord>(Select + " AND fetched_ts <= @ts ORDER BY fetched_ts DESC LIMIT 1", new { urlHash, ts })
                ?? await c.QuerySingleOrDefaultAsync<UrlPreviewRecord>(Select + " AND fetched_ts > @ts ORDER BY fetched_ts LIMIT 1", new { urlHash, ts });
        }, ct);

    /// <summary>Deletes previews that expired at or before <paramref name="now"/>; returns how many.</summary>
    public Task<int> DeleteExpiredPreviewsAsync(long now, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync("DELETE FROM url_previews WHERE expires_ts <= @now", new { now }, tx), ct);

    /// <summary>
    /// IDs of media owned by <paramref name="owner"/> created before <paramref name="beforeTs"/> that no event ever
    /// named and nobody protected (preview images due for deletion; media named by events goes with its events).
    /// </summary>
    public Task<List<string>> UnreferencedOwnedBeforeAsync(string owner, long beforeTs, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(
            "SELECT media_id FROM media WHERE user_id = @owner AND created_ts < @beforeTs AND NOT referenced AND NOT safe_from_quarantine ORDER BY created_ts LIMIT @limit",
            new { owner, beforeTs, limit })).ToList(), ct);
}
