using System.Collections.Concurrent;
using System.IO.Pipelines;
using Lethe.Homeserver.Http;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;

namespace Lethe.Homeserver.Media;

/// <summary>
/// The media repository: streams uploads to disk, finds media to serve, makes and caches thumbnails, and deletes media
/// (rows and bytes). Endpoints (<see cref="MediaEndpoints"/>) and admin tools go through it.
/// </summary>
public sealed class MediaRepository : IDisposable
{
    private const int CopyBufferSize = 128 * 1024;

    // JPEG frame headers can sit behind up to a few 64 KiB metadata segments.
    private const int HeaderPrefix = 512 * 1024;

    private readonly HomeserverServices _hs;
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _uploadWaiters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _accessed = new(StringComparer.Ordinal);

    // Decoding is CPU- and memory-heavy: no more images at once than there are cores.
    private readonly SemaphoreSlim _thumbnailing = new(Math.Max(1, Environment.ProcessorCount));

    /// <summary>Builds the repository over the store folder and the media tables.</summary>
    public MediaRepository(HomeserverServices hs, MediaStore store)
    {
        _hs = hs;
        Store = store;
        Files = new MediaFiles(hs.Config.MediaStorePath);
        Previews = new UrlPreviewer(hs, this);
    }

    /// <summary>URL previews (off unless <c>url_preview_enabled</c>).</summary>
    public UrlPreviewer Previews { get; }

    /// <summary>Media metadata.</summary>
    public MediaStore Store { get; }

    /// <summary>Media bytes on disk.</summary>
    public MediaFiles Files { get; }

    private MediaConfig Config => _hs.Config.Media;

    /// <summary>The <c>mxc://</c> URI of a local item.</summary>
    public string ContentUri(string mediaId) => $"mxc://{_hs.ServerName}/{mediaId}";

    /// <summary>
    /// Streams the request body into a new item (or the reservation <paramref name="reserved"/>) and returns its ID.
    /// Refuses before reading when Content-Length is over <c>max_upload_size</c>; stops and deletes the partial file when
    /// the body outgrows it or ends early. Nothing reaches <c>local_content</c> unless the whole body arrived.
    /// </summary>
    public async Task<string> UploadAsync(HttpContext ctx, string userId, MediaRecord? reserved)
    {
        var max = _hs.Config.MaxUploadSize;
        var declared = ctx.Request.ContentLength;
        if (declared > max)
        {
            throw MatrixException.TooLarge($"The upload is {declared} bytes; this server accepts at most {max}");
        }

        var contentType = ContentTypeOf(ctx);
        var fileName = ctx.Query("filename");
        CheckFileName(fileName);
        await CheckUploadLimitsAsync(userId, declared ?? 0, ctx.RequestAborted);

        var mediaId = reserved?.MediaId ?? MediaFiles.NewMediaId();
        var path = Files.ContentPath(mediaId);
        using var temp = Files.CreateTemp(path); // deleted on the way out unless committed
        long size = 0;
        // Kestrel hands the body over one pool block (Http/LargeBlockMemoryPool) at a time as it comes off the socket;
        // waiting for 128 KiB wakes this loop far less often (with 4 KiB blocks a 1 MiB body took 9 to 206 reads,
        // then 1 to 7; each is a thread-pool hop), and each wake-up writes what arrived in one call and starts the disk
        // on it, so the fsync at the end has less left to wait for.
        var body = ctx.Request.BodyReader;
        while (true)
        {
            ReadResult read;
            try
            {
                read = await body.ReadAtLeastAsync(CopyBufferSize, ctx.RequestAborted);
            }
            catch (Exception e) when (e is BadHttpRequestException or IOException or OperationCanceledException)
            {
                if (ctx.RequestAborted.IsCancellationRequested)
                {
                    // The client went away mid-body (a truncated upload): nobody to answer; the partial file goes with temp.
                    throw new OperationCanceledException("The client disconnected during the upload", e, ctx.RequestAborted);
                }

                throw e is BadHttpRequestException { StatusCode: 413 }
                    ? MatrixException.TooLarge($"The upload is larger than the {max} bytes this server accepts")
                    : MatrixException.Of(400, ErrCode.Unknown, $"The upload ended early: {size} bytes arrived" + (declared is { } d ? $" of the {d} announced" : ""));
            }

            var chunk = read.Buffer;
            size += chunk.Length;
            if (size > max)
            {
                throw MatrixException.TooLarge($"The upload is larger than the {max} bytes this server accepts");
            }

            temp.Append(chunk);
            body.AdvanceTo(chunk.End);
            if (read.IsCompleted)
            {
                break;
            }
        }

        if (declared is { } expected && expected != size)
        {
            throw MatrixException.Of(400, ErrCode.Unknown, $"The upload ended early: {size} bytes arrived of the {expected} announced");
        }

        if (declared is null && Config.UploadLimits.Count > 0)
        {
            // A chunked body announced no size: check the limits again now that it is known.
            await CheckUploadLimitsAsync(userId, size, ctx.RequestAborted);
        }

        if (!temp.Commit())
        {
            throw CannotOverwrite();
        }

        try
        {
            var now = _hs.NowMs;
            if (reserved is null)
            {
                await Store.AddAsync(new MediaRecord
                {
                    MediaId = mediaId,
                    UserId = userId,
                    ContentType = contentType,
                    UploadName = fileName,
                    Size = size,
                    CreatedTs = now,
                    Authenticated = Config.EnableAuthenticatedMedia,
                }, CancellationToken.None);
            }
            else if (!await Store.CompleteAsync(mediaId, contentType, fileName, size, now, CancellationToken.None))
            {
                // The reservation lapsed or was deleted while the bytes streamed in.
                MediaFiles.TryDelete(path);
                throw MatrixException.NotFound("The reserved media ID has expired or been deleted");
            }
        }
        catch (Exception e) when (e is not MatrixException)
        {
            MediaFiles.TryDelete(path);
            throw;
        }

        if (_uploadWaiters.TryRemove(mediaId, out var waiter))
        {
            waiter.TrySetResult();
        }

        _hs.Metrics.MediaUploadedBytes.Add(size);
        return mediaId;
    }

