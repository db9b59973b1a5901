using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Discovery;

/// <summary>How clients and servers find and size up this server: spec versions, .well-known, health.</summary>
public static class DiscoveryEndpoints
{
    /// <summary>
    /// Client-server spec versions this server claims: the client API core of each works (docs/client-api.md lists
    /// the optional modules still missing: E2EE, push). v1.11 is not claimed yet (it brings more than authenticated
    /// media); authenticated media itself is announced with the <c>org.matrix.msc3916.stable</c> unstable feature.
    /// </summary>
    public static readonly string[] SupportedVersions =
        ["r0.5.0", "r0.6.0", "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10"];

    /// <summary>
    /// The <c>/voip/turnServer</c> answer: with a shared secret, credentials by the TURN REST API scheme (username
    /// <c>expiry-seconds:user_id</c>, password base64(HMAC-SHA1(secret, username))) that the TURN server checks without
    /// asking us; otherwise the configured fixed username and password. <c>{}</c> when no TURN server is configured, as in Synapse.
    /// </summary>
    public static JsonObject TurnCredentials(TurnConfig turn, string userId, long nowMs)
    {
        if (!turn.Configured)
        {
            return new JsonObject();
        }

        string username, password;
        if (turn.SharedSecret is { } secret)
        {
            username = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{(nowMs + turn.UserLifetime) / 1000}:{userId}");
#pragma warning disable CA5350 // The TURN REST API (and coturn) fixes HMAC-SHA1 here; as an HMAC it is still sound.
            password = Convert.ToBase64String(System.Security.Cryptography.HMACSHA1.HashData(System.Text.Encoding.UTF8.GetBytes(secret), System.Text.Encoding.UTF8.GetBytes(username)));
#pragma warning restore CA5350
        }
        else
        {
            (username, password) = (turn.Username!, turn.Password!);
        }

        return new JsonObject
        {
            ["username"] = username,
            ["password"] = password,
            ["ttl"] = turn.UserLifetime / 1000,
            ["uris"] = new JsonArray(turn.Uris.Select(u => (JsonNode)u).ToArray()),
        };
    }

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        var config = hs.Config;
        // GET /_matrix/client/versions
        app.MapJson("GET", "/_matrix/client/versions", ResourceGroup.Client, _ => ValueTask.FromResult<JsonNode>(new JsonObject
        {
            ["versions"] = new JsonArray(SupportedVersions.Select(v => (JsonNode)v).ToArray()),
            // Authenticated media (MSC3916) is served; clients that see neither v1.11 nor this flag would use the legacy
            // unauthenticated endpoints, which refuse new media while enable_authenticated_media is on.
            ["unstable_features"] = new JsonObject { ["org.matrix.msc3916.stable"] = true },
        }));

        // GET /.well-known/matrix/client
        app.MapJson("GET", "/.well-known/matrix/client", ResourceGroup.Client, _ =>
        {
            var body = new JsonObject { ["m.homeserver"] = new JsonObject { ["base_url"] = config.PublicBaseUrl } };
            if (config.ExtraWellKnownClientContent is { } extra)
            {
                foreach (var kv in extra)
                {
                    if (kv.Key != "m.homeserver")
                    {
                        body[kv.Key] = kv.Value?.DeepClone();
                    }
                }
            }

            return ValueTask.FromResult<JsonNode>(body);
        });

        // GET /.well-known/matrix/server — only when serve_server_wellknown is set, as in Synapse.
        app.MapJson("GET", "/.well-known/matrix/server", ResourceGroup.Federation, _ =>
        {
            if (!config.ServeServerWellKnown)
            {
                throw MatrixException.NotFound(".well-known/matrix/server is not served (serve_server_wellknown is off)");
            }

            var host = new Uri(config.PublicBaseUrl).Authority;
            var delegated = host.Contains(':', StringComparison.Ordinal) && !host.EndsWith(']') ? host : host + ":443";
            return ValueTask.FromResult<JsonNode>(new JsonObject { ["m.server"] = delegated });
        });

        // GET /_matrix/client/v3/capabilities
        app.MapClient("GET", "/capabilities", async ctx =>
        {
            await hs.Auth.RequireAsync(ctx);
            var versions = new JsonObject();
            foreach (var v in Lethe.Protocol.Events.RoomVersion.All)
            {
                versions[v.Identifier] = "stable";
            }

            return new JsonObject
            {
                ["capabilities"] = new JsonObject
                {
                    ["m.change_password"] = new JsonObject { ["enabled"] = true },
                    ["m.room_versions"] = new JsonObject { ["default"] = Lethe.Protocol.Events.RoomVersion.Default.Identifier, ["available"] = versions },
                    ["m.set_displayname"] = new JsonObject { ["enabled"] = true },
                    ["m.set_avatar_url"] = new JsonObject { ["enabled"] = true },
                    ["m.3pid_changes"] = new JsonObject { ["enabled"] = false },
                    ["m.get_login_token"] = new JsonObject { ["enabled"] = false },
                },
            };
        });

        // GET /_matrix/client/v3/voip/turnServer
        app.MapClient("GET", "/voip/turnServer", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            if (requester.IsGuest && !config.Turn.AllowGuests)
            {
                throw MatrixException.Of(403, ErrCode.GuestAccessForbidden, "Guests may not use this server's TURN server");
            }

            return TurnCredentials(config.Turn, requester.UserId, hs.NowMs);
        });

        // GET /health
        app.MapRaw("GET", "/health", ResourceGroup.Health, context =>
        {
            context.Response.ContentType = "text/plain";
            return context.Response.WriteAsync("OK");
        });
    }
}
