using Lethe.Homeserver.Http;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Caching.Memory;

namespace Lethe.Homeserver.Accounts;

/// <summary>Turns the access token of a request into a <see cref="Requester"/>, with a short-lived cache in front of the database.</summary>
public sealed class Authenticator(TokenStore tokens, UserStore users, DeviceActivity activity, TimeProvider clock) : IDisposable
{
    private static readonly TimeSpan CacheLifetime = TimeSpan.FromMinutes(5);
    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = 100_000 });

    /// <summary>The request's access token from <c>Authorization: Bearer</c>, or the deprecated <c>access_token</c> query parameter.</summary>
    public static string? TokenOf(HttpContext context)
    {
        var header = context.Request.Headers.Authorization;
        if (header.Count > 0 && header[0] is { } value)
        {
            return value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? value["Bearer ".Length..].Trim() : null;
        }

        return context.Query("access_token");
    }

    /// <summary>Authenticates the request: 401 M_MISSING_TOKEN without a token, 401 M_UNKNOWN_TOKEN for a bad or expired one.</summary>
    public async Task<Requester> RequireAsync(HttpContext context) =>
        await TryAuthenticateAsync(context) ?? throw MatrixException.MissingToken();

    /// <summary>Authenticates the request if it carries a token; null when it carries none.</summary>
    public async Task<Requester?> TryAuthenticateAsync(HttpContext context)
    {
        var token = TokenOf(context);
        if (token is null)
        {
            return null;
        }

        var hash = TokenHash.Of(token);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (!_cache.TryGetValue(hash, out CachedToken? cached) || cached is null)
        {
            var record = await tokens.GetAccessTokenAsync(hash, context.RequestAborted) ?? throw MatrixException.UnknownToken();
            var user = await users.GetAsync(record.UserId, context.RequestAborted);
            if (user is null || user.Deactivated)
            {
                throw MatrixException.UnknownToken();
            }

            if (record.RefreshTokenHash is not null)
            {
                // First use of an access token minted by a refresh: the refresh token it replaced is now spent.
                foreach (var retired in await tokens.RetireParentAsync(record.RefreshTokenHash, context.RequestAborted))
                {
                    Forget(retired);
                }
            }

            cached = new CachedToken(new Requester(record.UserId, record.DeviceId, hash, user.IsAdmin, user.IsGuest), record.ValidUntilTs);
            _cache.Set(hash, cached, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = CacheLifetime });
        }

        if (cached.ValidUntilTs is { } until && until <= now)
        {
            // Expired refreshable token: the client should refresh, not log in again (soft logout).
            throw MatrixException.UnknownToken(softLogout: true);
        }

        activity.Record(cached.Requester.UserId, cached.Requester.DeviceId, now, ClientIp(context), context.Request.Headers.UserAgent.ToString());
        return cached.Requester;
    }

    /// <summary>Drops a token from the cache (logout, device deletion, deactivation, admin change).</summary>
    public void Forget(string tokenHash) => _cache.Remove(tokenHash);

    /// <summary>The client's IP: the socket peer, or X-Forwarded-For's first entry behind a listener with <c>x_forwarded: true</c>.</summary>
    public static string? ClientIp(HttpContext context)
    {
        if (HttpPipeline.ListenerOf(context) is { XForwarded: true }
            && context.Request.Headers["X-Forwarded-For"] is { Count: > 0 } forwarded
            && forwarded[0] is { Length: > 0 } first)
        {
            return first.Split(',')[0].Trim();
        }

        return context.Connection.RemoteIpAddress?.ToString();
    }

    /// <inheritdoc />
    public void Dispose() => _cache.Dispose();

    private sealed record CachedToken(Requester Requester, long? ValidUntilTs);
}
