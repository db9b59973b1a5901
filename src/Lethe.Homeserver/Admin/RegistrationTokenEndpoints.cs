using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Lethe.Protocol.Crypto;

namespace Lethe.Homeserver.Admin;

/// <summary>Synapse's admin API for registration tokens (<c>/_synapse/admin/v1/registration_tokens</c>), for server admins.</summary>
public static class RegistrationTokenEndpoints
{
    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        const string Base = "/_synapse/admin/v1/registration_tokens";

        // GET /_synapse/admin/v1/registration_tokens
        app.MapJson("GET", Base, ResourceGroup.Client, async ctx =>
        {
            await RequireAdminAsync(ctx, hs);
            var valid = ctx.Query("valid");
            var tokens = await hs.RegistrationTokens.ListAsync(ctx.RequestAborted);
            var now = hs.NowMs;
            var list = tokens.Where(t => valid is null || IsValid(t, now) == (valid == "true")).Select(t => (JsonNode)ToJson(t)).ToArray();
            return new JsonObject { ["registration_tokens"] = new JsonArray(list) };
        });

        // POST /_synapse/admin/v1/registration_tokens/new
        app.MapJson("POST", Base + "/new", ResourceGroup.Client, async ctx =>
        {
            await RequireAdminAsync(ctx, hs);
            var body = await JsonBody.ReadOptionalObjectAsync(ctx);
            var token = body.OptionalString("token", 64);
            if (token is not null && (token.Length == 0 || !token.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '~' or '-')))
            {
                throw MatrixException.InvalidParam("token must consist of A-Z, a-z, 0-9, '.', '_', '~' and '-'");
            }

            var length = (int)(body.OptionalInteger("length", 1, 64) ?? 16);
            token ??= RandomToken(length);
            var record = new RegistrationTokenRecord
            {
                Token = token,
                UsesAllowed = (int?)body.OptionalInteger("uses_allowed", 0, int.MaxValue),
                ExpiryTime = body.OptionalInteger("expiry_time", hs.NowMs),
            };
            if (!await hs.RegistrationTokens.TryCreateAsync(record, ctx.RequestAborted))
            {
                throw MatrixException.Of(400, ErrCode.InvalidParam, "Token already exists");
            }

            return ToJson(record);
        });

        // GET /_synapse/admin/v1/registration_tokens/{token}
        app.MapJson("GET", Base + "/{token}", ResourceGroup.Client, async ctx =>
        {
            await RequireAdminAsync(ctx, hs);
            var record = await hs.RegistrationTokens.GetAsync(ctx.Route("token"), ctx.RequestAborted) ?? throw MatrixException.NotFound("No such registration token");
            return ToJson(record);
        });

        // PUT /_synapse/admin/v1/registration_tokens/{token}
        app.MapJson("PUT", Base + "/{token}", ResourceGroup.Client, async ctx =>
        {
            await RequireAdminAsync(ctx, hs);
            var token = ctx.Route("token");
            var body = await JsonBody.ReadObjectAsync(ctx);
            var existing = await hs.RegistrationTokens.GetAsync(token, ctx.RequestAborted) ?? throw MatrixException.NotFound("No such registration token");
            var uses = body.ContainsKey("uses_allowed") ? (int?)body.OptionalInteger("uses_allowed", 0, int.MaxValue) : existing.UsesAllowed;
            var expiry = body.ContainsKey("expiry_time") ? body.OptionalInteger("expiry_time", hs.NowMs) : existing.ExpiryTime;
            await hs.RegistrationTokens.UpdateAsync(token, uses, expiry, ctx.RequestAborted);
            return ToJson((await hs.RegistrationTokens.GetAsync(token, ctx.RequestAborted))!);
        });

        // DELETE /_synapse/admin/v1/registration_tokens/{token}
        app.MapJson("DELETE", Base + "/{token}", ResourceGroup.Client, async ctx =>
        {
            await RequireAdminAsync(ctx, hs);
            return await hs.RegistrationTokens.DeleteAsync(ctx.Route("token"), ctx.RequestAborted)
                ? new JsonObject()
                : throw MatrixException.NotFound("No such registration token");
        });
    }

    /// <summary>Authenticates the request and requires a server admin.</summary>
    public static async Task<Requester> RequireAdminAsync(HttpContext ctx, HomeserverServices hs)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        return requester.IsAdmin ? requester : throw MatrixException.Forbidden("You are not a server admin");
    }

    private static bool IsValid(RegistrationTokenRecord t, long now) =>
        (t.ExpiryTime is null || t.ExpiryTime > now) && (t.UsesAllowed is null || t.Completed + t.Pending < t.UsesAllowed);

    private static JsonObject ToJson(RegistrationTokenRecord t) => new()
    {
        ["token"] = t.Token,
        ["uses_allowed"] = t.UsesAllowed,
        ["pending"] = t.Pending,
        ["completed"] = t.Completed,
        ["expiry_time"] = t.ExpiryTime,
    };

    private static string RandomToken(int length)
    {
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";
        return SecureRandom.String(Alphabet, length);
    }
}
