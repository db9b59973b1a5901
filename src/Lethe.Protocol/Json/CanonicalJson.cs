using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Lethe.Protocol.Json;

/// <summary>Matrix canonical JSON: strict parsing of untrusted input and the canonical byte encoding used for hashing and signing.</summary>
public static class CanonicalJson
{
    /// <summary>Largest integer canonical JSON allows: 2^53 - 1.</summary>
    public const long MaxSafeInteger = 9007199254740991;

    /// <summary>Smallest integer canonical JSON allows: -(2^53) + 1.</summary>
    public const long MinSafeInteger = -9007199254740991;

    /// <summary>Deepest nesting accepted when parsing; deeper documents are rejected rather than risking the stack.</summary>
    public const int MaxDepth = 64;

    private static readonly JsonReaderOptions ReaderOptions = new()
    {
        AllowTrailingCommas = false,
        CommentHandling = JsonCommentHandling.Disallow,
        MaxDepth = MaxDepth + 1,
    };

    /// <summary>Parses a JSON document strictly: no duplicate keys, no non-integral numbers, integers within ±(2^53-1), valid UTF-8.</summary>
    /// <exception cref="CanonicalJsonException">The input is not acceptable JSON; the message says why.</exception>
    public static JsonNode? Parse(ReadOnlySpan<byte> utf8) => Parse(utf8, allowFloats: false);

    /// <summary>
    /// Parses a JSON document strictly, except that non-integral numbers are accepted when <paramref name="allowFloats"/>
    /// is set (for data that is never signed, such as account data, whose content the spec leaves free).
    /// </summary>
    /// <exception cref="CanonicalJsonException">The input is not acceptable JSON; the message says why.</exception>
    public static JsonNode? Parse(ReadOnlySpan<byte> utf8, bool allowFloats)
    {
        if (utf8.Trim(" \t\r\n"u8).IsEmpty)
        {
            throw new CanonicalJsonException("Empty JSON document");
        }

        var reader = new Utf8JsonReader(utf8, ReaderOptions);
        try
        {
            if (!reader.Read())
            {
                throw new CanonicalJsonException("Empty JSON document");
            }

            var value = ReadValue(ref reader, 0, allowFloats);
            if (reader.Read())
            {
                throw new CanonicalJsonException("Trailing data after JSON document");
            }

            return value;
        }
        catch (JsonException e)
        {
            throw new CanonicalJsonException("Invalid JSON: " + TrimReaderMessage(e.Message));
        }
        catch (InvalidOperationException e)
        {
            // Utf8JsonReader reports invalid UTF-8 inside strings this way.
            throw new CanonicalJsonException("Invalid JSON: " + e.Message);
        }
    }

    /// <summary>Parses a document that must be a JSON object.</summary>
    /// <exception cref="CanonicalJsonException">The input is not acceptable JSON or not an object.</exception>
    public static JsonObject ParseObject(ReadOnlySpan<byte> utf8) =>
        Parse(utf8) as JsonObject ?? throw new CanonicalJsonException("Content must be a JSON object");

    /// <summary>Parses a string that must hold a JSON object.</summary>
    public static JsonObject ParseObject(string json) => ParseObject(Encoding.UTF8.GetBytes(json));

    private static string TrimReaderMessage(string message)
    {
        // Utf8JsonReader messages end with " LineNumber: 0 | BytePositionInLine: 3." which is useful; keep it short.
        return message.Length > 300 ? message[..300] : message;
    }

