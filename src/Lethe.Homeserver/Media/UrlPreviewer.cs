using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Http;
using Lethe.Storage;
using Lethe.Protocol.Crypto;

namespace Lethe.Homeserver.Media;

/// <summary>
/// URL previews (<c>GET /_matrix/client/v1/media/preview_url</c>): fetches a page on a user's behalf through
/// <see cref="OutboundAddressRules"/> built from <c>url_preview_ip_range_blacklist</c>/<c>_whitelist</c> (every resolved
/// address checked at connect time, so DNS rebinding cannot reach a blocked range), follows at most a few redirects
/// checking each hop against <c>url_preview_url_blacklist</c>, reads at most <c>max_spider_size</c> bytes within a
/// deadline, and answers the page's OpenGraph data (<see cref="OpenGraph"/>); the preview image is fetched by the same
/// rules and stored as local media. Previews are cached for an hour and are not per-user: nothing records who asked.
/// </summary>
public sealed class UrlPreviewer : IDisposable
{
    /// <summary>The owner recorded on preview images in the media table: not a user, so no user's media list, quota or erasure includes them.</summary>
    public const string ImageOwner = "url_preview";

    /// <summary>How long a preview is served from the cache (Synapse's hour).</summary>
    public const long CacheMs = 60 * 60 * 1000;

    /// <summary>How long a preview image is kept after it was fetched (as Synapse: two days), unless an event names it.</summary>
    public const long ImageLifetimeMs = 2 * 24 * 60 * 60 * 1000;

    private const int MaxRedirects = 5;
    private const int MaxUrlLength = 2048;

    private readonly HomeserverServices _hs;
    private readonly MediaRepository _media;
    private readonly UrlPreviewConfig _config;
    private readonly LazyHttpClient? _http;
    private readonly OutboundAddressRules _rules;
    private readonly ConcurrentDictionary<string, Lazy<Task<JsonObject>>> _inFlight = new(StringComparer.Ordinal);

    // Fetches at once, server-wide: each holds up to max_spider_size in memory.
    private readonly SemaphoreSlim _fetching = new(4);

