using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Identifiers;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Accounts;

/// <summary>Global profiles: display name and avatar URL.</summary>
public static class ProfileEndpoints
{
    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // GET /_matrix/client/v3/profile/{userId}
        app.MapClient("GET", "/profile/{userId}", async ctx =>
        {
            var profile = await LoadAsync(ctx, hs);
            var json = new JsonObject();
            if (profile.Displayname is not null)
            {
                json["displayname"] = profile.Displayname;
            }

            if (profile.AvatarUrl is not null)
            {
                json["avatar_url"] = profile.AvatarUrl;
            }

            return json;
        });

        // GET /_matrix/client/v3/profile/{userId}/displayname
        app.MapClient("GET", "/profile/{userId}/displayname", async ctx =>
        {
            var profile = await LoadAsync(ctx, hs);
            return profile.Displayname is null ? throw MatrixException.NotFound("No display name set") : new JsonObject { ["displayname"] = profile.Displayname };
        });

        // GET /_matrix/client/v3/profile/{userId}/avatar_url
        app.MapClient("GET", "/profile/{userId}/avatar_url", async ctx =>
        {
            var profile = await LoadAsync(ctx, hs);
            return profile.AvatarUrl is null ? throw MatrixException.NotFound("No avatar set") : new JsonObject { ["avatar_url"] = profile.AvatarUrl };
        });

        // PUT /_matrix/client/v3/profile/{userId}/displayname
        app.MapClient("PUT", "/profile/{userId}/displayname", async ctx =>
        {
            var (userId, body) = await AuthorizeChangeAsync(ctx, hs);
            var name = body.OptionalString("displayname", 256);
            await hs.Profiles.SetDisplaynameAsync(userId, string.IsNullOrEmpty(name) ? null : name, ctx.RequestAborted);
            await hs.Memberships.PropagateProfileAsync(userId, ctx.RequestAborted);
            return new JsonObject();
        });

        // PUT /_matrix/client/v3/profile/{userId}/avatar_url
        app.MapClient("PUT", "/profile/{userId}/avatar_url", async ctx =>
        {
            var (userId, body) = await AuthorizeChangeAsync(ctx, hs);
            var url = body.OptionalString("avatar_url", 1024);
            if (!string.IsNullOrEmpty(url) && !url.StartsWith("mxc://", StringComparison.Ordinal))
            {
                throw MatrixException.InvalidParam("avatar_url must be an mxc:// URI");
            }

            await hs.Profiles.SetAvatarUrlAsync(userId, string.IsNullOrEmpty(url) ? null : url, ctx.RequestAborted);
            await hs.Memberships.PropagateProfileAsync(userId, ctx.RequestAborted);
            return new JsonObject();
        });
    }

    private static async Task<Storage.ProfileRecord> LoadAsync(HttpContext ctx, HomeserverServices hs)
    {
        var userId = ctx.Route("userId");
        if (!UserId.TryParse(userId, out var parsed))
        {
            throw MatrixException.InvalidParam("Invalid user ID");
        }

        if (parsed.Server.Value != hs.ServerName)
        {
            // Remote profiles need federation.
            throw MatrixException.NotFound("Profile not found");
        }

        var user = await hs.Users.GetAsync(userId, ctx.RequestAborted);
        if (user is null || user.Deactivated)
        {
            throw MatrixException.NotFound("Profile not found");
        }

        return await hs.Profiles.GetAsync(userId, ctx.RequestAborted) ?? new Storage.ProfileRecord(null, null);
    }

    private static async Task<(string UserId, JsonObject Body)> AuthorizeChangeAsync(HttpContext ctx, HomeserverServices hs)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        var userId = ctx.Route("userId");
        if (userId != requester.UserId && !requester.IsAdmin)
        {
            throw MatrixException.Forbidden("You cannot change another user's profile");
        }

        if (await hs.Users.GetAsync(userId, ctx.RequestAborted) is null)
        {
            throw MatrixException.NotFound("User not found");
        }

        return (userId, await JsonBody.ReadObjectAsync(ctx));
    }
}