    /// <summary>
    /// Stores bytes the server fetched itself (a URL preview's image) as a new local item owned by
    /// <paramref name="owner"/>; returns its ID. The bytes are bounded by the caller (<c>max_spider_size</c>).
    /// </summary>
    public async Task<string> StoreAsync(byte[] bytes, string contentType, string? fileName, string owner, CancellationToken ct)
    {
        var mediaId = MediaFiles.NewMediaId();
        var path = Files.ContentPath(mediaId);
        if (!Files.Write(path, bytes))
        {
            throw CannotOverwrite();
        }

        try
        {
            await Store.AddAsync(new MediaRecord
            {
                MediaId = mediaId,
                UserId = owner,
                ContentType = contentType,
                UploadName = fileName is { Length: <= 255 } && !fileName.Any(char.IsControl) ? fileName : null,
                Size = bytes.Length,
                CreatedTs = _hs.NowMs,
                Authenticated = Config.EnableAuthenticatedMedia,
            }, CancellationToken.None);
        }
        catch
        {
            MediaFiles.TryDelete(path);
            throw;
        }

        return mediaId;
    }

    /// <inheritdoc />
    public void Dispose() => Previews.Dispose();

    /// <summary>409 M_CANNOT_OVERWRITE_MEDIA: the reservation already has its bytes.</summary>
    public static MatrixException CannotOverwrite() => MatrixException.Of(409, "M_CANNOT_OVERWRITE_MEDIA", "Media already uploaded");

    /// <summary>The content type of an upload: the request's, or application/octet-stream; refuses values that could not be served back safely.</summary>
    private static string ContentTypeOf(HttpContext ctx)
    {
        var type = ctx.Request.ContentType;
        if (string.IsNullOrWhiteSpace(type))
        {
            return "application/octet-stream";
        }

        if (type.Length > 255 || type.Any(c => c < 0x20 || c > 0x7E))
        {
            throw MatrixException.InvalidParam("Content-Type must be printable ASCII of at most 255 characters");
        }

        return type.Trim();
    }

    /// <summary>File names are only ever echoed back in Content-Disposition (never used as paths), but must be sane text.</summary>
    internal static void CheckFileName(string? fileName)
    {
        if (fileName is null)
        {
            return;
        }

        if (fileName.Length > 255 || fileName.Any(char.IsControl))
        {
            throw MatrixException.InvalidParam("filename must be at most 255 characters without control characters");
        }
    }

