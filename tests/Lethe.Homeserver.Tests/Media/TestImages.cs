using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Lethe.Homeserver.Tests.Media;

/// <summary>Real images made and read back with libgd (the library the server uses, but called independently here), and hand-made hostile headers.</summary>
internal static class TestImages
{
    private const string Lib = "libgd.so.3";

    /// <summary>A JPEG of the given size: a gradient, so it is not trivially compressible.</summary>
    public static byte[] Jpeg(int width, int height) => Make(width, height, "jpeg");

    /// <summary>A PNG of the given size.</summary>
    public static byte[] Png(int width, int height) => Make(width, height, "png");

    /// <summary>A GIF of the given size.</summary>
    public static byte[] Gif(int width, int height) => Make(width, height, "gif");

    /// <summary>Decodes an image with libgd and returns its dimensions, or null when libgd cannot decode it.</summary>
    public static (int Width, int Height)? Decode(byte[] data, string contentType)
    {
        var im = contentType switch
        {
            "image/jpeg" => gdImageCreateFromJpegPtr(data.Length, data),
            "image/png" => gdImageCreateFromPngPtr(data.Length, data),
            "image/gif" => gdImageCreateFromGifPtr(data.Length, data),
            _ => IntPtr.Zero,
        };
        if (im == IntPtr.Zero)
        {
            return null;
        }

        try
        {
            return (Marshal.ReadInt32(im, IntPtr.Size), Marshal.ReadInt32(im, IntPtr.Size + 4));
        }
        finally
        {
            gdImageDestroy(im);
        }
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

    private static byte[] Make(int width, int height, string format)
    {
        var im = gdImageCreateTrueColor(width, height);
        try
        {
            for (var y = 0; y < height; y += 4)
            {
                for (var x = 0; x < width; x += 4)
                {
                    var color = ((x * 255 / width) << 16) | ((y * 255 / height) << 8) | ((x + y) & 0xFF);
                    gdImageFilledRectangle(im, x, y, x + 3, y + 3, color);
                }
            }

            int size;
            var ptr = format switch
            {
                "jpeg" => NativeJpeg(im, out size, 85),
                "png" => NativePng(im, out size),
                _ => NativeGif(im, out size),
            };
            try
            {
                var bytes = new byte[size];
                Marshal.Copy(ptr, bytes, 0, size);
                return bytes;
            }
            finally
            {
                gdFree(ptr);
            }
        }
        finally
        {
            gdImageDestroy(im);
        }
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

    [DllImport(Lib, EntryPoint = "gdImageJpegPtr")]
    private static extern IntPtr NativeJpeg(IntPtr image, out int size, int quality);

    [DllImport(Lib, EntryPoint = "gdImagePngPtr")]
    private static extern IntPtr NativePng(IntPtr image, out int size);

    [DllImport(Lib, EntryPoint = "gdImageGifPtr")]
    private static extern IntPtr NativeGif(IntPtr image, out int size);

    [DllImport(Lib)]
    private static extern IntPtr gdImageCreateTrueColor(int sx, int sy);

    [DllImport(Lib)]
    private static extern void gdImageFilledRectangle(IntPtr im, int x1, int y1, int x2, int y2, int color);

    [DllImport(Lib)]
    private static extern IntPtr gdImageCreateFromJpegPtr(int size, byte[] data);

    [DllImport(Lib)]
    private static extern IntPtr gdImageCreateFromPngPtr(int size, byte[] data);

    [DllImport(Lib)]
    private static extern IntPtr gdImageCreateFromGifPtr(int size, byte[] data);

    [DllImport(Lib)]
    private static extern void gdImageDestroy(IntPtr image);

    [DllImport(Lib)]
    private static extern void gdFree(IntPtr data);
}