    private static JsonNode? ReadValue(ref Utf8JsonReader reader, int depth, bool allowFloats)
    {
        if (depth > MaxDepth)
        {
            throw new CanonicalJsonException($"JSON nested deeper than {MaxDepth} levels");
        }

        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                {
                    var obj = new JsonObject();
                    while (true)
                    {
                        reader.Read();
                        if (reader.TokenType == JsonTokenType.EndObject)
                        {
                            return obj;
                        }

                        var name = reader.GetString()!;
                        if (obj.ContainsKey(name))
                        {
                            throw new CanonicalJsonException($"Duplicate key \"{Truncate(name)}\" in JSON object");
                        }

                        reader.Read();
                        obj.Add(name, ReadValue(ref reader, depth + 1, allowFloats));
                    }
                }

            case JsonTokenType.StartArray:
                {
                    var arr = new JsonArray();
                    while (true)
                    {
                        reader.Read();
                        if (reader.TokenType == JsonTokenType.EndArray)
                        {
                            return arr;
                        }

                        arr.Add(ReadValue(ref reader, depth + 1, allowFloats));
                    }
                }

            case JsonTokenType.String:
                return JsonValue.Create(reader.GetString()!);
            case JsonTokenType.Number:
                if (allowFloats && !reader.TryGetInt64(out _))
                {
                    return reader.TryGetDouble(out var d) && double.IsFinite(d)
                        ? JsonValue.Create(d)
                        : throw new CanonicalJsonException("Number is out of range");
                }

                return JsonValue.Create(ReadInteger(ref reader));
            case JsonTokenType.True:
                return JsonValue.Create(true);
            case JsonTokenType.False:
                return JsonValue.Create(false);
            case JsonTokenType.Null:
                return null;
            default:
                throw new CanonicalJsonException("Unexpected JSON token " + reader.TokenType);
        }
    }

    private static long ReadInteger(ref Utf8JsonReader reader)
    {
        if (reader.TryGetInt64(out var l))
        {
            return CheckRange(l);
        }

        // Numbers such as 1e10 or -0.0 denote integers; anything with a fraction is a float, which Matrix forbids.
        var raw = reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan.ToArray();
        var text = Encoding.ASCII.GetString(raw);
        if (!decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
        {
            throw new CanonicalJsonException($"Number {Truncate(text)} is out of range");
        }

        if (d != decimal.Truncate(d))
        {
            throw new CanonicalJsonException($"Number {Truncate(text)} is not an integer; floats are not allowed");
        }

        if (d > MaxSafeInteger || d < MinSafeInteger)
        {
            throw new CanonicalJsonException($"Integer {Truncate(text)} is out of range");
        }

        return (long)d;
    }

    private static long CheckRange(long value) =>
        value is > MaxSafeInteger or < MinSafeInteger
            ? throw new CanonicalJsonException($"Integer {value} is out of range [-(2^53)+1, (2^53)-1]")
            : value;

    private static string Truncate(string s) => s.Length > 64 ? s[..64] + "…" : s;

    /// <summary>Encodes a JSON value canonically: keys sorted by code point, no whitespace, minimal escapes, UTF-8.</summary>
    public static byte[] Encode(JsonNode? node)
    {
        var buffer = RentBuffer();
        try
        {
            Write(buffer, node);
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            ReturnBuffer(buffer);
        }
    }

    /// <summary>
    /// Encodes an object canonically without the named top-level members, as if they had been removed from a copy
    /// (hashing and signing leave out <c>signatures</c>, <c>unsigned</c> and the like); the object is not copied.
    /// </summary>
    public static byte[] EncodeWithout(JsonObject obj, params ReadOnlySpan<string> omit)
    {
        var buffer = RentBuffer();
        try
        {
            WriteWithout(buffer, obj, omit);
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            ReturnBuffer(buffer);
        }
    }

    /// <summary>Writes an object canonically without the named top-level members.</summary>
    public static void WriteWithout(IBufferWriter<byte> output, JsonObject obj, params ReadOnlySpan<string> omit)
    {
        var members = new List<KeyValuePair<string, JsonNode?>>(obj.Count);
        foreach (var kv in obj)
        {
            if (!omit.Contains(kv.Key))
            {
                members.Add(kv);
            }
        }

        WriteMembers(output, members);
    }

    /// <summary>
    /// Writes the given members as one canonical object, sorting them in place; the keys must be distinct. The member
    /// named <paramref name="rawKey"/>, if any, is written as <paramref name="rawValue"/>, already canonical JSON.
    /// </summary>
    internal static void WriteMembers(IBufferWriter<byte> output, List<KeyValuePair<string, JsonNode?>> members, string? rawKey = null, ReadOnlySpan<byte> rawValue = default)
    {
        members.Sort(static (a, b) => CodePointComparer.Instance.Compare(a.Key, b.Key));
        WriteByte(output, (byte)'{');
        for (var i = 0; i < members.Count; i++)
        {
            if (i > 0)
            {
                WriteByte(output, (byte)',');
            }

            WriteString(output, members[i].Key);
            WriteByte(output, (byte)':');
            if (rawKey is not null && members[i].Key == rawKey)
            {
                output.Write(rawValue);
            }
            else
            {
                Write(output, members[i].Value);
            }
        }

        WriteByte(output, (byte)'}');
    }

    /// <summary>Largest buffer kept for reuse: an event is at most 64 KiB, so this covers every event and most other documents.</summary>
    private const int MaxReusedBuffer = 128 * 1024;

    // Two encoding buffers per thread, reused: encoding happens several times per request (hashes, signature, storage)
    // and growing a fresh buffer each time was a large share of the send path's allocations. Encoding is synchronous,
    // so a buffer is never shared between threads; two slots cover one level of nesting (the redacted content inside a
    // redacted event), deeper nesting simply allocates.
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer2;

    /// <summary>Takes one of this thread's encoding buffers (or a new one); give it back with <see cref="ReturnBuffer"/>.</summary>
    internal static ArrayBufferWriter<byte> RentBuffer()
    {
        if (t_buffer is { } first)
        {
            t_buffer = null;
            return first;
        }

        if (t_buffer2 is { } second)
        {
            t_buffer2 = null;
            return second;
        }

        return new ArrayBufferWriter<byte>(1024);
    }

    /// <summary>Returns a buffer from <see cref="RentBuffer"/>, zeroed (event content does not linger), unless it grew too large to keep.</summary>
    internal static void ReturnBuffer(ArrayBufferWriter<byte> buffer)
    {
        if (buffer.Capacity > MaxReusedBuffer)
        {
            return;
        }

        buffer.Clear();
        if (t_buffer is null)
        {
            t_buffer = buffer;
        }
        else
        {
            t_buffer2 = buffer;
        }
    }

    /// <summary>Encodes a JSON value canonically into a caller-supplied buffer.</summary>
    public static void Write(IBufferWriter<byte> output, JsonNode? node)
    {
        switch (node)
        {
            case null:
                WriteAscii(output, "null");
                break;
            case JsonObject obj:
                WriteObject(output, obj);
                break;
            case JsonArray arr:
                WriteByte(output, (byte)'[');
                for (var i = 0; i < arr.Count; i++)
                {
                    if (i > 0)
                    {
                        WriteByte(output, (byte)',');
                    }

                    Write(output, arr[i]);
                }

                WriteByte(output, (byte)']');
                break;
            case JsonValue value:
                WriteValue(output, value);
                break;
            default:
                throw new CanonicalJsonException("Unsupported JSON node");
        }
    }

    private static void WriteObject(IBufferWriter<byte> output, JsonObject obj)
    {
        WriteByte(output, (byte)'{');
        var count = obj.Count;
        if (count > 0)
        {
            var keys = ArrayPool<string>.Shared.Rent(count);
            var i = 0;
            foreach (var kv in obj)
            {
                keys[i++] = kv.Key;
            }

            Array.Sort(keys, 0, count, CodePointComparer.Instance);
            for (i = 0; i < count; i++)
            {
                if (i > 0)
                {
                    WriteByte(output, (byte)',');
                }

                WriteString(output, keys[i]);
                WriteByte(output, (byte)':');
                Write(output, obj[keys[i]]);
            }

            Array.Clear(keys, 0, count);
            ArrayPool<string>.Shared.Return(keys);
        }

        WriteByte(output, (byte)'}');
    }

    private static void WriteValue(IBufferWriter<byte> output, JsonValue value)
    {
        if (value.TryGetValue<string>(out var s))
        {
            WriteString(output, s);
            return;
        }

        if (value.TryGetValue<bool>(out var b))
        {
            WriteAscii(output, b ? "true" : "false");
            return;
        }

        if (value.TryGetValue<long>(out var l))
        {
            WriteAscii(output, CheckRange(l).ToString(CultureInfo.InvariantCulture));
            return;
        }

        if (value.TryGetValue<int>(out var i))
        {
            WriteAscii(output, i.ToString(CultureInfo.InvariantCulture));
            return;
        }

        if (value.TryGetValue<JsonElement>(out var element))
        {
            WriteElement(output, element);
            return;
        }

        if (value.TryGetValue<double>(out var dbl) && dbl == Math.Floor(dbl) && Math.Abs(dbl) <= MaxSafeInteger)
        {
            WriteAscii(output, ((long)dbl).ToString(CultureInfo.InvariantCulture));
            return;
        }

        throw new CanonicalJsonException("Value cannot be represented in canonical JSON: " + value.ToJsonString());
    }

    private static void WriteElement(IBufferWriter<byte> output, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                WriteString(output, element.GetString()!);
                break;
            case JsonValueKind.Number:
                if (element.TryGetInt64(out var l))
                {
                    WriteAscii(output, CheckRange(l).ToString(CultureInfo.InvariantCulture));
                }
                else if (decimal.TryParse(element.GetRawText(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
                         && d == decimal.Truncate(d) && d <= MaxSafeInteger && d >= MinSafeInteger)
                {
                    WriteAscii(output, ((long)d).ToString(CultureInfo.InvariantCulture));
                }
                else
                {
                    throw new CanonicalJsonException("Number cannot be represented in canonical JSON: " + element.GetRawText());
                }

                break;
            case JsonValueKind.True:
                WriteAscii(output, "true");
                break;
            case JsonValueKind.False:
                WriteAscii(output, "false");
                break;
            case JsonValueKind.Null:
                WriteAscii(output, "null");
                break;
            default:
                // Objects and arrays inside a JsonValue are rare (JsonValue.Create(element)); round-trip through nodes.
                Write(output, JsonNode.Parse(element.GetRawText()));
                break;
        }
    }

    private static void WriteString(IBufferWriter<byte> output, string s)
    {
        WriteByte(output, (byte)'"');
        var start = 0;
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (c >= 0x20 && c != '"' && c != '\\')
            {
                continue;
            }

            WriteUtf8(output, s.AsSpan(start, i - start));
            start = i + 1;
            switch (c)
            {
                case '"': WriteAscii(output, "\\\""); break;
                case '\\': WriteAscii(output, "\\\\"); break;
                case '\b': WriteAscii(output, "\\b"); break;
                case '\t': WriteAscii(output, "\\t"); break;
                case '\n': WriteAscii(output, "\\n"); break;
                case '\f': WriteAscii(output, "\\f"); break;
                case '\r': WriteAscii(output, "\\r"); break;
                default:
                    WriteAscii(output, "\\u00");
                    WriteByte(output, (byte)"0123456789abcdef"[c >> 4]);
                    WriteByte(output, (byte)"0123456789abcdef"[c & 0xF]);
                    break;
            }
        }

        WriteUtf8(output, s.AsSpan(start));
        WriteByte(output, (byte)'"');
    }

    private static void WriteUtf8(IBufferWriter<byte> output, ReadOnlySpan<char> chars)
    {
        if (chars.IsEmpty)
        {
            return;
        }

        var max = Encoding.UTF8.GetMaxByteCount(chars.Length);
        var span = output.GetSpan(max);
        // Lone surrogates cannot be encoded as UTF-8; the replacement-free encoder throws rather than corrupting a signature.
        var written = StrictUtf8.GetBytes(chars, span);
        output.Advance(written);
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static void WriteAscii(IBufferWriter<byte> output, string ascii)
    {
        var span = output.GetSpan(ascii.Length);
        for (var i = 0; i < ascii.Length; i++)
        {
            span[i] = (byte)ascii[i];
        }

        output.Advance(ascii.Length);
    }

    private static void WriteByte(IBufferWriter<byte> output, byte b)
    {
        output.GetSpan(1)[0] = b;
        output.Advance(1);
    }

    /// <summary>Orders strings by Unicode code point (which equals UTF-8 byte order), not UTF-16 code unit.</summary>
    public sealed class CodePointComparer : IComparer<string>
    {
        /// <summary>The shared instance.</summary>
        public static readonly CodePointComparer Instance = new();

        /// <inheritdoc />
        public int Compare(string? x, string? y)
        {
            if (ReferenceEquals(x, y))
            {
                return 0;
            }

            if (x is null)
            {
                return -1;
            }

            if (y is null)
            {
                return 1;
            }

            var n = Math.Min(x.Length, y.Length);
            for (var i = 0; i < n; i++)
            {
                var a = x[i];
                var b = y[i];
                if (a == b)
                {
                    continue;
                }

                // Surrogates (D800–DFFF) encode code points above FFFF, so they sort after E000–FFFF.
                var sa = char.IsSurrogate(a);
                var sb = char.IsSurrogate(b);
                if (sa != sb)
                {
                    return sa ? 1 : -1;
                }

                return a - b;
            }

            return x.Length - y.Length;
        }
    }
}

/// <summary>Raised when JSON is not acceptable to Matrix (malformed, duplicate keys, floats, out-of-range integers).</summary>
public sealed class CanonicalJsonException(string message) : Exception(message);