    private async Task CheckUploadLimitsAsync(string userId, long size, CancellationToken ct)
    {
        foreach (var limit in Config.UploadLimits)
        {
            var used = await Store.UploadedSinceAsync(userId, _hs.NowMs - limit.TimePeriodMs, ct);
            if (used + size > limit.MaxSize)
            {
                throw MatrixException.Of(400, ErrCode.ResourceLimitExceeded, "Media upload limit exceeded");
            }
        }
    }

    /// <summary>Reserves a media ID for an async upload (<c>POST /_matrix/media/v1/create</c>).</summary>
    public async Task<(string MediaId, long ExpiresTs)> CreateAsync(string userId, CancellationToken ct)
    {
        var now = _hs.NowMs;
        if (await Store.PendingCountAsync(userId, now, ct) >= Config.MaxPendingMediaUploads)
        {
            throw MatrixException.Of(429, ErrCode.LimitExceeded, "Too many pending media uploads", new System.Text.Json.Nodes.JsonObject { ["retry_after_ms"] = Config.UnusedExpirationTime });
        }

        var mediaId = MediaFiles.NewMediaId();
        var expires = now + Config.UnusedExpirationTime;
        await Store.AddAsync(new MediaRecord
        {
            MediaId = mediaId,
            UserId = userId,
            ContentType = "application/octet-stream",
            CreatedTs = now,
            UnusedExpiresTs = expires,
            Authenticated = Config.EnableAuthenticatedMedia,
        }, ct);
        return (mediaId, expires);
    }

    /// <summary>
    /// Finds local media to serve: M_NOT_FOUND for remote servers (no federation client yet), bad IDs, unknown,
    /// quarantined or lapsed items; for a reservation still waiting for its bytes, waits up to <paramref name="timeoutMs"/>
    /// and then answers 504 M_NOT_YET_UPLOADED, as the spec asks.
    /// </summary>
    public async Task<MediaRecord> FindAsync(string serverName, string mediaId, long timeoutMs, CancellationToken ct)
    {
        if (serverName != _hs.ServerName)
        {
            throw MatrixException.NotFound("Remote media is not available: this server does not fetch media over federation yet");
        }

        if (!MediaFiles.IsValidId(mediaId))
        {
            throw MatrixException.NotFound("Unknown media");
        }

        var media = await Store.GetAsync(mediaId, ct);
        if (media is { Size: null } && media.UnusedExpiresTs > _hs.NowMs && timeoutMs > 0)
        {
            var waiter = _uploadWaiters.GetOrAdd(mediaId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            media = await Store.GetAsync(mediaId, ct);
            if (media is { Size: null })
            {
                try
                {
                    await waiter.Task.WaitAsync(TimeSpan.FromMilliseconds(timeoutMs), _hs.Clock, ct);
                }
                catch (TimeoutException)
                {
                    // Answered below.
                }

                media = await Store.GetAsync(mediaId, ct);
            }
        }

        if (media is null || media.QuarantinedBy is not null || (media.Size is null && media.UnusedExpiresTs <= _hs.NowMs))
        {
            throw MatrixException.NotFound("Unknown media");
        }

        if (media.Size is null)
        {
            throw MatrixException.Of(504, "M_NOT_YET_UPLOADED", "The media has not been uploaded yet");
        }

        return media;
    }

    /// <summary>Opens an item's bytes for reading, or M_NOT_FOUND when they are gone (deleted under us).</summary>
    public FileStream Open(string mediaId)
    {
        try
        {
            return new FileStream(Files.ContentPath(mediaId), new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.Read | FileShare.Delete,
                Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
                BufferSize = 0,
            });
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw MatrixException.NotFound("Unknown media");
        }
    }

    /// <summary>
    /// Notes a download for <c>media_retention.local_media_lifetime</c>. Kept in memory and written in one batch by
    /// <see cref="FlushAccessTimesAsync"/> (housekeeping, and before every media expiry run), so a download costs no
    /// database write; a crash loses at most a minute of access times, which only makes media look older than it is
    /// by that much.
    /// </summary>
    public void NoteAccess(MediaRecord media) => _accessed[media.MediaId] = _hs.NowMs;

    /// <summary>Writes the access times noted since the last flush.</summary>
    public async Task FlushAccessTimesAsync(CancellationToken ct)
    {
        if (_accessed.IsEmpty)
        {
            return;
        }

        var batch = new List<(string, long)>();
        foreach (var kv in _accessed)
        {
            if (_accessed.TryRemove(kv.Key, out var ts))
            {
                batch.Add((kv.Key, ts));
            }
        }

        await Store.TouchAsync(batch, ct);
    }

