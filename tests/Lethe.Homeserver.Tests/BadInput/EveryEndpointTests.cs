using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;

namespace Lethe.Homeserver.Tests.BadInput;

/// <summary>
/// Every mapped endpoint, fed broken and hostile input as an authenticated user: the answer is always a Matrix error
/// (or success), never a 5xx and never a hang. New endpoints are covered automatically.
/// </summary>
public sealed class EveryEndpointTests : IAsyncLifetime
{
    private TestHomeserver _server = null!;
    private MatrixClient _alice = null!;
    private string _roomId = "";
    private string _eventId = "";

    public async ValueTask InitializeAsync()
    {
        _server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration + "registration_shared_secret: s\n");
        _alice = await _server.RegisterAsync("alice");
        await _server.RegisterAsync("bob");
        _roomId = await _alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["room_alias_name"] = "room" });
        _eventId = await _alice.SendTextAsync(_roomId, "hello");
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    /// <summary>Values for path parameters: real ones (so endpoint logic runs), and hostile ones.</summary>
    private IEnumerable<Dictionary<string, string>> ParameterSets()
    {
        yield return new()
        {
            ["roomId"] = _roomId, ["roomIdOrAlias"] = "#room:test.local", ["roomAlias"] = "#room:test.local", ["eventId"] = _eventId,
            ["userId"] = _alice.UserId, ["deviceId"] = _alice.DeviceId, ["eventType"] = "m.room.message", ["stateKey"] = "",
            ["txnId"] = "t" + Guid.NewGuid().ToString("N"), ["type"] = "org.example.type", ["tag"] = "u.tag", ["receiptType"] = "m.read",
            ["filterId"] = "0", ["keyId"] = "ed25519:x", ["token"] = "tok", ["relType"] = "m.annotation", ["newVersion"] = "11",
        };
        yield return Hostile("!bogus:test.local", "$bogus", "@nobody:test.local");
        yield return Hostile("not-an-id", "not-an-event", "not-a-user");
        yield return Hostile(new string('x', 300), new string('$', 300), "@" + new string('a', 300) + ":test.local");
        yield return Hostile("!ü\u0001%00:test.local", "$\u2028", "@\ud83d\ude00:test.local");
    }

    private static Dictionary<string, string> Hostile(string room, string evt, string user) => new()
    {
        ["roomId"] = room, ["roomIdOrAlias"] = room, ["roomAlias"] = "#" + room, ["eventId"] = evt, ["userId"] = user, ["deviceId"] = room,
        ["eventType"] = evt, ["stateKey"] = room, ["txnId"] = room, ["type"] = room, ["tag"] = room, ["receiptType"] = room,
        ["filterId"] = "-1", ["keyId"] = room, ["token"] = room, ["relType"] = room, ["newVersion"] = room,
    };

    /// <summary>Stands for a body with raw bytes that are not UTF-8 inside a JSON string.</summary>
    private const string InvalidUtf8 = "(invalid UTF-8 bytes)";

    /// <summary>Bodies that are JSON text but not canonical JSON (or not UTF-8): an endpoint that parses its body refuses each.</summary>
    private static readonly string[] NotCanonical =
    [
        "{\"a\":1,\"a\":2}", "{\"n\":1e400}", "{\"n\":9007199254740992}", "{\"s\":\"\\ud800\"}", InvalidUtf8,
        new string('[', 5000) + new string(']', 5000),
    ];

    /// <summary>Query strings with wrong types, out-of-range numbers and bytes that are not UTF-8 (timeout stays 0).</summary>
    private static readonly string[] HostileQueries =
    [
        "limit=-1&from=%00%FF&dir=sideways",
        "limit=99999999999999999999&to=garbage&since=s-1_x",
        "from=" + new string('x', 3000) + "&filter=%7B%22room%22%3A5%7D&full_state=maybe",
        "set_presence=asleep&membership=%FF%FE&at=%C0%80&ts=-5&order_by=x&include=%00",
    ];

    /// <summary>Bodies no endpoint should choke on.</summary>
    private static IEnumerable<string?> Bodies()
    {
        yield return null;
        yield return "";
        yield return "not json";
        yield return "{";
        yield return "[1,2,3]";
        yield return "\"string\"";
        yield return "{}";
        yield return "{\"a\":1,\"a\":2}";
        yield return "{\"n\":1e400}";
        yield return "{\"n\":9007199254740992}";
        yield return "{\"s\":\"\\ud800\"}";
        yield return InvalidUtf8;
        yield return new string('[', 5000) + new string(']', 5000);
        yield return KitchenSink(wrongTypes: true);
        yield return KitchenSink(wrongTypes: false);
    }

    /// <summary>An object with the fields endpoints read, either all of the wrong type or with oversized values.</summary>
    private static string KitchenSink(bool wrongTypes)
    {
        string[] keys =
        [
            "user_id", "room_id", "body", "msgtype", "membership", "typing", "timeout", "presence", "status_msg", "displayname",
            "avatar_url", "new_password", "password", "devices", "auth", "visibility", "name", "topic", "invite", "preset",
            "room_version", "initial_state", "creation_content", "power_level_content_override", "room_alias_name", "is_direct",
            "reason", "username", "type", "identifier", "device_id", "refresh_token", "display_name", "filter", "limit", "since",
            "search_term", "new_version", "thread_id", "m.fully_read", "m.read", "order", "tags", "event_fields", "room",
            "nonce", "mac", "admin", "uses_allowed", "expiry_time", "length", "token", "logout_devices", "inhibit_login", "score",
            "server", "include_all_networks", "third_party_signed", "kind", "initial_device_display_name", "alias", "alt_aliases",
        ];
        var o = new JsonObject();
        var i = 0;
        foreach (var key in keys)
        {
            o[key] = wrongTypes
                ? (i++ % 5) switch
                {
                    0 => JsonValue.Create(12345),
                    1 => new JsonArray(1, "two", null, new JsonObject()),
                    2 => new JsonObject { ["nested"] = new JsonObject { ["deeper"] = new JsonArray() } },
                    3 => JsonValue.Create(true),
                    _ => JsonValue.Create(-9007199254740991L),
                }
                : JsonValue.Create(new string('x', 70_000));
        }

        return o.ToJsonString();
    }

    [Fact]
    public async Task NoEndpointAnswersBadInputWithA5xxOrHangs()
    {
        // Logging out ends the session the sweep runs with, so those endpoints go last.
        var routes = _server.Host.Routes.Where(r => r.Method != "OPTIONS").Distinct()
            .OrderBy(r => r.Pattern.Contains("/logout", StringComparison.Ordinal)).ToList();
        var unauthorized = 0;
        var sent = 0;
        Assert.True(routes.Count > 80, $"expected the whole API, found {routes.Count} routes");
        var failures = new List<string>();
        using var http = new HttpClient { BaseAddress = _server.BaseAddress, Timeout = TimeSpan.FromSeconds(15) };
        foreach (var (method, pattern) in routes)
        {
            foreach (var parameters in ParameterSets())
            {
                var path = Fill(pattern, parameters);
                var errcodes = new Dictionary<string, string?>(StringComparer.Ordinal); // body → errcode, for this endpoint
                // Long-polls and anything slow must still answer: timeout=0 keeps /sync from waiting its full default.
                var queries = method is "GET" ? ["timeout=0&limit=5&dir=b", .. HostileQueries.Select(q => "timeout=0&" + q)] : new[] { "timeout=0&limit=5&dir=b" };
                foreach (var query in queries)
                {
                    foreach (var body in method is "GET" ? [null] : Bodies())
                    {
                        var url = path + (path.Contains('?', StringComparison.Ordinal) ? "&" : "?") + query;
                        using var request = new HttpRequestMessage(new HttpMethod(method), url);
                        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", _alice.AccessToken);
                        if (body == InvalidUtf8)
                        {
                            request.Content = new ByteArrayContent([.. "{\"body\":\""u8, 0xFF, 0xFE, 0xC0, 0x80, .. "\"}"u8]);
                            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
                        }
                        else if (body is not null)
                        {
                            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
                        }

                        var what = $"{method} {path} query={Describe(query)} body={Describe(body)}";
                        try
                        {
                            using var response = await http.SendAsync(request);
                            var text = await response.Content.ReadAsStringAsync();
                            sent++;
                            unauthorized += response.StatusCode == HttpStatusCode.Unauthorized ? 1 : 0;
                            var errcode = ErrcodeOf(text);
                            if (body is not null)
                            {
                                errcodes[body] = errcode;
                            }

                            if ((int)response.StatusCode >= 500)
                            {
                                failures.Add($"{what} → {(int)response.StatusCode} {text}");
                            }
                            else if ((int)response.StatusCode >= 400 && !IsMatrixError(text))
                            {
                                failures.Add($"{what} → {(int)response.StatusCode} without a Matrix error body");
                            }
                            else if (errcode is not null && !ExpectedErrcodes.Contains(errcode)
                                && !(errcode == "M_UNKNOWN" && body is not null && body.Contains("third_party_signed", StringComparison.Ordinal)))
                            {
                                failures.Add($"{what} → {(int)response.StatusCode} {errcode}: not an error code bad input should get");
                            }
                        }
                        catch (TaskCanceledException)
                        {
                            failures.Add($"{what} → no answer within 15 s");
                        }
                    }
                }

                // An endpoint that reads a JSON body (it calls plain text M_NOT_JSON) rejects every non-canonical body at
                // parsing, before looking at fields: dropping duplicate keys or rounding 1e400 would change what was sent.
                if (errcodes.GetValueOrDefault("not json") == "M_NOT_JSON")
                {
                    foreach (var body in NotCanonical)
                    {
                        if (errcodes.GetValueOrDefault(body) is not ("M_BAD_JSON" or "M_NOT_JSON" or "M_TOO_LARGE") and var got)
                        {
                            failures.Add($"{method} {path} body={Describe(body)} → {got ?? "success"}: a non-canonical body was not refused as JSON");
                        }
                    }
                }
            }
        }

        // The sweep must really exercise the endpoints, not bounce off authentication.
        Assert.True(unauthorized < sent / 4, $"{unauthorized} of {sent} requests were refused as unauthorised");
        Assert.True(failures.Count == 0, $"{failures.Count} bad answers:\n{string.Join("\n", failures.Take(40))}\n\nserver log:\n{_server.Log.Text[..Math.Min(_server.Log.Text.Length, 20000)]}");
    }

    private static string Fill(string pattern, Dictionary<string, string> values)
    {
        var sb = new StringBuilder();
        foreach (var segment in pattern.Split('/'))
        {
            if (segment.Length == 0)
            {
                continue;
            }

            sb.Append('/');
            if (segment.StartsWith('{'))
            {
                var name = segment.Trim('{', '}', '*', '?');
                sb.Append(Uri.EscapeDataString(values.GetValueOrDefault(name, "x")));
            }
            else
            {
                sb.Append(segment);
            }
        }

        return sb.ToString();
    }

    /// <summary>The error codes bad input may get: each says what was wrong with the request.</summary>
    private static readonly HashSet<string> ExpectedErrcodes =
    [
        "M_NOT_JSON", "M_BAD_JSON", "M_INVALID_PARAM", "M_MISSING_PARAM", "M_TOO_LARGE", "M_FORBIDDEN", "M_NOT_FOUND",
        "M_UNKNOWN_TOKEN", "M_LIMIT_EXCEEDED", "M_UNRECOGNIZED", "M_INVALID_USERNAME", "M_USER_IN_USE", "M_ROOM_IN_USE",
        "M_UNSUPPORTED_ROOM_VERSION", "M_INVALID_ROOM_STATE", "M_BAD_STATE", "M_WRONG_ROOM_KEYS_VERSION", "M_UNAUTHORIZED",
        "M_INVALID_SIGNATURE", "M_MISSING_TOKEN",
    ];

    private static string? ErrcodeOf(string body)
    {
        try
        {
            return JsonNode.Parse(body) is JsonObject o && o["errcode"] is JsonValue v && v.TryGetValue<string>(out var code) ? code : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>A Matrix error body, or a user-interactive auth challenge (whose first 401 has flows and no errcode).</summary>
    private static bool IsMatrixError(string body) =>
        body.Contains("\"errcode\"", StringComparison.Ordinal) || body.Contains("\"flows\"", StringComparison.Ordinal);

    private static string Describe(string? body) => body is null ? "(none)" : body.Length > 60 ? body[..60] + "…" : body;
}
