using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Sync;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.AccountData;

/// <summary>Account data (global and per room) and room tags, which are per-room account data of type <c>m.tag</c>.</summary>
public static class AccountDataEndpoints
{
    /// <summary>Types the server maintains itself; clients change them through their own APIs.</summary>
    private static readonly HashSet<string> ServerControlled = ["m.fully_read", "m.push_rules"];

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // GET/PUT /_matrix/client/v3/user/{userId}/account_data/{type}
        app.MapClient("GET", "/user/{userId}/account_data/{type}", async ctx =>
        {
            var requester = await RequireSelfAsync(ctx, hs);
            return await GetAsync(hs, requester.UserId, "", ctx.Route("type"), ctx.RequestAborted);
        });
        app.MapClient("PUT", "/user/{userId}/account_data/{type}", async ctx =>
        {
            var requester = await RequireSelfAsync(ctx, hs);
            var content = await JsonBody.ReadObjectAsync(ctx, allowFloats: true);
            await SetAsync(hs, requester.UserId, "", ctx.Route("type"), content, ctx.RequestAborted);
            return new JsonObject();
        });

        // GET/PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}
        app.MapClient("GET", "/user/{userId}/rooms/{roomId}/account_data/{type}", async ctx =>
        {
            var requester = await RequireSelfAsync(ctx, hs);
            return await GetAsync(hs, requester.UserId, RoomOf(ctx), ctx.Route("type"), ctx.RequestAborted);
        });
        app.MapClient("PUT", "/user/{userId}/rooms/{roomId}/account_data/{type}", async ctx =>
        {
            var requester = await RequireSelfAsync(ctx, hs);
            var content = await JsonBody.ReadObjectAsync(ctx, allowFloats: true);
            await SetAsync(hs, requester.UserId, RoomOf(ctx), ctx.Route("type"), content, ctx.RequestAborted);
            return new JsonObject();
        });

        // GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags
        app.MapClient("GET", "/user/{userId}/rooms/{roomId}/tags", async ctx =>
        {
            var requester = await RequireSelfAsync(ctx, hs);
            return new JsonObject { ["tags"] = await TagsAsync(hs, requester.UserId, RoomOf(ctx), ctx.RequestAborted) };
        });

        // PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}
        app.MapClient("PUT", "/user/{userId}/rooms/{roomId}/tags/{tag}", async ctx =>
        {
            var requester = await RequireSelfAsync(ctx, hs);
            var roomId = RoomOf(ctx);
            var tag = ctx.Route("tag");
            if (System.Text.Encoding.UTF8.GetByteCount(tag) > 255)
            {
                throw MatrixException.Of(400, ErrCode.TooLarge, "Tag names are limited to 255 bytes");
            }

            var body = await JsonBody.ReadObjectAsync(ctx, allowFloats: true);
            var info = new JsonObject();
            if (body["order"] is { } order)
            {
                // A number between 0 and 1 that orders rooms within the tag.
                info["order"] = order.DeepClone();
            }

            var tags = await TagsAsync(hs, requester.UserId, roomId, ctx.RequestAborted);
            tags[tag] = info;
            await SetRawAsync(hs, requester.UserId, roomId, "m.tag", new JsonObject { ["tags"] = tags }, ctx.RequestAborted);
            return new JsonObject();
        });

        // DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}
        app.MapClient("DELETE", "/user/{userId}/rooms/{roomId}/tags/{tag}", async ctx =>
        {
            var requester = await RequireSelfAsync(ctx, hs);
            var roomId = RoomOf(ctx);
            var tags = await TagsAsync(hs, requester.UserId, roomId, ctx.RequestAborted);
            tags.Remove(ctx.Route("tag"));
            await SetRawAsync(hs, requester.UserId, roomId, "m.tag", new JsonObject { ["tags"] = tags }, ctx.RequestAborted);
            return new JsonObject();
        });
    }

    private static async Task<Requester> RequireSelfAsync(HttpContext ctx, HomeserverServices hs)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        return ctx.Route("userId") == requester.UserId ? requester : throw MatrixException.Forbidden("You cannot access another user's account data");
    }

    private static string RoomOf(HttpContext ctx)
    {
        var roomId = ctx.Route("roomId");
        return RoomId.TryParse(roomId, out _) ? roomId : throw MatrixException.InvalidParam("Invalid room ID");
    }

    private static async ValueTask<JsonNode> GetAsync(HomeserverServices hs, string userId, string roomId, string type, CancellationToken ct)
    {
        if (type == "m.push_rules" && roomId.Length == 0)
        {
            // The rules in force (server defaults plus the user's changes), also for users who never changed one.
            return (await hs.Push.Rules.GetAsync(userId, ct)).ToAccountData();
        }

        var content = await hs.AccountData.GetAsync(userId, roomId, type, ct);
        return content is null ? throw MatrixException.NotFound("No account data of that type") : AccountDataJson.Parse(content);
    }

    private static Task SetAsync(HomeserverServices hs, string userId, string roomId, string type, JsonObject content, CancellationToken ct)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(type) > 255)
        {
            throw MatrixException.Of(400, ErrCode.TooLarge, "Account data types are limited to 255 bytes");
        }

        if (ServerControlled.Contains(type))
        {
            throw MatrixException.Of(405, ErrCode.BadJson, $"{type} is maintained by the server and cannot be set this way");
        }

        return SetRawAsync(hs, userId, roomId, type, content, ct);
    }

    /// <summary>Stores account data without the client-facing checks, advances the stream and wakes the user's syncs.</summary>
    public static async Task SetRawAsync(HomeserverServices hs, string userId, string roomId, string type, JsonObject content, CancellationToken ct)
    {
        var stream = await hs.AccountData.SetAsync(userId, roomId, type, AccountDataJson.Encode(content), ct);
        if (type == "m.ignored_user_list" && roomId.Length == 0)
        {
            hs.ForgetIgnoredUsers(userId);
        }

        hs.Streams.Advance(StreamTracker.AccountData, stream);
        hs.Notifier.Notify(userId);
    }

    private static async Task<JsonObject> TagsAsync(HomeserverServices hs, string userId, string roomId, CancellationToken ct)
    {
        var content = await hs.AccountData.GetAsync(userId, roomId, "m.tag", ct);
        return content is not null && AccountDataJson.Parse(content)["tags"] is JsonObject tags ? (JsonObject)tags.DeepClone() : [];
    }
}

/// <summary>How account data is stored: plain UTF-8 JSON (it is never signed, and may hold floats).</summary>
public static class AccountDataJson
{
    /// <summary>Bytes to store.</summary>
    public static byte[] Encode(JsonObject content) => System.Text.Encoding.UTF8.GetBytes(content.ToJsonString(new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));

    /// <summary>Stored bytes back to JSON.</summary>
    public static JsonObject Parse(byte[] stored) => CanonicalJson.Parse(stored, allowFloats: true) as JsonObject ?? [];
}
