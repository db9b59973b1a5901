using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Media;

namespace Lethe.Homeserver.Tests.Configuration;

/// <summary>The media repository's keys, in Synapse's format.</summary>
public class MediaConfigTests
{
    private static HomeserverConfig Load(string yaml) => ConfigLoader.Load("server_name: example.org\n" + yaml, "/etc/lethe");

    [Fact]
    public void DefaultsAreSynapsesAndPrivacySafe()
    {
        var config = Load("");
        Assert.True(config.Media.EnableAuthenticatedMedia);
        Assert.Equal(32L * 1024 * 1024, config.Media.MaxImagePixels);
        Assert.False(config.Media.DynamicThumbnails);
        Assert.Equal(MediaConfig.DefaultThumbnailSizes, config.Media.ThumbnailSizes);
        Assert.Equal(50L * 1024 * 1024, config.MaxUploadSize);
        Assert.Null(config.Media.LocalMediaLifetime);
        Assert.Empty(config.Warnings);
    }

    [Fact]
    public void SynapseMediaKeysAreRead()
    {
        var config = Load("""
            enable_authenticated_media: false
            max_image_pixels: 16M
            dynamic_thumbnails: true
            thumbnail_sizes:
              - width: 64
                height: 64
                method: crop
              - width: 1024
                height: 768
                method: scale
            media_upload_limits:
              - time_period: 1h
                max_size: 100M
            max_pending_media_uploads: 3
            unused_expiration_time: 10m
            media_retention:
              local_media_lifetime: 90d
            url_preview_enabled: false
            url_preview_ip_range_blacklist: ['127.0.0.0/8']

            """);
        Assert.False(config.Media.EnableAuthenticatedMedia);
        Assert.Equal(16L * 1024 * 1024, config.Media.MaxImagePixels);
        Assert.True(config.Media.DynamicThumbnails);
        Assert.Equal([new ThumbnailSize(64, 64, "crop"), new ThumbnailSize(1024, 768, "scale")], config.Media.ThumbnailSizes);
        Assert.Equal([new MediaUploadLimit(3_600_000, 100L * 1024 * 1024)], config.Media.UploadLimits);
        Assert.Equal(3, config.Media.MaxPendingMediaUploads);
        Assert.Equal(600_000, config.Media.UnusedExpirationTime);
        Assert.Equal(90L * 86_400_000, config.Media.LocalMediaLifetime);
        Assert.Empty(config.Warnings);
    }

    [Theory]
    [InlineData("url_preview_enabled: true\n", "url_preview_ip_range_blacklist")]
    [InlineData("url_preview_enabled: true\nurl_preview_ip_range_blacklist: ['not-a-range']\n", "url_preview_ip_range_blacklist")]
    [InlineData("thumbnail_sizes:\n  - {width: 10, height: 10, method: stretch}\n", "thumbnail_sizes[0].method")]
    [InlineData("thumbnail_sizes:\n  - {width: 10}\n", "thumbnail_sizes[0].width")]
    [InlineData("max_image_pixels: lots\n", "max_image_pixels")]
    [InlineData("media_upload_limits:\n  - {max_size: 1M}\n", "media_upload_limits[0].time_period")]
    public void BadMediaSettingsFailAtStartNamingTheKey(string yaml, string key)
    {
        var e = Assert.Throws<ConfigException>(() => Load(yaml));
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UrlPreviewKeysAreReadInSynapsesFormat()
    {
        var config = Load("""
            url_preview_enabled: true
            url_preview_ip_range_blacklist: ['127.0.0.0/8', '10.0.0.0/8', '::1']
            url_preview_ip_range_whitelist: ['10.1.2.3']
            url_preview_url_blacklist:
              - username: '*'
              - netloc: 'google.com'
              - netloc: '*.google.com'
              - scheme: 'http'
              - scheme: 'https'
                netloc: 'www.acme.com'
                path: '/foo'
              - netloc: '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$'
            max_spider_size: 2M
            url_preview_timeout: 5s
            url_preview_accept_language: ['en-GB', 'en;q=0.9', '*;q=0.5']

            """);
        var previews = config.Media.UrlPreviews;
        Assert.True(previews.Enabled);
        Assert.Equal(3, previews.IpRangeBlacklist.Count);
        Assert.True(previews.IpRangeWhitelist[0].Contains(System.Net.IPAddress.Parse("10.1.2.3")));
        Assert.Equal(2L * 1024 * 1024, previews.MaxSpiderSize);
        Assert.Equal(5000, previews.TimeoutMs);
        Assert.Equal(["en-GB", "en;q=0.9", "*;q=0.5"], previews.AcceptLanguage);
        Assert.Empty(config.Warnings);

        // Synapse's documented examples.
        bool Blocked(string url) => previews.UrlBlacklist.Any(r => r.Matches(new Uri(url)));
        Assert.True(Blocked("https://user:pass@example.org/"));
        Assert.True(Blocked("https://google.com/search"));
        Assert.True(Blocked("https://mail.google.com/"));
        Assert.False(Blocked("https://notgoogle.com/"));
        Assert.True(Blocked("http://example.org/"));
        Assert.True(Blocked("https://www.acme.com/foo"));
        Assert.False(Blocked("https://www.acme.com/foo/bar"));
        Assert.True(Blocked("https://192.168.1.1/"));
        Assert.False(Blocked("https://example.org/"));

        var defaults = Load("").Media.UrlPreviews;
        Assert.False(defaults.Enabled);
        Assert.Equal(10L * 1024 * 1024, defaults.MaxSpiderSize);
        Assert.Equal(["en"], defaults.AcceptLanguage);
    }

    [Theory]
    [InlineData("url_preview_url_blacklist:\n  - hostnam: 'x'\n", "url_preview_url_blacklist[0]")]
    [InlineData("url_preview_url_blacklist:\n  - netloc: '^(unclosed'\n", "url_preview_url_blacklist[0]")]
    [InlineData("url_preview_accept_language: ['en\\r\\nX-Evil: 1']\n", "url_preview_accept_language[0]")]
    [InlineData("max_spider_size: 0\n", "max_spider_size")]
    [InlineData("url_preview_timeout: 10m\n", "url_preview_timeout")]
    [InlineData("url_preview_ip_range_whitelist: ['nope']\n", "url_preview_ip_range_whitelist[0]")]
    public void BadUrlPreviewSettingsFailAtStartNamingTheKey(string yaml, string key)
    {
        var e = Assert.Throws<ConfigException>(() => Load(yaml));
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(20, 20, "crop", 32, 32, "crop")]
    [InlineData(50, 50, "crop", 96, 96, "crop")]
    [InlineData(500, 500, "crop", 96, 96, "crop")] // no crop size that large: the largest crop size
    [InlineData(300, 200, "scale", 320, 240, "scale")]
    [InlineData(640, 480, "scale", 640, 480, "scale")]
    [InlineData(2000, 2000, "scale", 800, 600, "scale")]
    public void WithoutDynamicThumbnailsTheNearestConfiguredSizeIsServed(int w, int h, string method, int ew, int eh, string em)
    {
        Assert.Equal(new ThumbnailSize(ew, eh, em), MediaRepository.ChooseSize(new MediaConfig(), w, h, method));
        Assert.Equal(new ThumbnailSize(w, h, method), MediaRepository.ChooseSize(new MediaConfig { DynamicThumbnails = true }, w, h, method));
    }
}
