using System.Data.Common;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Storage;

namespace Lethe.Homeserver.Accounts;

/// <summary>Creates login sessions: a device (new or existing) and an access token bound to it, plus a refresh token on request.</summary>
public sealed class SessionIssuer(HomeserverConfig config, TimeProvider clock)
{
    /// <summary>Issues a session inside the caller's transaction and returns the login/register response body.</summary>
    public async Task<JsonObject> IssueAsync(DbTransaction tx, string userId, string? deviceId, string? initialDisplayName, bool withRefreshToken)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        deviceId ??= TokenHash.NewDeviceId();
        await DeviceStore.EnsureAsync(tx, userId, deviceId, initialDisplayName, now);
        var accessToken = TokenHash.NewToken("lat_");
        string? refreshToken = null;
        if (withRefreshToken)
        {
            refreshToken = TokenHash.NewToken("lrt_");
            await TokenStore.AddRefreshTokenAsync(tx, new RefreshTokenRecord { TokenHash = TokenHash.Of(refreshToken), UserId = userId, DeviceId = deviceId }, now);
        }

        await TokenStore.AddAccessTokenAsync(tx, new AccessTokenRecord
        {
            TokenHash = TokenHash.Of(accessToken),
            UserId = userId,
            DeviceId = deviceId,
            ValidUntilTs = withRefreshToken ? now + config.RefreshableAccessTokenLifetime : null,
            RefreshTokenHash = refreshToken is null ? null : TokenHash.Of(refreshToken),
        }, now);

        var body = new JsonObject
        {
            ["user_id"] = userId,
            ["access_token"] = accessToken,
            ["device_id"] = deviceId,
            ["home_server"] = config.ServerName,
        };
        if (refreshToken is not null)
        {
            body["refresh_token"] = refreshToken;
            body["expires_in_ms"] = config.RefreshableAccessTokenLifetime;
        }

        return body;
    }

    /// <summary>
    /// Exchanges a refresh token for a new access and refresh token pair; null when the refresh token is unknown.
    /// Using a refresh token spends the one it replaced; <paramref name="retiredAccessTokens"/> receives the access
    /// tokens that went with it, for cache eviction.
    /// </summary>
    public async Task<JsonObject?> RefreshAsync(DbTransaction tx, string refreshToken, List<string> retiredAccessTokens)
    {
        var old = await TokenStore.GetRefreshTokenAsync(tx, TokenHash.Of(refreshToken));
        if (old is null)
        {
            return null;
        }

        retiredAccessTokens.AddRange(await TokenStore.RetireParentAsync(tx, old.TokenHash));

        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var newRefresh = TokenHash.NewToken("lrt_");
        var newAccess = TokenHash.NewToken("lat_");
        await TokenStore.AddRefreshTokenAsync(tx, new RefreshTokenRecord { TokenHash = TokenHash.Of(newRefresh), UserId = old.UserId, DeviceId = old.DeviceId, ParentHash = old.TokenHash }, now);
        await TokenStore.AddAccessTokenAsync(tx, new AccessTokenRecord
        {
            TokenHash = TokenHash.Of(newAccess),
            UserId = old.UserId,
            DeviceId = old.DeviceId,
            ValidUntilTs = now + config.RefreshableAccessTokenLifetime,
            RefreshTokenHash = TokenHash.Of(newRefresh),
        }, now);
        return new JsonObject
        {
            ["access_token"] = newAccess,
            ["refresh_token"] = newRefresh,
            ["expires_in_ms"] = config.RefreshableAccessTokenLifetime,
        };
    }
}
