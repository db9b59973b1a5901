using NetVips;

namespace Lethe.Homeserver.Media;

/// <summary>A thumbnail: the encoded bytes, their content type, the dimensions they came out at (of one frame) and how many frames.</summary>
public sealed record Thumbnail(byte[] Bytes, string ContentType, int Width, int Height, int Frames = 1);

/// <summary>Why an image could not be thumbnailed.</summary>
public enum ThumbnailFailure
{
    /// <summary>Not an image format Lethe can decode.</summary>
    Unsupported,

    /// <summary>More pixels than <c>max_image_pixels</c>: refused before decoding.</summary>
    TooManyPixels,

    /// <summary>The decoder rejected the bytes.</summary>
    Corrupt,
}

/// <summary>Thrown when an image cannot be thumbnailed; <see cref="Failure"/> says why.</summary>
public sealed class ThumbnailException(ThumbnailFailure failure, string message) : Exception(message)
{
    /// <summary>Why.</summary>
    public ThumbnailFailure Failure { get; } = failure;
}

/// <summary>
/// Scales and crops images with libvips (through NetVips; the native library ships in the NetVips.Native.linux-x64
/// package). Format and dimensions are read from the header first (<see cref="ImageHeader"/>), so only JPEG, PNG,
/// GIF and WebP ever reach libvips and images over the pixel limit are never decoded. Animated GIF and WebP keep their
/// animation when asked (<c>animated=true</c>) as long as frames × pixels stays within the limit.
/// </summary>
public static class Thumbnailer
{
    private const int Quality = 80;

    private static readonly Lazy<bool> Initialised = new(Initialise);

    /// <summary>
    /// Makes a thumbnail of <paramref name="image"/> for a box of <paramref name="width"/> × <paramref name="height"/>:
    /// <c>crop</c> fills the box exactly (centre crop), <c>scale</c> fits inside it keeping the aspect ratio and never
    /// enlarges. JPEG and WebP sources give JPEG; PNG and GIF give PNG (keeping transparency), as Synapse does. With
    /// <paramref name="animated"/> an animated GIF gives an animated GIF and an animated WebP an animated WebP; a still
    /// source gives a still whatever was asked. No metadata (EXIF, GPS, ICC, XMP) is copied into a thumbnail.
    /// </summary>
    public static Thumbnail Make(byte[] image, int width, int height, string method, bool animated, long maxPixels)
    {
        var header = ImageHeader.Read(image) ?? throw new ThumbnailException(ThumbnailFailure.Unsupported, "Not an image Lethe can thumbnail (JPEG, PNG, GIF or WebP)");
        if (header.Pixels > maxPixels)
        {
            throw new ThumbnailException(ThumbnailFailure.TooManyPixels, $"The image is {header.Width}×{header.Height}, more than the {maxPixels} pixels this server decodes");
        }

        _ = Initialised.Value;
        try
        {
            // libvips animates GIF and WebP; an animated PNG is thumbnailed as its first frame.
            var multi = animated && header.Animated && header.Format is ImageFormat.Gif or ImageFormat.WebP;
            var frames = 1;
            int sw, sh;
            bool rotated;

            // Only the header is read here (libvips loads lazily): the frame count, the decoder's idea of the size, the EXIF orientation.
            using (var probe = Image.NewFromBuffer(image, multi ? "n=-1" : "", failOn: Enums.FailOn.Error))
            {
                sw = probe.Width;
                sh = probe.PageHeight;
                if (sw > header.Width || sh > header.Height)
                {
                    // The decoder would allocate more than the header we checked promised; trust neither.
                    throw new ThumbnailException(ThumbnailFailure.Corrupt, "The image's dimensions are inconsistent");
                }

                if (multi && probe.Contains("n-pages"))
                {
                    // Every frame is decoded: bound frames × pixels by the same limit, else fall back to a still of the first frame.
                    var pages = (int)probe.Get("n-pages");
                    frames = pages > 1 && (long)pages * sw * sh <= maxPixels ? pages : 1;
                }

                rotated = probe.Contains("orientation") && (int)probe.Get("orientation") is >= 5 and <= 8;
            }

            if (rotated)
            {
                // libvips applies the EXIF orientation, so the box is fitted to the image as it is shown.
                (sw, sh) = (sh, sw);
            }

            var crop = method == "crop";
            using var thumb = frames > 1 && crop ? CropFrames(image, sw, sh, width, height, frames) : Scale(image, sw, sh, width, height, crop, frames);
            var outFrames = frames > 1 && thumb.Contains("n-pages") ? (int)thumb.Get("n-pages") : 1;
            if (frames > 1)
            {
                return header.Format == ImageFormat.Gif
                    ? new Thumbnail(thumb.GifsaveBuffer(keep: Enums.ForeignKeep.None), "image/gif", thumb.Width, thumb.PageHeight, outFrames)
                    : new Thumbnail(thumb.WebpsaveBuffer(q: Quality, keep: Enums.ForeignKeep.None), "image/webp", thumb.Width, thumb.PageHeight, outFrames);
            }

            if (header.Format is ImageFormat.Png or ImageFormat.Gif)
            {
                return new Thumbnail(thumb.PngsaveBuffer(keep: Enums.ForeignKeep.None), "image/png", thumb.Width, thumb.Height);
            }

            // JPEG has no alpha: put transparent WebP on white rather than libvips's default black.
            using var opaque = thumb.HasAlpha() ? thumb.Flatten(background: [255, 255, 255]) : thumb.Copy();
            return new Thumbnail(opaque.JpegsaveBuffer(q: Quality, keep: Enums.ForeignKeep.None), "image/jpeg", opaque.Width, opaque.Height);
        }
        catch (VipsException e)
        {
            throw new ThumbnailException(ThumbnailFailure.Corrupt, "The image could not be decoded: " + FirstLine(e.Message));
        }
    }

