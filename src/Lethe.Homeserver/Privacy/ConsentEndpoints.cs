using Lethe.Homeserver.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Privacy;

/// <summary><c>GET /_matrix/consent</c> (the policy page) and <c>POST /_matrix/consent</c> (accepting it), on listeners with the <c>consent</c> resource.</summary>
public static class ConsentEndpoints
{
    /// <summary>Maps the endpoints when <c>user_consent</c> is configured.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        if (hs.Config.UserConsent is not { } config)
        {
            return;
        }

        app.MapRaw("GET", "/_matrix/consent", ResourceGroup.Consent, async ctx =>
        {
            var localpart = ctx.Query("u");
            var mac = ctx.Query("h");
            var consented = false;
            if (localpart is not null)
            {
                if (mac is null || !hs.Consent.Verify(localpart, mac))
                {
                    await HtmlAsync(ctx, 403, "<!doctype html><title>Forbidden</title><p>This consent link is not valid.</p>");
                    return;
                }

                consented = await hs.Consent.HasConsentedAsync($"@{localpart}:{hs.ServerName}", ctx.RequestAborted);
            }

            await HtmlAsync(ctx, 200, await hs.Consent.PageAsync(ctx.Query("v") ?? config.Version, localpart, mac, consented, ctx.RequestAborted));
        });

        app.MapRaw("POST", "/_matrix/consent", ResourceGroup.Consent, async ctx =>
        {
            if (!ctx.Request.HasFormContentType)
            {
                throw MatrixException.Of(400, ErrCode.NotJson, "Expected a form (application/x-www-form-urlencoded)");
            }

            var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted);
            string? Field(string name) => form.TryGetValue(name, out var v) && v.Count == 1 ? v[0] : null;
            var (localpart, mac, version) = (Field("u"), Field("h"), Field("v"));
            if (localpart is null || mac is null || version is null)
            {
                throw MatrixException.MissingParam("u, h and v are required");
            }

            if (!hs.Consent.Verify(localpart, mac))
            {
                await HtmlAsync(ctx, 403, "<!doctype html><title>Forbidden</title><p>This consent link is not valid.</p>");
                return;
            }

            var userId = $"@{localpart}:{hs.ServerName}";
            if (!await hs.Users.ExistsAsync(userId, ctx.RequestAborted))
            {
                throw MatrixException.NotFound("Unknown user");
            }

            await hs.Consent.RecordAsync(userId, version, ctx.RequestAborted);
            await HtmlAsync(ctx, 200, "<!doctype html><title>Thank you</title><p>Thank you: your agreement is recorded. You can close this page.</p>");
        });
    }

    private static Task HtmlAsync(HttpContext ctx, int status, string html)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "text/html; charset=utf-8";
        ctx.Response.Headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'";
        return ctx.Response.WriteAsync(html, ctx.RequestAborted);
    }
}
