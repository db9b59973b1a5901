using Lethe.Homeserver.Configuration;

namespace Lethe.Homeserver.Media;

/// <summary>A thumbnail size from <c>thumbnail_sizes</c>.</summary>
public sealed record ThumbnailSize(int Width, int Height, string Method);

/// <summary>One <c>media_upload_limits</c> entry: at most <paramref name="MaxSize"/> bytes per user in any <paramref name="TimePeriodMs"/>.</summary>
public sealed record MediaUploadLimit(long TimePeriodMs, long MaxSize);

/// <summary>The media repository's settings, in Synapse's homeserver.yaml keys (<c>max_upload_size</c> stays on <see cref="HomeserverConfig"/>).</summary>
public sealed record MediaConfig
{
    /// <summary>Synapse's default <c>thumbnail_sizes</c>.</summary>
    public static readonly IReadOnlyList<ThumbnailSize> DefaultThumbnailSizes =
    [
        new(32, 32, "crop"), new(96, 96, "crop"), new(320, 240, "scale"), new(640, 480, "scale"), new(800, 600, "scale"),
    ];

    /// <summary>Downloads and thumbnails need an access token (<c>/_matrix/client/v1/media</c>); the legacy unauthenticated endpoints serve only media uploaded while this was off.</summary>
    public bool EnableAuthenticatedMedia { get; init; } = true;

    /// <summary>Images with more pixels than this are never decoded (decompression bombs); Synapse's <c>max_image_pixels</c>.</summary>
    public long MaxImagePixels { get; init; } = 32L * 1024 * 1024;

    /// <summary>Thumbnail any requested size instead of the nearest configured one.</summary>
    public bool DynamicThumbnails { get; init; }

    /// <summary>The sizes thumbnails are made in (unless <see cref="DynamicThumbnails"/>).</summary>
    public IReadOnlyList<ThumbnailSize> ThumbnailSizes { get; init; } = DefaultThumbnailSizes;

    /// <summary>Per-user upload volume limits.</summary>
    public IReadOnlyList<MediaUploadLimit> UploadLimits { get; init; } = [];

    /// <summary>Unfilled <c>/create</c> reservations a user may hold at once.</summary>
    public int MaxPendingMediaUploads { get; init; } = 5;

    /// <summary>How long a <c>/create</c> reservation waits for its bytes (ms).</summary>
    public long UnusedExpirationTime { get; init; } = 86_400_000;

    /// <summary><c>media_retention.local_media_lifetime</c>: local media not downloaded for this long is deleted (ms); null keeps it.</summary>
    public long? LocalMediaLifetime { get; init; }

    /// <summary><c>media_retention.remote_media_lifetime</c> (ms); Lethe has no remote media cache yet, so it has nothing to act on.</summary>
    public long? RemoteMediaLifetime { get; init; }

    /// <summary>URL previews (<c>url_preview_*</c>, <c>max_spider_size</c>); off by default.</summary>
    public UrlPreviewConfig UrlPreviews { get; init; } = new();

    /// <summary>Read from the root of homeserver.yaml.</summary>
    internal static MediaConfig Read(ConfigSection root, List<string> warnings)
    {
        if (!root.Bool("enable_media_repo", true))
        {
            warnings.Add("enable_media_repo: false is not supported (Lethe has no separate media worker); the media repository is served");
        }

        var sizes = new List<ThumbnailSize>();
        foreach (var s in root.SectionList("thumbnail_sizes"))
        {
            var method = s.String("method", "scale")!;
            if (method is not ("scale" or "crop"))
            {
                throw new ConfigException(s.KeyPath("method"), $"must be scale or crop, not '{method}'");
            }

            sizes.Add(new ThumbnailSize((int)s.Integer("width", 0, 1, 8192), (int)s.Integer("height", 0, 1, 8192), method));
            if (sizes[^1].Width == 0 || sizes[^1].Height == 0)
            {
                throw new ConfigException(s.KeyPath("width"), "width and height are required");
            }
        }

        var limits = new List<MediaUploadLimit>();
        foreach (var l in root.SectionList("media_upload_limits"))
        {
            var period = l.Duration("time_period", null) ?? throw new ConfigException(l.KeyPath("time_period"), "is required");
            if (!l.Has("max_size"))
            {
                throw new ConfigException(l.KeyPath("max_size"), "is required");
            }

            limits.Add(new MediaUploadLimit(period, l.Size("max_size", 0)));
        }

        var retention = root.Section("media_retention");
        var remoteLifetime = retention?.Duration("remote_media_lifetime", null);
        if (remoteLifetime is not null)
        {
            warnings.Add("media_retention.remote_media_lifetime: Lethe does not cache remote media yet, so there is nothing for it to expire");
        }

        var maxPixels = root.Size("max_image_pixels", 32L * 1024 * 1024);
        if (maxPixels <= 0)
        {
            throw new ConfigException("max_image_pixels", "must be positive");
        }

        var previews = UrlPreviewConfig.Read(root);
        return new MediaConfig
        {
            EnableAuthenticatedMedia = root.Bool("enable_authenticated_media", true),
            MaxImagePixels = maxPixels,
            DynamicThumbnails = root.Bool("dynamic_thumbnails", false),
            ThumbnailSizes = sizes.Count > 0 ? sizes : DefaultThumbnailSizes,
            UploadLimits = limits,
            MaxPendingMediaUploads = (int)root.Integer("max_pending_media_uploads", 5, 1, 10_000),
            UnusedExpirationTime = root.Duration("unused_expiration_time", 86_400_000)!.Value,
            LocalMediaLifetime = retention?.Duration("local_media_lifetime", null),
            RemoteMediaLifetime = remoteLifetime,
            UrlPreviews = previews,
        };
    }
}
