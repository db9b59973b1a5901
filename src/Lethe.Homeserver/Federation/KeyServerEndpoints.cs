using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Crypto;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Federation;

/// <summary>Publishes this server's signing key (server-server API "Publishing Keys").</summary>
public static class KeyServerEndpoints
{
    /// <summary>Maps the key endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverConfig config, SigningKey key, TimeProvider clock)
    {
        // GET /_matrix/key/v2/server
        app.MapJson("GET", "/_matrix/key/v2/server", ResourceGroup.Keys, _ => ValueTask.FromResult<JsonNode>(ServerKeys(config, key, clock)));

        // GET /_matrix/key/v2/server/{keyId} — deprecated form; the key ID is ignored, as the spec allows.
        app.MapJson("GET", "/_matrix/key/v2/server/{keyId}", ResourceGroup.Keys, _ => ValueTask.FromResult<JsonNode>(ServerKeys(config, key, clock)));
    }

    /// <summary>The signed key response: our verify key, valid until now + key_refresh_interval.</summary>
    public static JsonObject ServerKeys(HomeserverConfig config, SigningKey key, TimeProvider clock)
    {
        var response = new JsonObject
        {
            ["server_name"] = config.ServerName,
            ["valid_until_ts"] = clock.GetUtcNow().ToUnixTimeMilliseconds() + config.KeyRefreshInterval,
            ["verify_keys"] = new JsonObject { [key.KeyId] = new JsonObject { ["key"] = key.PublicKeyBase64 } },
            ["old_verify_keys"] = new JsonObject(),
        };
        JsonSigning.Sign(response, config.ServerName, key);
        return response;
    }
}