    private static Image Scale(byte[] image, int sw, int sh, int width, int height, bool crop, int frames)
    {
        var (tw, th) = crop ? (width, height) : Fit(sw, sh, width, height);
        return Image.ThumbnailBuffer(
            image,
            tw,
            frames > 1 ? "n=-1" : "",
            height: th,
            size: crop ? Enums.Size.Both : Enums.Size.Force,
            crop: crop ? Enums.Interesting.Centre : null,
            failOn: Enums.FailOn.Error);
    }

    /// <summary>libvips crops only the first frame of an animation: scale every frame to cover the box, then crop each one.</summary>
    private static Image CropFrames(byte[] image, int sw, int sh, int width, int height, int frames)
    {
        // The smallest size with the source's aspect ratio that covers the box.
        int cw, ch;
        if ((long)width * sh > (long)height * sw)
        {
            cw = width;
            ch = (int)Math.Max(height, ((long)width * sh + sw - 1) / sw);
        }
        else
        {
            ch = height;
            cw = (int)Math.Max(width, ((long)height * sw + sh - 1) / sh);
        }

        using var covered = Image.ThumbnailBuffer(image, cw, "n=-1", height: ch, size: Enums.Size.Force, failOn: Enums.FailOn.Error);
        var pages = new Image[frames];
        try
        {
            for (var i = 0; i < frames; i++)
            {
                pages[i] = covered.Crop((cw - width) / 2, (i * ch) + ((ch - height) / 2), width, height);
            }

            using var strip = Image.Arrayjoin(pages, across: 1);
            return strip.Mutate(m =>
            {
                m.Set(GValue.GIntType, "page-height", height);
                m.Set(GValue.GIntType, "n-pages", frames);
            });
        }
        finally
        {
            foreach (var page in pages)
            {
                page?.Dispose();
            }
        }
    }

    /// <summary>The size that fits <paramref name="sw"/> × <paramref name="sh"/> inside the box keeping its aspect ratio, never larger than the source (Synapse's rule).</summary>
    public static (int Width, int Height) Fit(int sw, int sh, int width, int height)
    {
        int tw, th;
        if ((long)width * sh < (long)height * sw)
        {
            tw = width;
            th = (int)Math.Max(1, (long)width * sh / sw);
        }
        else
        {
            tw = (int)Math.Max(1, (long)height * sw / sh);
            th = height;
        }

        return (Math.Min(sw, tw), Math.Min(sh, th));
    }

    /// <summary>
    /// Whether the bundled libvips is there for this platform, checked without loading it: loading maps ~6.5 MiB that
    /// a server which never makes a thumbnail should not carry (and costs start-up time). The first thumbnail loads it.
    /// </summary>
    public static bool Installed =>
        File.Exists(Path.Combine(AppContext.BaseDirectory, "runtimes", System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier, "native", "libvips.so.42"))
        || File.Exists(Path.Combine(AppContext.BaseDirectory, "libvips.so.42"));

    /// <summary>Whether libvips can be loaded on this machine (the bundled native library is for linux-x64).</summary>
    public static bool Available
    {
        get
        {
            try
            {
                return Initialised.Value;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException or BadImageFormatException)
            {
                return false;
            }
        }
    }

    private static bool Initialise()
    {
        // No operation cache: it would keep decoded pixels of users' images in memory after the request.
        Cache.Max = 0;
        Cache.MaxMem = 0;
        Cache.MaxFiles = 0;

        // One thread per thumbnail: MediaRepository already runs one image per core at a time.
        NetVips.NetVips.Concurrency = 1;

        // Refuse libvips's loaders that are not meant for untrusted input (ImageHeader already admits only four formats).
        NetVips.NetVips.BlockUntrusted = true;
        return true;
    }

    private static string FirstLine(string message)
    {
        var line = message.Split('\n', 2)[0].Trim();
        return line.Length > 200 ? line[..200] : line;
    }
}