    /// <summary>
    /// The thumbnail size to make for a request: the exact box with <c>dynamic_thumbnails</c>, otherwise the smallest
    /// configured size at least as large as the box (same method preferred), else the largest configured one.
    /// </summary>
    public ThumbnailSize ChooseSize(int width, int height, string method) => ChooseSize(Config, width, height, method);

    /// <summary>See <see cref="ChooseSize(int, int, string)"/>.</summary>
    public static ThumbnailSize ChooseSize(MediaConfig config, int width, int height, string method)
    {
        if (config.DynamicThumbnails)
        {
            return new ThumbnailSize(width, height, method);
        }

        ThumbnailSize? best = null;
        ThumbnailSize? largest = null;
        foreach (var pass in new[] { true, false })
        {
            foreach (var s in config.ThumbnailSizes)
            {
                if (pass && s.Method != method)
                {
                    continue;
                }

                if (s.Width >= width && s.Height >= height && (best is null || (long)s.Width * s.Height < (long)best.Width * best.Height))
                {
                    best = s;
                }

                if (largest is null || (long)s.Width * s.Height > (long)largest.Width * largest.Height)
                {
                    largest = s;
                }
            }

            if (best is not null)
            {
                return best;
            }

            if (pass && largest is not null)
            {
                return largest;
            }
        }

        return largest ?? new ThumbnailSize(width, height, method);
    }

    /// <summary>
    /// A thumbnail of <paramref name="media"/> in <paramref name="size"/>: the cached file when there is one, else made
    /// now (libvips), cached on disk and recorded. With <paramref name="animated"/> an animated source gives an animated
    /// thumbnail (GIF or WebP); stills and animations are cached side by side (they never share a content type).
    /// Returns the path of the cached file and its content type.
    /// </summary>
    public async Task<(string Path, string ContentType)> ThumbnailAsync(MediaRecord media, ThumbnailSize size, bool animated, CancellationToken ct)
    {
        (string, string)? still = null;
        foreach (var t in await Store.ThumbnailsAsync(media.MediaId, ct))
        {
            if (t.Width == size.Width && t.Height == size.Height && t.Method == size.Method)
            {
                var cached = Files.ThumbnailPath(media.MediaId, t.Width, t.Height, t.ContentType, t.Method);
                if (!File.Exists(cached))
                {
                    continue;
                }

                if (IsAnimatedType(t.ContentType) == animated)
                {
                    return (cached, t.ContentType);
                }

                if (!IsAnimatedType(t.ContentType))
                {
                    still = (cached, t.ContentType);
                }
            }
        }

        // Asked for an animation, but only a still is cached: it is the answer if the source is not animated, which the
        // header tells without decoding (so stills asked for with animated=true are not re-made on every request).
        if (still is { } s && await IsStillAsync(media, ct))
        {
            return s;
        }

        if (media.Size > Math.Max(_hs.Config.MaxUploadSize, 64L * 1024 * 1024))
        {
            throw MatrixException.TooLarge("The media is too large to thumbnail");
        }

        await _thumbnailing.WaitAsync(ct);
        Thumbnail thumbnail;
        try
        {
            byte[] bytes;
            await using (var stream = Open(media.MediaId))
            {
                // Look at the start first: a large file that is not an image (or an image over the pixel limit whose
                // header fits in the prefix) is refused without reading the rest.
                var prefix = new byte[(int)Math.Min(stream.Length, HeaderPrefix)];
                await stream.ReadExactlyAsync(prefix, ct);
                if (ImageHeader.Read(prefix) is { } header)
                {
                    if (header.Pixels > Config.MaxImagePixels)
                    {
                        throw new ThumbnailException(ThumbnailFailure.TooManyPixels, $"The image is {header.Width}×{header.Height}, more than the {Config.MaxImagePixels} pixels this server decodes");
                    }
                }
                else if (!ImageHeader.HasImageSignature(prefix))
                {
                    throw new ThumbnailException(ThumbnailFailure.Unsupported, "Not an image Lethe can thumbnail (JPEG, PNG, GIF or WebP)");
                }

                bytes = new byte[stream.Length];
                prefix.CopyTo(bytes, 0);
                await stream.ReadExactlyAsync(bytes.AsMemory(prefix.Length), ct);
            }

            thumbnail = await Task.Run(() => Thumbnailer.Make(bytes, size.Width, size.Height, size.Method, animated, Config.MaxImagePixels), ct);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException)
        {
            // A server fault, but a known one: say what is missing instead of a bare 500.
            throw MatrixException.Of(503, ErrCode.Unknown, "Thumbnails are not available on this server: libvips (bundled for linux-x64 by NetVips.Native) could not be loaded");
        }
        catch (ThumbnailException e)
        {
            throw e.Failure switch
            {
                ThumbnailFailure.TooManyPixels => MatrixException.TooLarge(e.Message),
                _ => MatrixException.Of(400, ErrCode.Unknown, e.Message),
            };
        }
        finally
        {
            _thumbnailing.Release();
        }

        _hs.Metrics.MediaThumbnailsGenerated.Add(1);
        var path = Files.ThumbnailPath(media.MediaId, size.Width, size.Height, thumbnail.ContentType, size.Method);
        Files.Write(path, thumbnail.Bytes);
        await Store.AddThumbnailAsync(new ThumbnailRecord
        {
            MediaId = media.MediaId,
            Width = size.Width,
            Height = size.Height,
            Method = size.Method,
            ContentType = thumbnail.ContentType,
            Size = thumbnail.Bytes.Length,
        }, ct);

        // Deleted while we were thumbnailing: do not leave the new thumbnail behind.
        if (await Store.GetAsync(media.MediaId, ct) is null)
        {
            await DeleteAsync(media.MediaId, CancellationToken.None);
            throw MatrixException.NotFound("Unknown media");
        }

        return (path, thumbnail.ContentType);
    }

