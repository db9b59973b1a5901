using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Lethe.Homeserver.Http;

/// <summary>Writes JSON responses. Non-ASCII stays UTF-8 (no \u escapes): bodies are always application/json, never HTML.</summary>
public static class MatrixJson
{
    /// <summary>Writer options shared by every response.</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = false };

    /// <summary>Writes <paramref name="body"/> with the status code.</summary>
    public static async Task WriteAsync(HttpContext context, JsonNode body, int status = 200)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await using (var writer = new Utf8JsonWriter(context.Response.BodyWriter, WriterOptions))
        {
            body.WriteTo(writer);
        }

        await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
    }
}
