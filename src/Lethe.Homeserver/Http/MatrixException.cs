using System.Text.Json.Nodes;

namespace Lethe.Homeserver.Http;

/// <summary>An error that crosses the API as a Matrix error response. Raise it through the factory methods; <see cref="ErrorRendering"/> writes it.</summary>
public sealed class MatrixException : Exception
{
    private MatrixException(int status, string errCode, string message, JsonObject? extra)
        : base(message)
    {
        Status = status;
        ErrCode = errCode;
        Extra = extra;
    }

    /// <summary>HTTP status code.</summary>
    public int Status { get; }

    /// <summary>The <c>errcode</c>.</summary>
    public string ErrCode { get; }

    /// <summary>Extra members of the error body (e.g. <c>retry_after_ms</c>, <c>soft_logout</c>).</summary>
    public JsonObject? Extra { get; }

    private JsonObject? _body;

    /// <summary>Extra response headers (e.g. Retry-After).</summary>
    public IReadOnlyDictionary<string, string>? Headers { get; private init; }

    /// <summary>The JSON body: errcode, error and any extras (or, for user-interactive auth, exactly the flows body).</summary>
    public JsonObject ToJson()
    {
        if (_body is not null)
        {
            return (JsonObject)_body.DeepClone();
        }

        var body = new JsonObject { ["errcode"] = ErrCode, ["error"] = Message };
        if (Extra is not null)
        {
            foreach (var kv in Extra)
            {
                body[kv.Key] = kv.Value?.DeepClone();
            }
        }

        return body;
    }

    /// <summary>Any error with an explicit status and code.</summary>
    public static MatrixException Of(int status, string errCode, string message, JsonObject? extra = null) => new(status, errCode, message, extra);

    /// <summary>400 M_BAD_JSON.</summary>
    public static MatrixException BadJson(string message) => new(400, Http.ErrCode.BadJson, message, null);

    /// <summary>400 M_NOT_JSON.</summary>
    public static MatrixException NotJson(string message) => new(400, Http.ErrCode.NotJson, message, null);

    /// <summary>400 M_INVALID_PARAM.</summary>
    public static MatrixException InvalidParam(string message) => new(400, Http.ErrCode.InvalidParam, message, null);

    /// <summary>400 M_MISSING_PARAM.</summary>
    public static MatrixException MissingParam(string message) => new(400, Http.ErrCode.MissingParam, message, null);

    /// <summary>403 M_FORBIDDEN.</summary>
    public static MatrixException Forbidden(string message) => new(403, Http.ErrCode.Forbidden, message, null);

    /// <summary>404 M_NOT_FOUND.</summary>
    public static MatrixException NotFound(string message) => new(404, Http.ErrCode.NotFound, message, null);

    /// <summary>404 M_UNRECOGNIZED: no such endpoint.</summary>
    public static MatrixException UnknownEndpoint() => new(404, Http.ErrCode.Unrecognized, "Unrecognized request", null);

    /// <summary>405 M_UNRECOGNIZED: the endpoint exists but not with this method.</summary>
    public static MatrixException MethodNotAllowed() => new(405, Http.ErrCode.Unrecognized, "Method not allowed for this endpoint", null);

    /// <summary>413 M_TOO_LARGE.</summary>
    public static MatrixException TooLarge(string message) => new(413, Http.ErrCode.TooLarge, message, null);

    /// <summary>401 M_MISSING_TOKEN.</summary>
    public static MatrixException MissingToken() => new(401, Http.ErrCode.MissingToken, "Missing access token", null);

    /// <summary>401 M_UNKNOWN_TOKEN, with <c>soft_logout</c> when the session may be resumed by logging in again.</summary>
    public static MatrixException UnknownToken(bool softLogout = false) =>
        new(401, Http.ErrCode.UnknownToken, "Unknown or expired access token", softLogout ? new JsonObject { ["soft_logout"] = true } : null);

    /// <summary>429 M_LIMIT_EXCEEDED with Retry-After.</summary>
    public static MatrixException LimitExceeded(long retryAfterMs) => new(429, Http.ErrCode.LimitExceeded, "Too many requests", new JsonObject { ["retry_after_ms"] = retryAfterMs })
    {
        Headers = new Dictionary<string, string> { ["Retry-After"] = ((retryAfterMs + 999) / 1000).ToString(System.Globalization.CultureInfo.InvariantCulture) },
    };

    /// <summary>401 user-interactive authentication challenge: the body (flows, params, session, completed, maybe errcode) as given.</summary>
    public static MatrixException UserInteractiveAuth(JsonObject body) =>
        new(401, body["errcode"]?.GetValue<string>() ?? "M_UNAUTHORIZED", body["error"]?.GetValue<string>() ?? "User-interactive authentication required", null) { _body = body };

    /// <summary>500 M_UNKNOWN for faults of the server itself; the message is generic so no internals leak.</summary>
    public static MatrixException Internal() => new(500, Http.ErrCode.Unknown, "Internal server error", null);
}