    private static bool IsAnimatedType(string contentType) => contentType is "image/gif" or "image/webp";

    private async Task<bool> IsStillAsync(MediaRecord media, CancellationToken ct)
    {
        await using var stream = Open(media.MediaId);
        var prefix = new byte[(int)Math.Min(stream.Length, HeaderPrefix)];
        await stream.ReadExactlyAsync(prefix, ct);
        // A GIF's second frame may lie past the prefix: only a GIF read whole is known to be still.
        return ImageHeader.Read(prefix) is { } header
            && !(header.Animated && header.Format is ImageFormat.Gif or ImageFormat.WebP)
            && (header.Format != ImageFormat.Gif || prefix.Length == stream.Length);
    }

    /// <summary>Deletes an item: its bytes and thumbnails from disk first, then its rows. True when anything existed.</summary>
    public async Task<bool> DeleteAsync(string mediaId, CancellationToken ct)
    {
        if (!MediaFiles.IsValidId(mediaId))
        {
            return false;
        }

        _uploadWaiters.TryRemove(mediaId, out _);

        // Bytes before rows: if the row delete fails, the item reads as gone (404) rather than the bytes lingering unlisted.
        var files = Files.DeleteAll(mediaId);
        var row = await Store.DeleteAsync(mediaId, ct);
        if (row || files)
        {
            _hs.Metrics.MediaDeleted.Add(1);
        }

        return row || files;
    }

    /// <summary>
    /// Deletes media that events used to name and none names now (after a retention purge or prune), except media
    /// that is someone's avatar or protected from quarantine. Returns how many were deleted.
    /// </summary>
    public async Task<int> DeleteOrphansAsync(IReadOnlyList<string> mediaIds, CancellationToken ct)
    {
        if (mediaIds.Count == 0)
        {
            return 0;
        }

        var avatars = await Store.AvatarMediaIdsAsync(_hs.ServerName, ct);
        var deleted = 0;
        foreach (var id in mediaIds)
        {
            // Checked again outside the purge's transaction: an event sent since (or a pruned event that kept the URL) may name it.
            if (avatars.Contains(id) || await Store.GetAsync(id, ct) is not { SafeFromQuarantine: false } || await Store.IsReferencedAsync(id, ct))
            {
                continue;
            }

            deleted += await DeleteAsync(id, ct) ? 1 : 0;
        }

        return deleted;
    }

    /// <summary>Deletes several items; returns the IDs that existed.</summary>
    public async Task<List<string>> DeleteManyAsync(IEnumerable<string> mediaIds, CancellationToken ct)
    {
        var deleted = new List<string>();
        foreach (var id in mediaIds)
        {
            if (await DeleteAsync(id, ct))
            {
                deleted.Add(id);
            }
        }

        return deleted;
    }
}
