using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;

namespace Lethe.Homeserver.Accounts;

/// <summary>The user-interactive authentication API: flows of stages, sessions that remember completed stages, 401 challenges.</summary>
public sealed class UserInteractiveAuth(
    string serverName, UserStore users, PasswordHasher hasher, RegistrationTokenStore registrationTokens, TimeProvider clock)
{
    /// <summary>Stage: a password for the account.</summary>
    public const string Password = "m.login.password";

    /// <summary>Stage: nothing (open registration).</summary>
    public const string Dummy = "m.login.dummy";

    /// <summary>Stage: a registration token.</summary>
    public const string RegistrationToken = "m.login.registration_token";

    /// <summary>Accepting the server's policies (registration, with <c>user_consent.require_at_registration</c>).</summary>
    public const string Terms = "m.login.terms";

    private static readonly TimeSpan SessionLifetime = TimeSpan.FromMinutes(15);
    private readonly ConcurrentDictionary<string, Session> _sessions = new(StringComparer.Ordinal);

    /// <summary>A finished authentication: the session and what it proved.</summary>
    public sealed class Session(string id, string method, string path, DateTimeOffset created)
    {
        /// <summary>Session ID given to the client.</summary>
        public string Id { get; } = id;

        /// <summary>The operation the session authenticates (method and path), which may not change mid-session.</summary>
        public string Method { get; } = method;

        /// <summary>The path of the operation.</summary>
        public string Path { get; } = path;

        /// <summary>When the session began.</summary>
        public DateTimeOffset Created { get; } = created;

        /// <summary>Stages completed so far.</summary>
        public List<string> Completed { get; } = [];

        /// <summary>The registration token reserved by the token stage, to be completed or released.</summary>
        public string? ReservedRegistrationToken { get; set; }
    }

    /// <summary>
    /// Runs one round of user-interactive auth for the request. Returns the session when some flow is complete;
    /// otherwise throws the 401 challenge (with an error when a stage just failed).
    /// <paramref name="userId"/> is whose password the password stage checks (null when no such account exists yet).
    /// </summary>
    public async Task<Session> RequireAsync(HttpContext context, JsonObject body, IReadOnlyList<string[]> flows, string? userId, JsonObject? stageParams = null)
    {
        Expire();
        var auth = body.OptionalObject("auth");
        var sessionId = auth?.OptionalString("session", 255);
        Session? session = null;
        if (sessionId is not null && !_sessions.TryGetValue(sessionId, out session))
        {
            throw MatrixException.Of(400, ErrCode.Unknown, "Unknown user-interactive authentication session");
        }

        var method = context.Request.Method;
        var path = context.Request.Path.Value ?? "";
        if (session is not null && (session.Method != method || !SamePathIgnoringPrefix(session.Path, path)))
        {
            throw MatrixException.Forbidden("The requested operation changed during the user-interactive authentication session");
        }

        session ??= NewSession(method, path);
        var type = auth?.OptionalString("type", 255);
        if (auth is null || type is null)
        {
            // Only a fallback-style "continue" (session, no type) or the first request: answer with the flows.
            throw Challenge(session, flows, null, stageParams);
        }

        if (!flows.Any(f => f.Contains(type)))
        {
            throw Challenge(session, flows, MatrixException.Of(400, ErrCode.Unknown, $"Authentication type {type} is not offered here"), stageParams);
        }

        var failure = await CheckStageAsync(type, auth, session, userId, context.RequestAborted);
        if (failure is not null)
        {
            throw Challenge(session, flows, failure, stageParams);
        }

        if (!session.Completed.Contains(type))
        {
            session.Completed.Add(type);
        }

        if (flows.Any(f => f.All(session.Completed.Contains)))
        {
            _sessions.TryRemove(session.Id, out _);
            return session;
        }

        throw Challenge(session, flows, null, stageParams);
    }

    private async Task<MatrixException?> CheckStageAsync(string type, JsonObject auth, Session session, string? userId, CancellationToken ct)
    {
        switch (type)
        {
            case Dummy:
            case Terms:
                return null;
            case Password:
                {
                    var claimed = LoginIdentifier.UserIdFrom(auth, serverName);
                    var password = auth.OptionalString("password", 512);
                    if (password is null || claimed is null)
                    {
                        return MatrixException.Of(400, ErrCode.MissingParam, "The password stage needs an identifier and a password");
                    }

                    var user = userId is null ? null : await users.GetAsync(userId, ct);
                    var ok = await hasher.VerifyAsync(user?.PasswordHash, password, ct);
                    return ok && claimed == userId ? null : MatrixException.Forbidden("Invalid password");
                }

            case RegistrationToken:
                {
                    var token = auth.OptionalString("token", 255);
                    if (token is null)
                    {
                        return MatrixException.Of(400, ErrCode.MissingParam, "The registration token stage needs a token");
                    }

                    if (session.ReservedRegistrationToken == token)
                    {
                        return null;
                    }

                    if (session.ReservedRegistrationToken is not null || !await registrationTokens.TryReserveAsync(token, clock.GetUtcNow().ToUnixTimeMilliseconds(), ct))
                    {
                        return MatrixException.Of(401, ErrCode.Unauthorized, "Invalid registration token");
                    }

                    session.ReservedRegistrationToken = token;
                    return null;
                }

            default:
                return MatrixException.Of(400, ErrCode.Unknown, $"Unsupported authentication type {type}");
        }
    }

    private Session NewSession(string method, string path)
    {
        var session = new Session(Base64Unpadded.EncodeUrlSafe(SecureRandom.Bytes(18)), method, path, clock.GetUtcNow());
        _sessions[session.Id] = session;
        return session;
    }

    private static MatrixException Challenge(Session session, IReadOnlyList<string[]> flows, MatrixException? error, JsonObject? stageParams)
    {
        var body = new JsonObject
        {
            ["flows"] = new JsonArray(flows.Select(f => (JsonNode)new JsonObject { ["stages"] = new JsonArray(f.Select(s => (JsonNode)s).ToArray()) }).ToArray()),
            ["params"] = stageParams?.DeepClone() ?? new JsonObject(),
            ["session"] = session.Id,
            ["completed"] = new JsonArray(session.Completed.Select(s => (JsonNode)s).ToArray()),
        };
        if (error is not null)
        {
            body["errcode"] = error.ErrCode;
            body["error"] = error.Message;
        }

        return MatrixException.UserInteractiveAuth(body);
    }

    private void Expire()
    {
        var cutoff = clock.GetUtcNow() - SessionLifetime;
        foreach (var kv in _sessions)
        {
            if (kv.Value.Created < cutoff && _sessions.TryRemove(kv.Key, out var old) && old.ReservedRegistrationToken is { } token)
            {
                _ = registrationTokens.ReleaseAsync(token);
            }
        }
    }

    private static bool SamePathIgnoringPrefix(string a, string b) =>
        a == b || a.Replace("/r0/", "/v3/", StringComparison.Ordinal) == b.Replace("/r0/", "/v3/", StringComparison.Ordinal);
}

/// <summary>Reads the user a login or password stage names: <c>identifier</c> (<c>m.id.user</c>) or the deprecated <c>user</c>.</summary>
public static class LoginIdentifier
{
    /// <summary>The full user ID named, on this server; null when none is named or the identifier kind is not a user.</summary>
    public static string? UserIdFrom(JsonObject body, string serverName)
    {
        string? user;
        if (body.OptionalObject("identifier") is { } identifier)
        {
            var type = identifier.OptionalString("type", 255);
            if (type != "m.id.user")
            {
                return null;
            }

            user = identifier.OptionalString("user", 255);
        }
        else
        {
            user = body.OptionalString("user", 255);
        }

        if (user is null)
        {
            return null;
        }

        // Localparts are case-insensitive at login, as in Synapse: users type "Alice" for @alice.
        if (user.StartsWith('@'))
        {
            return UserId.TryParse(user, out var full) ? "@" + full.Localpart.ToLowerInvariant() + ":" + full.Server.Value : null;
        }

        return "@" + user.ToLowerInvariant() + ":" + serverName;
    }
}
