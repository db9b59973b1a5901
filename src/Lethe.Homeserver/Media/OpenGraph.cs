using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using AngleSharp;
using AngleSharp.Dom;

namespace Lethe.Homeserver.Media;

/// <summary>
/// Reads a page's OpenGraph data with AngleSharp (an HTML5 parser; no scripts run and nothing else is loaded): every
/// <c>og:*</c> meta tag, with Synapse's fallbacks when the page has none of the main ones: <c>&lt;title&gt;</c> (or
/// <c>twitter:title</c>) for <c>og:title</c>, the meta description (or <c>twitter:description</c>) for
/// <c>og:description</c>, <c>twitter:image</c>, <c>&lt;link rel=image_src&gt;</c> or the largest <c>&lt;img&gt;</c> for
/// <c>og:image</c> (made absolute against the page, honouring <c>&lt;base&gt;</c>).
/// </summary>
public static class OpenGraph
{
    private const int MaxTags = 50;
    private const int MaxValueLength = 1000;
    private const int MaxDescriptionLength = 500;

    static OpenGraph()
    {
        // Pages in legacy encodings (windows-1252, Shift_JIS, …): .NET ships them but only registers them on request.
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
    }

    /// <summary>Parses <paramref name="html"/> (decoded by the Content-Type charset, a BOM or the page's meta charset) fetched from <paramref name="url"/>.</summary>
    public static async Task<JsonObject> ParseAsync(byte[] html, string? contentType, Uri url)
    {
        using var context = BrowsingContext.New(AngleSharp.Configuration.Default);
        using var stream = new MemoryStream(html, writable: false);
        using var document = await context.OpenAsync(
            response =>
            {
                response.Content(stream, shouldDispose: false).Address(url);
                if (contentType is not null)
                {
                    response.Header("Content-Type", contentType);
                }
            },
            CancellationToken.None);

        var og = new JsonObject();
        foreach (var meta in document.QuerySelectorAll("meta[content]"))
        {
            // Synapse accepts og: tags under either attribute; pages use both.
            var key = meta.GetAttribute("property") ?? meta.GetAttribute("name");
            if (key is null || !key.StartsWith("og:", StringComparison.Ordinal) || key.Length > 100 || og.ContainsKey(key))
            {
                continue;
            }

            if (og.Count >= MaxTags)
            {
                break;
            }

            og[key] = Clean(meta.GetAttribute("content")!, MaxValueLength);
        }

        if (!og.ContainsKey("og:title") && (Text(document.Title) ?? Meta(document, "twitter:title")) is { } title)
        {
            og["og:title"] = Clean(title, MaxValueLength);
        }

        if (og["og:description"] is { } given)
        {
            og["og:description"] = Clean(given.GetValue<string>(), MaxDescriptionLength);
        }
        else if ((Meta(document, "description") ?? Meta(document, "twitter:description")) is { } description)
        {
            og["og:description"] = Clean(description, MaxDescriptionLength);
        }

        var image = og["og:image"]?.GetValue<string>() ?? Meta(document, "twitter:image") ?? document.QuerySelector("link[rel~=image_src][href]")?.GetAttribute("href") ?? LargestImage(document);
        og.Remove("og:image");
        if (image is not null && Uri.TryCreate(new Uri(document.BaseUri), image.Trim(), out var absolute) && absolute.Scheme is "http" or "https")
        {
            og["og:image"] = absolute.AbsoluteUri;
        }

        return og;
    }

    private static string? Meta(IDocument document, string name)
    {
        foreach (var meta in document.QuerySelectorAll("meta[content]"))
        {
            if (string.Equals(meta.GetAttribute("name") ?? meta.GetAttribute("property"), name, StringComparison.OrdinalIgnoreCase))
            {
                return Text(meta.GetAttribute("content"));
            }
        }

        return null;
    }

    /// <summary>Synapse's choice: the largest image declaring both sides over 10 pixels, else the first image.</summary>
    private static string? LargestImage(IDocument document)
    {
        string? best = null, first = null;
        long bestArea = 0;
        foreach (var img in document.QuerySelectorAll("img[src]"))
        {
            var src = img.GetAttribute("src")!;
            first ??= src;
            if (int.TryParse(img.GetAttribute("width"), NumberStyles.None, CultureInfo.InvariantCulture, out var w)
                && int.TryParse(img.GetAttribute("height"), NumberStyles.None, CultureInfo.InvariantCulture, out var h)
                && w > 10 && h > 10 && (long)w * h > bestArea)
            {
                best = src;
                bestArea = (long)w * h;
            }
        }

        return best ?? first;
    }

    private static string? Text(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    /// <summary>Whitespace collapsed, control characters dropped, cut at <paramref name="max"/> characters (with an ellipsis).</summary>
    private static string Clean(string value, int max)
    {
        var sb = new StringBuilder(Math.Min(value.Length, max + 1));
        var space = false;
        foreach (var c in value)
        {
            if (char.IsWhiteSpace(c))
            {
                space = sb.Length > 0;
                continue;
            }

            if (char.IsControl(c))
            {
                continue;
            }

            if (space)
            {
                sb.Append(' ');
                space = false;
            }

            sb.Append(c);
            if (sb.Length > max)
            {
                break;
            }
        }

        if (sb.Length > max)
        {
            sb.Length = max - 1;
            if (char.IsHighSurrogate(sb[^1]))
            {
                sb.Length--;
            }

            sb.Append('…');
        }

        return sb.ToString();
    }
}
