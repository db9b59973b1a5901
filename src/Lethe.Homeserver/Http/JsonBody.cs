using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json.Nodes;
using Lethe.Protocol.Json;
using Microsoft.AspNetCore.Http;

namespace Lethe.Homeserver.Http;

/// <summary>Reads request bodies as strict Matrix JSON (no duplicate keys, no floats, integers in range).</summary>
public static class JsonBody
{
    /// <summary>Largest JSON body accepted by default (bytes). Key backups and to-device batches need room; events are capped separately at 64 KiB.</summary>
    public const long DefaultLimit = 16 * 1024 * 1024;

    /// <summary>Reads the body as a JSON object: 400 M_NOT_JSON for invalid JSON or a non-object, 413 M_TOO_LARGE over the limit.</summary>
    public static Task<JsonObject> ReadObjectAsync(HttpContext context, long limit = DefaultLimit) => ReadObjectAsync(context, allowFloats: false, limit);

    /// <summary>
    /// As <see cref="ReadObjectAsync(HttpContext, long)"/>, but accepting non-integral numbers, for bodies that are
    /// stored rather than signed (account data, tags, to-device content): the spec leaves their content free.
    /// </summary>
    public static async Task<JsonObject> ReadObjectAsync(HttpContext context, bool allowFloats, long limit = DefaultLimit)
    {
        var bytes = await ReadBytesAsync(context, limit);
        try
        {
            return CanonicalJson.Parse(bytes.Span, allowFloats) as JsonObject ?? throw MatrixException.NotJson("Content must be a JSON object");
        }
        catch (CanonicalJsonException e)
        {
            throw MatrixException.NotJson(e.Message);
        }
    }

    /// <summary>Reads the body as a JSON object, or an empty object when the body is empty (for endpoints whose body is optional).</summary>
    public static async Task<JsonObject> ReadOptionalObjectAsync(HttpContext context, long limit = DefaultLimit)
    {
        var bytes = await ReadBytesAsync(context, limit);
        if (bytes.Span.Trim(" \t\r\n"u8).IsEmpty)
        {
            return [];
        }

        try
        {
            return CanonicalJson.Parse(bytes.Span) as JsonObject ?? throw MatrixException.NotJson("Content must be a JSON object");
        }
        catch (CanonicalJsonException e)
        {
            throw MatrixException.NotJson(e.Message);
        }
    }

    private static async Task<ReadOnlyMemory<byte>> ReadBytesAsync(HttpContext context, long limit)
    {
        if (context.Request.ContentLength > limit)
        {
            throw MatrixException.TooLarge($"Request body is larger than {limit} bytes");
        }

        var reader = context.Request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync(context.RequestAborted);
            if (result.Buffer.Length > limit)
            {
                reader.AdvanceTo(result.Buffer.Start);
                throw MatrixException.TooLarge($"Request body is larger than {limit} bytes");
            }

            if (result.IsCompleted)
            {
                var data = result.Buffer.ToArray();
                reader.AdvanceTo(result.Buffer.End);
                return data;
            }

            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }
}
