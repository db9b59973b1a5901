using System.Runtime.InteropServices;

namespace Lethe.Homeserver.Media;

/// <summary>A thumbnail: the encoded bytes, their content type and the dimensions they came out at.</summary>
public sealed record Thumbnail(byte[] Bytes, string ContentType, int Width, int Height);

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
/// Scales and crops images with libgd (Debian's libgd3, which wraps libjpeg, libpng, libwebp and its own GIF codec),
/// called through P/Invoke. Dimensions are read from the header first (<see cref="ImageHeader"/>) and images over the
/// pixel limit are never handed to the decoder. libgd decodes only the first frame of an animated GIF and cannot
/// decode animated WebP, so "animated" thumbnails are stills of the first frame (GIF) or refused (animated WebP).
/// </summary>
public static class Thumbnailer
{
    private const int JpegQuality = 80;

    /// <summary>
    /// Makes a thumbnail of <paramref name="image"/> for a box of <paramref name="width"/> × <paramref name="height"/>:
    /// <c>crop</c> fills the box exactly (centre crop), <c>scale</c> fits inside it keeping the aspect ratio and never
    /// enlarges. JPEG and WebP sources give JPEG; PNG and GIF give PNG (keeping transparency), as Synapse does.
    /// </summary>
    public static Thumbnail Make(byte[] image, int width, int height, string method, long maxPixels)
    {
        var header = ImageHeader.Read(image) ?? throw new ThumbnailException(ThumbnailFailure.Unsupported, "Not an image Lethe can thumbnail (JPEG, PNG, GIF or WebP)");
        if (header.Pixels > maxPixels)
        {
            throw new ThumbnailException(ThumbnailFailure.TooManyPixels, $"The image is {header.Width}×{header.Height}, more than the {maxPixels} pixels this server decodes");
        }

        if (header is { Format: ImageFormat.WebP, Animated: true })
        {
            throw new ThumbnailException(ThumbnailFailure.Unsupported, "Animated WebP images cannot be thumbnailed");
        }

        var source = Decode(image, header.Format);
        if (source == IntPtr.Zero)
        {
            throw new ThumbnailException(ThumbnailFailure.Corrupt, "The image could not be decoded");
        }

        try
        {
            var sw = Marshal.ReadInt32(source, SxOffset);
            var sh = Marshal.ReadInt32(source, SxOffset + 4);
            if (sw != header.Width || sh != header.Height)
            {
                // The decoder saw other dimensions than the header claimed; trust neither.
                throw new ThumbnailException(ThumbnailFailure.Corrupt, "The image's dimensions are inconsistent");
            }

            int tw, th, sx = 0, sy = 0, cw = sw, ch = sh;
            if (method == "crop")
            {
                (tw, th) = (width, height);
                // The largest region of the source with the box's aspect ratio, centred.
                if ((long)sw * height > (long)sh * width)
                {
                    cw = (int)Math.Max(1, (long)sh * width / height);
                    sx = (sw - cw) / 2;
                }
                else
                {
                    ch = (int)Math.Max(1, (long)sw * height / width);
                    sy = (sh - ch) / 2;
                }
            }
            else
            {
                (tw, th) = Fit(sw, sh, width, height);
            }

            var png = header.Format is ImageFormat.Png or ImageFormat.Gif;
            var target = gdImageCreateTrueColor(tw, th);
            if (target == IntPtr.Zero)
            {
                throw new ThumbnailException(ThumbnailFailure.TooManyPixels, "The thumbnail could not be allocated");
            }

            try
            {
                if (png)
                {
                    gdImageAlphaBlending(target, 0);
                    gdImageSaveAlpha(target, 1);
                }

                gdImageCopyResampled(target, source, 0, 0, sx, sy, tw, th, cw, ch);
                return new Thumbnail(Encode(target, png), png ? "image/png" : "image/jpeg", tw, th);
            }
            finally
            {
                gdImageDestroy(target);
            }
        }
        finally
        {
            gdImageDestroy(source);
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

    private static IntPtr Decode(byte[] image, ImageFormat format) => format switch
    {
        ImageFormat.Jpeg => gdImageCreateFromJpegPtr(image.Length, image),
        ImageFormat.Png => gdImageCreateFromPngPtr(image.Length, image),
        ImageFormat.Gif => gdImageCreateFromGifPtr(image.Length, image),
        _ => gdImageCreateFromWebpPtr(image.Length, image),
    };

    private static byte[] Encode(IntPtr image, bool png)
    {
        var data = png ? gdImagePngPtr(image, out var size) : gdImageJpegPtr(image, out size, JpegQuality);
        if (data == IntPtr.Zero || size <= 0)
        {
            throw new ThumbnailException(ThumbnailFailure.Corrupt, "The thumbnail could not be encoded");
        }

        try
        {
            var bytes = new byte[size];
            Marshal.Copy(data, bytes, 0, size);
            return bytes;
        }
        finally
        {
            gdFree(data);
        }
    }

    /// <summary>
    /// Whether libgd can be loaded on this machine. The probe unloads it again: libgd pulls in some twenty codec
    /// libraries (HEIF, AVIF, AV1, x265...) worth ~5 MiB of resident memory, which a server that never makes a
    /// thumbnail should not carry. The first thumbnail loads it for good.
    /// </summary>
    public static bool Available
    {
        get
        {
            if (!NativeLibrary.TryLoad(Lib, typeof(Thumbnailer).Assembly, null, out var handle))
            {
                return false;
            }

            NativeLibrary.Free(handle);
            return true;
        }
    }

    // struct gdImage starts with `unsigned char **pixels; int sx; int sy;`.
    private static readonly int SxOffset = IntPtr.Size;

    private const string Lib = "libgd.so.3";

    [DllImport(Lib)]
    private static extern IntPtr gdImageCreateFromJpegPtr(int size, byte[] data);

    [DllImport(Lib)]
    private static extern IntPtr gdImageCreateFromPngPtr(int size, byte[] data);

    [DllImport(Lib)]
    private static extern IntPtr gdImageCreateFromGifPtr(int size, byte[] data);

    [DllImport(Lib)]
    private static extern IntPtr gdImageCreateFromWebpPtr(int size, byte[] data);

    [DllImport(Lib)]
    private static extern IntPtr gdImageCreateTrueColor(int sx, int sy);

    [DllImport(Lib)]
    private static extern void gdImageCopyResampled(IntPtr dst, IntPtr src, int dstX, int dstY, int srcX, int srcY, int dstW, int dstH, int srcW, int srcH);

    [DllImport(Lib)]
    private static extern void gdImageAlphaBlending(IntPtr image, int blending);

    [DllImport(Lib)]
    private static extern void gdImageSaveAlpha(IntPtr image, int save);

    [DllImport(Lib)]
    private static extern IntPtr gdImageJpegPtr(IntPtr image, out int size, int quality);

    [DllImport(Lib)]
    private static extern IntPtr gdImagePngPtr(IntPtr image, out int size);

    [DllImport(Lib)]
    private static extern void gdImageDestroy(IntPtr image);

    [DllImport(Lib)]
    private static extern void gdFree(IntPtr data);
}
