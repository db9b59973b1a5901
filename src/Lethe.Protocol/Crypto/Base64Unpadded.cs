using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;

namespace Lethe.Protocol.Crypto;

/// <summary>The spec's unpadded Base64, standard and URL-safe alphabets. Decoding accepts padded input too, as the spec allows.</summary>
public static class Base64Unpadded
{
    /// <summary>Encodes with the standard alphabet and no padding.</summary>
    public static string Encode(ReadOnlySpan<byte> data) => Convert.ToBase64String(data).TrimEnd('=');

    /// <summary>Encodes with the URL-safe alphabet (<c>-</c>, <c>_</c>) and no padding.</summary>
    public static string EncodeUrlSafe(ReadOnlySpan<byte> data) => Base64Url.EncodeToString(data);

    /// <summary>Decodes standard Base64 with or without padding; false when the text is not Base64.</summary>
    public static bool TryDecode(string text, [NotNullWhen(true)] out byte[]? bytes)
    {
        bytes = null;
        var trimmed = text.TrimEnd('=');
        if (trimmed.Length % 4 == 1 || trimmed.Length + 3 < text.Length)
        {
            return false;
        }

        var padded = trimmed.Length % 4 == 0 ? trimmed : trimmed + new string('=', 4 - (trimmed.Length % 4));
        var buffer = new byte[padded.Length / 4 * 3];
        if (!Convert.TryFromBase64String(padded, buffer, out var written))
        {
            return false;
        }

        bytes = written == buffer.Length ? buffer : buffer[..written];
        return true;
    }

    /// <summary>Decodes URL-safe Base64 with or without padding; false when the text is not URL-safe Base64.</summary>
    public static bool TryDecodeUrlSafe(string text, [NotNullWhen(true)] out byte[]? bytes)
    {
        bytes = null;
        var trimmed = text.TrimEnd('=');
        try
        {
            bytes = Base64Url.DecodeFromChars(trimmed);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