    /// <summary>Builds the previewer; without <c>url_preview_enabled</c> it has no HTTP client and answers nothing.</summary>
    public UrlPreviewer(HomeserverServices hs, MediaRepository media)
    {
        _hs = hs;
        _media = media;
        _config = hs.Config.Media.UrlPreviews;
        _rules = new OutboundAddressRules(_config.IpRangeBlacklist, _config.IpRangeWhitelist);
        if (_config.Enabled)
        {
            // No client-wide timeout: each fetch has its own deadline covering redirects and the body.
            _http = new LazyHttpClient(_rules, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Whether previews are switched on.</summary>
    public bool Enabled => _http is not null;

    /// <summary>
    /// The preview of <paramref name="url"/> for time <paramref name="ts"/> (default now): from the cache when a preview
    /// of that time has not expired, else fetched now (rate limited per user, one fetch per URL at a time).
    /// </summary>
    public async Task<JsonObject> PreviewAsync(string url, long? ts, string requester, CancellationToken ct)
    {
        if (_http is null)
        {
            throw MatrixException.NotFound("URL previews are not enabled on this server");
        }

        var uri = Parse(url);
        CheckUrl(uri);
        var now = _hs.NowMs;
        var at = ts ?? now;
        var hash = Convert.ToHexStringLower(Sha256.Hash(Encoding.UTF8.GetBytes(url)));
        if (await _media.Store.GetPreviewAsync(hash, at, ct) is { } cached && cached.ExpiresTs > at && cached.ExpiresTs > now)
        {
            return JsonNode.Parse(cached.Og)!.AsObject();
        }

        _hs.RateLimiter.Take("rc_url_preview", requester);

        // Concurrent requests for one URL share one fetch; it runs to its own deadline, not the first requester's.
        var fetch = _inFlight.GetOrAdd(hash, _ => new Lazy<Task<JsonObject>>(() => FetchAndCacheAsync(url, uri, hash)));
        var og = await fetch.Value.WaitAsync(ct);
        return og.DeepClone().AsObject();
    }

    private async Task<JsonObject> FetchAndCacheAsync(string url, Uri uri, string hash)
    {
        await Task.Yield();
        try
        {
            await _fetching.WaitAsync();
            try
            {
                var (og, imageId) = await BuildAsync(uri);
                var now = _hs.NowMs;
                await _media.Store.AddPreviewAsync(new UrlPreviewRecord
                {
                    UrlHash = hash,
                    FetchedTs = now,
                    Url = url,
                    ExpiresTs = now + CacheMs,
                    Og = og.ToJsonString(),
                    ImageMediaId = imageId,
                }, CancellationToken.None);
                return og;
            }
            finally
            {
                _fetching.Release();
            }
        }
        finally
        {
            _inFlight.TryRemove(hash, out _);
        }
    }

    private async Task<(JsonObject Og, string? ImageId)> BuildAsync(Uri uri)
    {
        var page = await FetchAsync(uri);
        if (ImageHeader.Read(page.Body) is { } header)
        {
            // The URL is an image: it is its own preview.
            return await StoreImageAsync(page, header);
        }

        if (!IsHtml(page.ContentType))
        {
            return (new JsonObject(), null);
        }

        var og = await OpenGraph.ParseAsync(page.Body, page.ContentTypeHeader, page.Url);
        string? imageId = null;
        og.Remove("og:image:width");
        og.Remove("og:image:height");
        og.Remove("og:image:type");
        og.Remove("og:image:secure_url");
        if (og["og:image"]?.GetValue<string>() is { } imageUrl)
        {
            og.Remove("og:image");
            if (Uri.TryCreate(imageUrl, UriKind.Absolute, out var imageUri) && imageUri.Scheme is "http" or "https")
            {
                try
                {
                    var fetched = await FetchAsync(imageUri);
                    if (ImageHeader.Read(fetched.Body) is { } imageHeader)
                    {
                        var (image, mediaId) = await StoreImageAsync(fetched, imageHeader);
                        foreach (var (key, value) in image)
                        {
                            og[key] = value?.DeepClone();
                        }

                        imageId = mediaId;
                    }
                }
                catch (MatrixException)
                {
                    // A page whose image cannot be fetched (blocked, too large, gone) is previewed without it, as in Synapse.
                }
            }
        }

        return (og, imageId);
    }

    private async Task<(JsonObject Og, string MediaId)> StoreImageAsync(Fetched fetched, ImageHeader header)
    {
        var type = header.Format switch
        {
            ImageFormat.Jpeg => "image/jpeg",
            ImageFormat.Png => "image/png",
            ImageFormat.Gif => "image/gif",
            _ => "image/webp",
        };
        var name = Path.GetFileName(fetched.Url.AbsolutePath);
        var mediaId = await _media.StoreAsync(fetched.Body, type, string.IsNullOrEmpty(name) || name.Length > 200 ? null : Uri.UnescapeDataString(name), ImageOwner, CancellationToken.None);
        return (new JsonObject
        {
            ["og:image"] = _media.ContentUri(mediaId),
            ["og:image:type"] = type,
            ["og:image:width"] = header.Width,
            ["og:image:height"] = header.Height,
            ["matrix:image:size"] = fetched.Body.Length,
        }, mediaId);
    }

    private static bool IsHtml(string? contentType) => contentType is "text/html" or "application/xhtml+xml";

    private sealed record Fetched(Uri Url, string? ContentType, string? ContentTypeHeader, byte[] Body);

    /// <summary>GETs a URL within the deadline, following at most <see cref="MaxRedirects"/> redirects, each hop checked again.</summary>
    private async Task<Fetched> FetchAsync(Uri uri)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(_config.TimeoutMs));
        var ct = deadline.Token;
        try
        {
            for (var hop = 0; ; hop++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, uri);
                request.Headers.UserAgent.ParseAdd("Lethe-URL-preview/0.1 (bot)");
                request.Headers.TryAddWithoutValidation("Accept-Language", string.Join(", ", _config.AcceptLanguage));
                request.Headers.Accept.ParseAdd("text/html,application/xhtml+xml,image/*;q=0.9,*/*;q=0.5");
                using var response = await _http!.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
                var status = (int)response.StatusCode;
                if (status is >= 300 and < 400 && response.Headers.Location is { } location)
                {
                    if (hop >= MaxRedirects)
                    {
                        throw MatrixException.Of(502, ErrCode.Unknown, $"The URL redirected more than {MaxRedirects} times");
                    }

                    uri = new Uri(uri, location);
                    if (uri.Scheme is not ("http" or "https"))
                    {
                        throw MatrixException.Of(502, ErrCode.Unknown, "The URL redirected to something other than http or https");
                    }

                    CheckUrl(uri);
                    continue;
                }

                if (status is < 200 or >= 300)
                {
                    throw MatrixException.Of(502, ErrCode.Unknown, $"The URL answered {status}");
                }

                var max = _config.MaxSpiderSize;
                if (response.Content.Headers.ContentLength > max)
                {
                    throw TooLarge(max);
                }

                await using var body = await response.Content.ReadAsStreamAsync(ct);
                var bytes = await ReadBoundedAsync(body, max, ct);
                var contentType = response.Content.Headers.ContentType;
                return new Fetched(uri, contentType?.MediaType?.ToLowerInvariant(), contentType?.ToString(), bytes);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            throw MatrixException.Of(504, ErrCode.Unknown, $"Fetching the URL took longer than {_config.TimeoutMs} ms");
        }
        catch (HttpRequestException e) when (Blocked(e))
        {
            throw MatrixException.Forbidden("IP address blocked: the URL resolves only to addresses URL previews may not reach (url_preview_ip_range_blacklist)");
        }
        catch (HttpRequestException e)
        {
            throw MatrixException.Of(502, ErrCode.Unknown, "Could not fetch the URL: " + (e.HttpRequestError == HttpRequestError.NameResolutionError ? "the host name does not resolve" : "the connection failed"));
        }
        catch (IOException)
        {
            throw MatrixException.Of(502, ErrCode.Unknown, "Could not fetch the URL: the connection failed");
        }
    }

    private static MatrixException TooLarge(long max) => MatrixException.Of(502, ErrCode.TooLarge, $"The response is larger than the {max} bytes this server reads (max_spider_size)");

    private static async Task<byte[]> ReadBoundedAsync(Stream body, long max, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        int n;
        while ((n = await body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + n > max)
            {
                throw TooLarge(max);
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }

    private static bool Blocked(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is OutboundAddressBlockedException)
            {
                return true;
            }
        }

        return false;
    }

    private static Uri Parse(string url)
    {
        if (url.Length > MaxUrlLength)
        {
            throw MatrixException.InvalidParam($"url is longer than {MaxUrlLength} characters");
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || string.IsNullOrEmpty(uri.Host))
        {
            throw MatrixException.InvalidParam("url must be an absolute http or https URL");
        }

        return uri;
    }

    private void CheckUrl(Uri uri)
    {
        foreach (var rule in _config.UrlBlacklist)
        {
            if (rule.Matches(uri))
            {
                throw MatrixException.Forbidden("URL blocked: it matches url_preview_url_blacklist");
            }
        }

        // An address literal is refused here too, before anything is sent (the connect-time check would also refuse it).
        if (IPAddress.TryParse(uri.IdnHost.Trim('[', ']'), out var literal) && !_rules.IsAllowed(literal))
        {
            throw MatrixException.Forbidden("IP address blocked: the address is in url_preview_ip_range_blacklist");
        }
    }

    /// <summary>
    /// The hourly clean-up: deletes expired previews, and preview images older than <see cref="ImageLifetimeMs"/>
    /// (bytes too) that no event ever named and nobody protected; avatars are kept. Returns images deleted.
    /// </summary>
    public async Task<int> ExpireAsync(CancellationToken ct)
    {
        var now = _hs.NowMs;
        await _media.Store.DeleteExpiredPreviewsAsync(now, ct);
        var deleted = 0;
        while (await _media.Store.UnreferencedOwnedBeforeAsync(ImageOwner, now - ImageLifetimeMs, 500, ct) is { Count: > 0 } due)
        {
            var n = await _media.DeleteOrphansAsync(due, ct);
            deleted += n;
            if (n == 0)
            {
                break; // all avatars: nothing more to do this run
            }
        }

        return deleted;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _http?.Dispose();
        _fetching.Dispose();
    }
}
