using System.Buffers.Binary;

namespace Lethe.Homeserver.Media;

/// <summary>Image formats Lethe can thumbnail.</summary>
public enum ImageFormat
{
    /// <summary>JPEG.</summary>
    Jpeg,

    /// <summary>PNG.</summary>
    Png,

    /// <summary>GIF (animated too).</summary>
    Gif,

    /// <summary>WebP (animated too).</summary>
    WebP,
}

/// <summary>
/// An image's format and dimensions read from its header bytes alone, before any decoder sees it, so an image whose
/// pixel count would blow up memory (a decompression bomb) is refused without being decoded.
/// </summary>
public readonly record struct ImageHeader(ImageFormat Format, int Width, int Height, bool Animated)
{
    private static ReadOnlySpan<byte> PngSignature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Width × height.</summary>
    public long Pixels => (long)Width * Height;

    /// <summary>Reads the header, or null when the bytes are not a well-formed start of a supported image.</summary>
    public static ImageHeader? Read(ReadOnlySpan<byte> data)
    {
        if (data.StartsWith(PngSignature))
        {
            return Png(data);
        }

        if (data.Length > 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        {
            return Jpeg(data);
        }

        if (data.StartsWith("GIF87a"u8) || data.StartsWith("GIF89a"u8))
        {
            return Gif(data);
        }

        if (data.Length >= 16 && data.StartsWith("RIFF"u8) && data[8..12].SequenceEqual("WEBP"u8))
        {
            return WebP(data);
        }

        return null;
    }

    /// <summary>Whether the bytes start like a supported image (even if the header is not all there).</summary>
    public static bool HasImageSignature(ReadOnlySpan<byte> data) =>
        data.StartsWith(PngSignature) || (data.Length > 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        || data.StartsWith("GIF8"u8) || (data.Length >= 12 && data.StartsWith("RIFF"u8) && data[8..12].SequenceEqual("WEBP"u8));

    private static ImageHeader? Png(ReadOnlySpan<byte> d)
    {
        // The IHDR chunk must come first: length 13, type, then width and height as big-endian 32-bit integers.
        if (d.Length < 24 || !d[12..16].SequenceEqual("IHDR"u8))
        {
            return null;
        }

        var w = BinaryPrimitives.ReadUInt32BigEndian(d[16..]);
        var h = BinaryPrimitives.ReadUInt32BigEndian(d[20..]);
        // An APNG announces itself with an acTL chunk before the image data.
        var animated = d.IndexOf("acTL"u8) is var i and >= 0 && (d.IndexOf("IDAT"u8) is var j && (j < 0 || i < j));
        return Valid(ImageFormat.Png, w, h, animated);
    }

    private static ImageHeader? Jpeg(ReadOnlySpan<byte> d)
    {
        var p = 2;
        while (p + 4 <= d.Length)
        {
            if (d[p] != 0xFF)
            {
                return null;
            }

            var marker = d[p + 1];
            if (marker == 0xFF)
            {
                p++; // fill byte
                continue;
            }

            if (marker is 0x01 or (>= 0xD0 and <= 0xD7))
            {
                p += 2;
                continue;
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(d[(p + 2)..]);
            if (length < 2)
            {
                return null;
            }

            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size: precision, height, width.
            if (marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC)
            {
                if (p + 9 > d.Length)
                {
                    return null;
                }

                var h = BinaryPrimitives.ReadUInt16BigEndian(d[(p + 5)..]);
                var w = BinaryPrimitives.ReadUInt16BigEndian(d[(p + 7)..]);
                return Valid(ImageFormat.Jpeg, w, h, false);
            }

            if (marker is 0xDA or 0xD9)
            {
                return null; // image data (or the end) before any frame header
            }

            p += 2 + length;
        }

        return null;
    }

    private static ImageHeader? Gif(ReadOnlySpan<byte> d)
    {
        if (d.Length < 13)
        {
            return null;
        }

        uint w = BinaryPrimitives.ReadUInt16LittleEndian(d[6..]);
        uint h = BinaryPrimitives.ReadUInt16LittleEndian(d[8..]);
        var p = 13 + ((d[10] & 0x80) != 0 ? 3 * (1 << ((d[10] & 7) + 1)) : 0);
        var frames = 0;

        // Walk the blocks: each frame's own size counts too, since decoders allocate by it.
        while (p < d.Length && frames < 2)
        {
            switch (d[p])
            {
                case 0x21: // extension: label, then sub-blocks
                    p = SkipSubBlocks(d, p + 2);
                    break;
                case 0x2C: // image descriptor
                    if (p + 10 > d.Length)
                    {
                        return null;
                    }

                    w = Math.Max(w, (uint)BinaryPrimitives.ReadUInt16LittleEndian(d[(p + 1)..]) + BinaryPrimitives.ReadUInt16LittleEndian(d[(p + 5)..]));
                    h = Math.Max(h, (uint)BinaryPrimitives.ReadUInt16LittleEndian(d[(p + 3)..]) + BinaryPrimitives.ReadUInt16LittleEndian(d[(p + 7)..]));
                    var flags = d[p + 9];
                    p += 10 + ((flags & 0x80) != 0 ? 3 * (1 << ((flags & 7) + 1)) : 0);
                    p = SkipSubBlocks(d, p + 1); // LZW minimum code size, then the data
                    frames++;
                    break;
                default:
                    p = d.Length;
                    break;
            }

            if (p < 0)
            {
                return null;
            }
        }

        return frames == 0 ? null : Valid(ImageFormat.Gif, w, h, frames > 1);
    }

    private static int SkipSubBlocks(ReadOnlySpan<byte> d, int p)
    {
        while (p < d.Length)
        {
            var n = d[p];
            p += 1 + n;
            if (n == 0)
            {
                return p;
            }
        }

        return -1;
    }

    private static ImageHeader? WebP(ReadOnlySpan<byte> d)
    {
        var chunk = d[12..16];
        var body = d[20..];
        if (chunk.SequenceEqual("VP8 "u8) && body.Length >= 10 && body[3] == 0x9D && body[4] == 0x01 && body[5] == 0x2A)
        {
            return Valid(ImageFormat.WebP, BinaryPrimitives.ReadUInt16LittleEndian(body[6..]) & 0x3FFFu, BinaryPrimitives.ReadUInt16LittleEndian(body[8..]) & 0x3FFFu, false);
        }

        if (chunk.SequenceEqual("VP8L"u8) && body.Length >= 5 && body[0] == 0x2F)
        {
            var bits = BinaryPrimitives.ReadUInt32LittleEndian(body[1..]);
            return Valid(ImageFormat.WebP, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, false);
        }

        if (chunk.SequenceEqual("VP8X"u8) && body.Length >= 10)
        {
            var w = (uint)(body[4] | (body[5] << 8) | (body[6] << 16)) + 1;
            var h = (uint)(body[7] | (body[8] << 8) | (body[9] << 16)) + 1;
            return Valid(ImageFormat.WebP, w, h, (body[0] & 0x02) != 0);
        }

        return null;
    }

    private static ImageHeader? Valid(ImageFormat format, uint w, uint h, bool animated) =>
        w is 0 or > int.MaxValue || h is 0 or > int.MaxValue ? null : new ImageHeader(format, (int)w, (int)h, animated);
}
