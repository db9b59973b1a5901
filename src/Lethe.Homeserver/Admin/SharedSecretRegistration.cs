using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Identifiers;
using Lethe.Storage;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Admin;

/// <summary>
/// Synapse's shared-secret registration (<c>/_synapse/admin/v1/register</c>), so existing tools (synadm,
/// register_new_matrix_user) work: a nonce, then an HMAC-SHA1 over nonce, user, password and admin flag keyed by
/// <c>registration_shared_secret</c>.
/// </summary>
public static class SharedSecretRegistration
{
    private static readonly TimeSpan NonceLifetime = TimeSpan.FromSeconds(60);

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        var nonces = new ConcurrentDictionary<string, DateTimeOffset>(StringComparer.Ordinal);

        // GET /_synapse/admin/v1/register
        app.MapJson("GET", "/_synapse/admin/v1/register", ResourceGroup.Client, ctx =>
        {
            RequireEnabled(hs);
            foreach (var kv in nonces)
            {
                if (kv.Value < hs.Clock.GetUtcNow())
                {
                    nonces.TryRemove(kv.Key, out _);
                }
            }

            var nonce = Convert.ToHexStringLower(SecureRandom.Bytes(32));
            nonces[nonce] = hs.Clock.GetUtcNow() + NonceLifetime;
            return ValueTask.FromResult<JsonNode>(new JsonObject { ["nonce"] = nonce });
        });

        // POST /_synapse/admin/v1/register
        app.MapJson("POST", "/_synapse/admin/v1/register", ResourceGroup.Client, async ctx =>
        {
            var secret = RequireEnabled(hs);
            var body = await JsonBody.ReadObjectAsync(ctx);
            var nonce = body.RequiredString("nonce", 255);
            if (!nonces.TryRemove(nonce, out var expires) || expires < hs.Clock.GetUtcNow())
            {
                throw MatrixException.Of(400, ErrCode.Unknown, "Unrecognised nonce");
            }

            var username = body.RequiredString("username", 255);
            var password = body.RequiredString("password", AccountEndpoints.MaxPasswordBytes);
            var admin = body.OptionalBool("admin", false);
            var userType = body.OptionalString("user_type", 64);
            var mac = body.RequiredString("mac", 255);
            var expected = Mac(secret, nonce, username, password, admin, userType);
            if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(mac.ToLowerInvariant())))
            {
                throw MatrixException.Forbidden("HMAC incorrect");
            }

            var localpart = username.ToLowerInvariant();
            if (!UserId.IsValidLocalpart(localpart))
            {
                throw MatrixException.Of(400, ErrCode.InvalidUsername, "User ID may only contain a-z, 0-9, and . _ = - / +");
            }

            var userId = UserId.Create(localpart, ServerName.Parse(hs.ServerName)).Value;
            var hash = await hs.Hasher.HashAsync(password, ctx.RequestAborted);
            var displayname = body.OptionalString("displayname", 256) ?? localpart;
            return await hs.Database.WriteAsync(async tx =>
            {
                if (!await UserStore.TryCreateAsync(tx, new UserRecord { UserId = userId, PasswordHash = hash, IsAdmin = admin, UserType = userType, CreatedTs = hs.NowMs }))
                {
                    throw MatrixException.Of(400, ErrCode.UserInUse, "User ID already taken");
                }

                await ProfileStore.CreateAsync(tx, userId, displayname);
                return (JsonNode)await hs.Sessions.IssueAsync(tx, userId, null, null, false);
            }, ctx.RequestAborted);
        });
    }

    /// <summary>The MAC Synapse expects: hex HMAC-SHA1 of <c>nonce\0user\0password\0admin|notadmin[\0user_type]</c>.</summary>
    public static string Mac(string secret, string nonce, string user, string password, bool admin, string? userType)
    {
        var message = new StringBuilder().Append(nonce).Append('\0').Append(user).Append('\0').Append(password).Append('\0').Append(admin ? "admin" : "notadmin");
        if (userType is not null)
        {
            message.Append('\0').Append(userType);
        }

#pragma warning disable CA5350 // SHA-1 is what Synapse's protocol uses here; as an HMAC it is still sound.
        return Convert.ToHexStringLower(HMACSHA1.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(message.ToString())));
#pragma warning restore CA5350
    }

    private static string RequireEnabled(HomeserverServices hs) =>
        hs.Config.RegistrationSharedSecret ?? throw MatrixException.Of(400, ErrCode.Unknown, "Shared secret registration is not enabled");
}
