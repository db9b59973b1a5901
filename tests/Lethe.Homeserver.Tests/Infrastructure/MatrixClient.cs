using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Lethe.Homeserver.Tests.Infrastructure;

/// <summary>A minimal Matrix client for tests: JSON in, (status, JSON) out, optionally authenticated.</summary>
public sealed class MatrixClient(HttpClient http, string? accessToken = null)
{
    /// <summary>The access token used, if any.</summary>
    public string? AccessToken { get; set; } = accessToken;

    /// <summary>The server's log, shown when a request unexpectedly fails with a 5xx.</summary>
    public Func<string>? ServerLog { get; init; }

    /// <summary>The user ID, once known.</summary>
    public string UserId { get; set; } = "";

    /// <summary>The device ID, once known.</summary>
    public string DeviceId { get; set; } = "";

    /// <summary>A response: status and parsed JSON body (empty object when the body is empty or not JSON).</summary>
    public sealed record Response(HttpStatusCode Status, JsonObject Body, HttpResponseMessage Raw, string? ServerLog = null)
    {
        /// <summary>The errcode, if the body is an error.</summary>
        public string? ErrCode => Body["errcode"]?.GetValue<string>();

        /// <summary>Asserts the status and returns the body.</summary>
        public JsonObject Expect(HttpStatusCode status)
        {
            Assert.True(Status == status, $"expected {(int)status}, got {(int)Status}: {Body.ToJsonString()}{((int)Status >= 500 ? "\nserver log:\n" + ServerLog : "")}");
            return Body;
        }

        /// <summary>Asserts a 200 and returns the body.</summary>
        public JsonObject Ok() => Expect(HttpStatusCode.OK);

        /// <summary>Asserts an error status and errcode.</summary>
        public void Error(HttpStatusCode status, string errcode)
        {
            Assert.True(Status == status && ErrCode == errcode, $"expected {(int)status} {errcode}, got {(int)Status}: {Body.ToJsonString()}{((int)Status >= 500 ? "\nserver log:\n" + ServerLog : "")}");
        }
    }

    /// <summary>Sends a request with an optional JSON body (a JsonNode, or raw text).</summary>
    public async Task<Response> SendAsync(HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (AccessToken is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AccessToken);
        }

        if (body is not null)
        {
            var text = body is string s ? s : ((JsonNode)body).ToJsonString();
            request.Content = new StringContent(text, Encoding.UTF8, "application/json");
        }

        var response = await http.SendAsync(request);
        var raw = await response.Content.ReadAsStringAsync();
        JsonObject json;
        try
        {
            json = raw.Length > 0 && raw[0] == '{' ? JsonNode.Parse(raw)!.AsObject() : [];
        }
        catch (System.Text.Json.JsonException)
        {
            json = [];
        }

        return new Response(response.StatusCode, json, response, (int)response.StatusCode >= 500 ? ServerLog?.Invoke() : null);
    }

    /// <summary>GET.</summary>
    public Task<Response> GetAsync(string path) => SendAsync(HttpMethod.Get, path);

    /// <summary>POST with a JSON body.</summary>
    public Task<Response> PostAsync(string path, object? body) => SendAsync(HttpMethod.Post, path, body ?? new JsonObject());

    /// <summary>PUT with a JSON body.</summary>
    public Task<Response> PutAsync(string path, object? body) => SendAsync(HttpMethod.Put, path, body ?? new JsonObject());

    /// <summary>DELETE with an optional JSON body.</summary>
    public Task<Response> DeleteAsync(string path, object? body = null) => SendAsync(HttpMethod.Delete, path, body);

    /// <summary>Registers through the dummy flow (the server must allow open registration) and adopts the new session.</summary>
    public async Task<MatrixClient> RegisterAsync(string username, string password = "correct horse battery", JsonObject? extra = null)
    {
        var body = new JsonObject { ["username"] = username, ["password"] = password, ["auth"] = new JsonObject { ["type"] = "m.login.dummy" } };
        foreach (var kv in extra ?? [])
        {
            body[kv.Key] = kv.Value?.DeepClone();
        }

        var result = (await PostAsync("/_matrix/client/v3/register", body)).Ok();
        _ = result;
        AccessToken = result["access_token"]?.GetValue<string>();
        UserId = result["user_id"]!.GetValue<string>();
        DeviceId = result["device_id"]?.GetValue<string>() ?? "";
        return this;
    }

    /// <summary>Logs in with a password and adopts the new session.</summary>
    public async Task<JsonObject> LoginAsync(string user, string password = "correct horse battery", JsonObject? extra = null)
    {
        var body = new JsonObject
        {
            ["type"] = "m.login.password",
            ["identifier"] = new JsonObject { ["type"] = "m.id.user", ["user"] = user },
            ["password"] = password,
        };
        foreach (var kv in extra ?? [])
        {
            body[kv.Key] = kv.Value?.DeepClone();
        }

        var result = (await PostAsync("/_matrix/client/v3/login", body)).Ok();
        AccessToken = result["access_token"]!.GetValue<string>();
        UserId = result["user_id"]!.GetValue<string>();
        DeviceId = result["device_id"]!.GetValue<string>();
        return result;
    }

    /// <summary>An auth dict for the password stage.</summary>
    public JsonObject PasswordAuth(string password, string? session = null)
    {
        var auth = new JsonObject
        {
            ["type"] = "m.login.password",
            ["identifier"] = new JsonObject { ["type"] = "m.id.user", ["user"] = UserId },
            ["password"] = password,
        };
        if (session is not null)
        {
            auth["session"] = session;
        }

        return auth;
    }
}
