using System.Buffers.Binary;
using NetVips;

namespace Lethe.Homeserver.Tests.Media;

/// <summary>
/// Real images made and read back with libvips (the server's library, but driven independently here), frame counts
/// read by walking the GIF and WebP containers by hand, and hand-made hostile headers.
/// </summary>
internal static class TestImages
{
    /// <summary>A JPEG of the given size: a gradient, so it is not trivially compressible.</summary>
    public static byte[] Jpeg(int width, int height)
    {
        using var im = Gradient(width, height, 0);
        return im.JpegsaveBuffer(q: 85);
    }

    /// <summary>A PNG of the given size.</summary>
    public static byte[] Png(int width, int height)
    {
        using var im = Gradient(width, height, 0);
        return im.PngsaveBuffer();
    }

    /// <summary>A GIF of the given size (one frame).</summary>
    public static byte[] Gif(int width, int height)
    {
        using var im = Gradient(width, height, 0);
        return im.GifsaveBuffer();
    }

    /// <summary>A WebP of the given size (one frame).</summary>
    public static byte[] WebP(int width, int height)
    {
        using var im = Gradient(width, height, 0);
        return im.WebpsaveBuffer(q: 90);
    }

    /// <summary>An animated GIF of <paramref name="frames"/> frames, each different, 100 ms apart.</summary>
    public static byte[] AnimatedGif(int width, int height, int frames)
    {
        using var strip = Animation(width, height, frames);
        return strip.GifsaveBuffer();
    }

    /// <summary>An animated WebP of <paramref name="frames"/> frames.</summary>
    public static byte[] AnimatedWebP(int width, int height, int frames)
    {
        using var strip = Animation(width, height, frames);
        return strip.WebpsaveBuffer(q: 90);
    }

    /// <summary>Decodes an image and returns the size of one frame, or null when it is not a decodable image of that type.</summary>
    public static (int Width, int Height)? Decode(byte[] data, string contentType)
    {
        var loader = contentType switch
        {
            "image/jpeg" => "Jpeg",
            "image/png" => "Png",
            "image/gif" => "Gif",
            "image/webp" => "Webp",
            _ => null,
        };
        try
        {
            // libvips names its loader classes after the format, e.g. VipsForeignLoadJpegBuffer, VipsForeignLoadNsgifBuffer.
            if (loader is null || Image.FindLoadBuffer(data) is not { } found || !found.Contains(loader, StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }

            using var im = Image.NewFromBuffer(data, contentType is "image/gif" or "image/webp" ? "n=-1" : "");
            using var pixels = im.Copy();
            _ = pixels.Avg(); // decode every pixel, so a truncated file fails here
            return (im.Width, im.PageHeight);
        }
        catch (VipsException)
        {
            return null;
        }
    }

    /// <summary>Frames in a GIF: its image descriptors, counted by walking the blocks (header, colour table, extensions, images).</summary>
    public static int GifFrames(byte[] d)
    {
        Assert.True(d.AsSpan().StartsWith("GIF89a"u8) || d.AsSpan().StartsWith("GIF87a"u8), "not a GIF");
        var p = 13 + ((d[10] & 0x80) != 0 ? 3 * (1 << ((d[10] & 7) + 1)) : 0);
        var frames = 0;
        while (true)
        {
            switch (d[p])
            {
                case 0x21:
                    p = SkipSubBlocks(d, p + 2);
                    break;
                case 0x2C:
                    var flags = d[p + 9];
                    p += 10 + ((flags & 0x80) != 0 ? 3 * (1 << ((flags & 7) + 1)) : 0);
                    p = SkipSubBlocks(d, p + 1);
                    frames++;
                    break;
                case 0x3B:
                    return frames;
                default:
                    throw new InvalidOperationException($"unexpected GIF block 0x{d[p]:X2} at {p}");
            }
        }
    }

    /// <summary>Frames in a WebP: its ANMF chunks (an animated file), or 1 for a still.</summary>
    public static int WebPFrames(byte[] d)
    {
        Assert.True(d.Length > 12 && d.AsSpan(0, 4).SequenceEqual("RIFF"u8) && d.AsSpan(8, 4).SequenceEqual("WEBP"u8), "not a WebP");
        var frames = 0;
        for (var p = 12; p + 8 <= d.Length;)
        {
            var size = (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(p + 4));
            if (d.AsSpan(p, 4).SequenceEqual("ANMF"u8))
            {
                frames++;
            }

            p += 8 + size + (size & 1);
        }

        return Math.Max(frames, 1);
    }

    private static int SkipSubBlocks(byte[] d, int p)
    {
        while (d[p] != 0)
        {
            p += 1 + d[p];
        }

        return p + 1;
    }

    private static Image Gradient(int width, int height, int shift)
    {
        var xy = Image.Xyz(width, height).Bandsplit();
        var rgb = (xy[0] * (255.0 / width) + shift).Bandjoin(xy[1] * (255.0 / height), xy[0] + xy[1]) % 256;
        return rgb.Cast(Enums.BandFormat.Uchar).Copy(interpretation: Enums.Interpretation.Srgb);
    }

    private static Image Animation(int width, int height, int frames)
    {
        var pages = new Image[frames];
        for (var i = 0; i < frames; i++)
        {
            pages[i] = Gradient(width, height, i * 255 / frames);
        }

        using var strip = Image.Arrayjoin(pages, across: 1);
        foreach (var page in pages)
        {
            page.Dispose();
        }

        return strip.Mutate(m =>
        {
            m.Set(GValue.GIntType, "page-height", height);
            m.Set(GValue.ArrayIntType, "delay", Enumerable.Repeat(100, frames).ToArray());
            m.Set(GValue.GIntType, "loop", 0);
        });
    }

    /// <summary>
    /// A well-formed PNG whose header claims <paramref name="width"/> × <paramref name="height"/> but holds almost no data:
    /// a decoder that trusted it would allocate width × height × 4 bytes before noticing.
    /// </summary>
    public static byte[] PngBomb(uint width, uint height)
    {
        using var ms = new MemoryStream();
        ms.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 6; // RGBA
        Chunk(ms, "IHDR", ihdr);
        Chunk(ms, "IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    /// <summary>A JPEG start whose frame header claims a huge size.</summary>
    public static byte[] JpegBomb(ushort width, ushort height)
    {
        var real = Jpeg(8, 8);
        // Rewrite the SOF0 frame size of a real JPEG.
        for (var p = 2; p + 9 < real.Length;)
        {
            var marker = real[p + 1];
            var length = BinaryPrimitives.ReadUInt16BigEndian(real.AsSpan(p + 2));
            if (marker is 0xC0 or 0xC2)
            {
                BinaryPrimitives.WriteUInt16BigEndian(real.AsSpan(p + 5), height);
                BinaryPrimitives.WriteUInt16BigEndian(real.AsSpan(p + 7), width);
                return real;
            }

            p += 2 + length;
        }

        throw new InvalidOperationException("no SOF in the test JPEG");
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(len, (uint)data.Length);
        s.Write(len);
        var typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
        s.Write(typeBytes);
        s.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(len, Crc32(typeBytes, data));
        s.Write(len);
    }

    private static uint Crc32(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var part in new[] { a.ToArray(), b.ToArray() })
        {
            foreach (var x in part)
            {
                crc ^= x;
                for (var k = 0; k < 8; k++)
                {
                    crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
                }
            }
        }

        return crc ^ 0xFFFFFFFFu;
    }
}
