using System.Globalization;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Json;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Keys;

/// <summary>Server-side key backup: <c>/room_keys/version</c> and <c>/room_keys/keys</c>.</summary>
public static class KeyBackupEndpoints
{
    /// <summary>Largest backup upload (bytes): a full backup of a long-lived account holds many thousands of sessions.</summary>
    private const long MaxBody = 64L * 1024 * 1024;

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // POST /_matrix/client/v3/room_keys/version
        app.MapKeys("POST", "/room_keys/version", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var body = await JsonBody.ReadObjectAsync(ctx, allowFloats: true);
            var algorithm = body.RequiredString("algorithm", 255);
            var authData = body.OptionalObject("auth_data") ?? throw MatrixException.MissingParam("Missing 'auth_data'");
            var version = await hs.KeyBackups.CreateVersionAsync(requester.UserId, algorithm, CanonicalJson.Encode(authData), ctx.RequestAborted);
            return new JsonObject { ["version"] = Text(version) };
        });

        // GET /_matrix/client/v3/room_keys/version
        app.MapKeys("GET", "/room_keys/version", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            return await VersionJsonAsync(hs, requester.UserId, null, ctx.RequestAborted);
        });

        // GET /_matrix/client/v3/room_keys/version/{version}
        app.MapKeys("GET", "/room_keys/version/{version}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            return await VersionJsonAsync(hs, requester.UserId, ParseVersion(ctx.Route("version")), ctx.RequestAborted);
        });

        // PUT /_matrix/client/v3/room_keys/version/{version}
        app.MapKeys("PUT", "/room_keys/version/{version}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var version = ParseVersion(ctx.Route("version"));
            var body = await JsonBody.ReadObjectAsync(ctx, allowFloats: true);
            var algorithm = body.RequiredString("algorithm", 255);
            var authData = body.OptionalObject("auth_data") ?? throw MatrixException.MissingParam("Missing 'auth_data'");
            if (body.OptionalString("version", 64) is { } bodyVersion && bodyVersion != ctx.Route("version"))
            {
                throw MatrixException.InvalidParam("The version in the body does not match the version in the path");
            }

            var existing = await hs.KeyBackups.GetVersionAsync(requester.UserId, version, ctx.RequestAborted) ?? throw NoSuchVersion();
            if (existing.Algorithm != algorithm)
            {
                throw MatrixException.InvalidParam("The algorithm of a backup version cannot change");
            }

            return await hs.KeyBackups.UpdateAuthDataAsync(requester.UserId, version, CanonicalJson.Encode(authData), ctx.RequestAborted)
                ? new JsonObject()
                : throw NoSuchVersion();
        });

        // DELETE /_matrix/client/v3/room_keys/version/{version}
        app.MapKeys("DELETE", "/room_keys/version/{version}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            return await hs.KeyBackups.DeleteVersionAsync(requester.UserId, ParseVersion(ctx.Route("version")), ctx.RequestAborted)
                ? new JsonObject()
                : throw NoSuchVersion();
        });

        // PUT /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]]
        app.MapKeys("PUT", "/room_keys/keys", ctx => PutAsync(ctx, hs, null, null));
        app.MapKeys("PUT", "/room_keys/keys/{roomId}", ctx => PutAsync(ctx, hs, ctx.Route("roomId"), null));
        app.MapKeys("PUT", "/room_keys/keys/{roomId}/{sessionId}", ctx => PutAsync(ctx, hs, ctx.Route("roomId"), ctx.Route("sessionId")));

        // GET /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]]
        app.MapKeys("GET", "/room_keys/keys", ctx => GetAsync(ctx, hs, null, null));
        app.MapKeys("GET", "/room_keys/keys/{roomId}", ctx => GetAsync(ctx, hs, ctx.Route("roomId"), null));
        app.MapKeys("GET", "/room_keys/keys/{roomId}/{sessionId}", ctx => GetAsync(ctx, hs, ctx.Route("roomId"), ctx.Route("sessionId")));

        // DELETE /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]]
        app.MapKeys("DELETE", "/room_keys/keys", ctx => DeleteAsync(ctx, hs, null, null));
        app.MapKeys("DELETE", "/room_keys/keys/{roomId}", ctx => DeleteAsync(ctx, hs, ctx.Route("roomId"), null));
        app.MapKeys("DELETE", "/room_keys/keys/{roomId}/{sessionId}", ctx => DeleteAsync(ctx, hs, ctx.Route("roomId"), ctx.Route("sessionId")));
    }

    private static async ValueTask<JsonNode> PutAsync(HttpContext ctx, HomeserverServices hs, string? roomId, string? sessionId)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        var version = RequiredVersion(ctx);
        var body = await JsonBody.ReadObjectAsync(ctx, allowFloats: true, MaxBody);
        var keys = new List<BackupKeyRow>();
        if (sessionId is not null)
        {
            keys.Add(ReadKey(body, roomId!, sessionId));
        }
        else if (roomId is not null)
        {
            ReadSessions(body, roomId, keys);
        }
        else
        {
            var rooms = body.OptionalObject("rooms") ?? throw MatrixException.MissingParam("Missing 'rooms'");
            foreach (var (room, roomBody) in rooms)
            {
                ReadSessions(roomBody as JsonObject ?? throw MatrixException.BadJson("rooms must map room IDs to objects"), room, keys);
            }
        }

        var change = await hs.KeyBackups.PutKeysAsync(requester.UserId, version, keys, ctx.RequestAborted);
        if (change.WrongVersion)
        {
            if (change.CurrentVersion is null)
            {
                throw NoSuchVersion();
            }

            throw MatrixException.Of(403, ErrCode.WrongRoomKeysVersion, "Wrong backup version: it is not the current one",
                new JsonObject { ["current_version"] = Text(change.CurrentVersion.Value) });
        }

        return new JsonObject { ["etag"] = Text(change.Etag), ["count"] = change.Count };
    }

    private static async ValueTask<JsonNode> GetAsync(HttpContext ctx, HomeserverServices hs, string? roomId, string? sessionId)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        var version = RequiredVersion(ctx);
        _ = await hs.KeyBackups.GetVersionAsync(requester.UserId, version, ctx.RequestAborted) ?? throw NoSuchVersion();
        var keys = await hs.KeyBackups.GetKeysAsync(requester.UserId, version, roomId, sessionId, ctx.RequestAborted);
        if (sessionId is not null)
        {
            return keys.Count == 1 ? KeyJson(keys[0]) : throw MatrixException.NotFound("No key backed up for this session");
        }

        var rooms = new JsonObject();
        foreach (var key in keys)
        {
            var room = rooms[key.RoomId] as JsonObject ?? (JsonObject)(rooms[key.RoomId] = new JsonObject { ["sessions"] = new JsonObject() });
            room["sessions"]![key.SessionId] = KeyJson(key);
        }

        return roomId is not null
            ? rooms[roomId] is JsonObject r ? r.DeepClone() : new JsonObject { ["sessions"] = new JsonObject() }
            : new JsonObject { ["rooms"] = rooms };
    }

    private static async ValueTask<JsonNode> DeleteAsync(HttpContext ctx, HomeserverServices hs, string? roomId, string? sessionId)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        var version = RequiredVersion(ctx);
        var change = await hs.KeyBackups.DeleteKeysAsync(requester.UserId, version, roomId, sessionId, ctx.RequestAborted) ?? throw NoSuchVersion();
        return new JsonObject { ["etag"] = Text(change.Etag), ["count"] = change.Count };
    }

    private static async Task<JsonObject> VersionJsonAsync(HomeserverServices hs, string userId, long? version, CancellationToken ct)
    {
        var row = await hs.KeyBackups.GetVersionAsync(userId, version, ct) ?? throw NoSuchVersion();
        return new JsonObject
        {
            ["algorithm"] = row.Algorithm,
            ["auth_data"] = CanonicalJson.Parse(row.AuthData, allowFloats: true),
            ["count"] = await hs.KeyBackups.CountAsync(userId, row.Version, ct),
            ["etag"] = Text(row.Etag),
            ["version"] = Text(row.Version),
        };
    }

    private static void ReadSessions(JsonObject roomBody, string roomId, List<BackupKeyRow> into)
    {
        var sessions = roomBody.OptionalObject("sessions") ?? throw MatrixException.MissingParam("Missing 'sessions'");
        foreach (var (sessionId, data) in sessions)
        {
            into.Add(ReadKey(data as JsonObject ?? throw MatrixException.BadJson("sessions must map session IDs to key data objects"), roomId, sessionId));
        }
    }

    private static BackupKeyRow ReadKey(JsonObject data, string roomId, string sessionId)
    {
        if (roomId.Length is 0 or > 255 || sessionId.Length is 0 or > 255)
        {
            throw MatrixException.InvalidParam("Room and session IDs must be 1 to 255 characters");
        }

        return new BackupKeyRow
        {
            RoomId = roomId,
            SessionId = sessionId,
            FirstMessageIndex = data.OptionalInteger("first_message_index", 0) ?? throw MatrixException.MissingParam("Missing 'first_message_index'"),
            ForwardedCount = data.OptionalInteger("forwarded_count", 0) ?? throw MatrixException.MissingParam("Missing 'forwarded_count'"),
            IsVerified = data.ContainsKey("is_verified") ? data.OptionalBool("is_verified", false) : throw MatrixException.MissingParam("Missing 'is_verified'"),
            SessionData = CanonicalJson.Encode(data.OptionalObject("session_data") ?? throw MatrixException.MissingParam("Missing 'session_data'")),
        };
    }

    private static JsonObject KeyJson(BackupKeyRow key) => new()
    {
        ["first_message_index"] = key.FirstMessageIndex,
        ["forwarded_count"] = key.ForwardedCount,
        ["is_verified"] = key.IsVerified,
        ["session_data"] = CanonicalJson.Parse(key.SessionData, allowFloats: true),
    };

    private static long RequiredVersion(HttpContext ctx) =>
        ParseVersion(ctx.Query("version") ?? throw MatrixException.MissingParam("Missing 'version' query parameter"));

    /// <summary>Versions are decimal numbers; anything else names no version (404, as in Synapse).</summary>
    private static long ParseVersion(string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : throw NoSuchVersion();

    private static MatrixException NoSuchVersion() => MatrixException.NotFound("Unknown backup version");

    private static string Text(long n) => n.ToString(CultureInfo.InvariantCulture);
}
