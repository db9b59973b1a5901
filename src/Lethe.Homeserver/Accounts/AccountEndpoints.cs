using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Events;
using Lethe.Protocol.Identifiers;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Lethe.Protocol.Crypto;

namespace Lethe.Homeserver.Accounts;

/// <summary>Registration, login, logout, whoami, password change, deactivation and token refresh.</summary>
public static class AccountEndpoints
{
    /// <summary>Longest password accepted, in bytes (as Synapse).</summary>
    public const int MaxPasswordBytes = 512;

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // POST /_matrix/client/v3/register
        app.MapClient("POST", "/register", ctx => RegisterAsync(ctx, hs));

        // GET /_matrix/client/v3/register/available
        app.MapClient("GET", "/register/available", async ctx =>
        {
            hs.RateLimiter.Take("rc_registration", Authenticator.ClientIp(ctx) ?? "");
            var username = ctx.Query("username") ?? throw MatrixException.MissingParam("Missing 'username'");
            await CheckUsernameAsync(hs, username.ToLowerInvariant(), ctx.RequestAborted);
            return new JsonObject { ["available"] = true };
        });

        // GET /_matrix/client/v1/register/m.login.registration_token/validity
        app.MapClientV1("GET", "/register/m.login.registration_token/validity", async ctx =>
        {
            hs.RateLimiter.Take("rc_registration_token_validity", Authenticator.ClientIp(ctx) ?? "");
            var token = ctx.Query("token") ?? throw MatrixException.MissingParam("Missing 'token'");
            var record = await hs.RegistrationTokens.GetAsync(token, ctx.RequestAborted);
            var valid = record is not null
                && (record.ExpiryTime is null || record.ExpiryTime > hs.NowMs)
                && (record.UsesAllowed is null || record.Completed + record.Pending < record.UsesAllowed);
            return new JsonObject { ["valid"] = valid };
        });

        // GET /_matrix/client/v3/login
        app.MapClient("GET", "/login", _ => ValueTask.FromResult<JsonNode>(new JsonObject
        {
            ["flows"] = new JsonArray(new JsonObject { ["type"] = "m.login.password" }),
        }));

        // POST /_matrix/client/v3/login
        app.MapClient("POST", "/login", ctx => LoginAsync(ctx, hs));

        // POST /_matrix/client/v3/logout
        app.MapClient("POST", "/logout", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            await DeleteDevicesAsync(hs, requester.UserId, [requester.DeviceId], ctx.RequestAborted);
            return new JsonObject();
        });

        // POST /_matrix/client/v3/logout/all
        app.MapClient("POST", "/logout/all", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var devices = await hs.Devices.ListAsync(requester.UserId, ctx.RequestAborted);
            await DeleteDevicesAsync(hs, requester.UserId, devices.Select(d => d.DeviceId), ctx.RequestAborted);
            return new JsonObject();
        });

        // GET /_matrix/client/v3/account/whoami
        app.MapClient("GET", "/account/whoami", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            return new JsonObject { ["user_id"] = requester.UserId, ["device_id"] = requester.DeviceId, ["is_guest"] = requester.IsGuest };
        });

        // POST /_matrix/client/v3/account/password
        app.MapClient("POST", "/account/password", ctx => ChangePasswordAsync(ctx, hs));

        // POST /_matrix/client/v3/account/deactivate
        app.MapClient("POST", "/account/deactivate", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var body = await JsonBody.ReadOptionalObjectAsync(ctx);
            await hs.Uia.RequireAsync(ctx, body, [[UserInteractiveAuth.Password]], requester.UserId);
            if (body?["erase"] is { } erase && erase.GetValueKind() is not (System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False))
            {
                throw MatrixException.BadJson("erase must be a boolean");
            }

            if (body?["erase"]?.GetValue<bool>() == true)
            {
                await hs.Erasure.EraseAsync(requester.UserId, ctx.RequestAborted);
            }
            else
            {
                await DeactivateAsync(hs, requester.UserId, ctx.RequestAborted);
            }

            return new JsonObject { ["id_server_unbind_result"] = "no-support" };
        });

        // POST /_matrix/client/v3/refresh
        app.MapClient("POST", "/refresh", async ctx =>
        {
            var body = await JsonBody.ReadObjectAsync(ctx);
            var refreshToken = body.RequiredString("refresh_token", 255);
            var retired = new List<string>();
            var result = await hs.Database.WriteAsync(tx => hs.Sessions.RefreshAsync(tx, refreshToken, retired), ctx.RequestAborted);
            retired.ForEach(hs.Auth.Forget);
            return result ?? throw MatrixException.UnknownToken();
        });
    }

    private static async ValueTask<JsonNode> RegisterAsync(HttpContext ctx, HomeserverServices hs)
    {
        var kind = ctx.Query("kind") ?? "user";
        if (kind == "guest")
        {
            throw MatrixException.Of(403, ErrCode.Forbidden, "Guest access is disabled");
        }

        if (kind != "user")
        {
            throw MatrixException.InvalidParam("kind must be user or guest");
        }

        if (!hs.Config.EnableRegistration)
        {
            throw MatrixException.Forbidden("Registration has been disabled");
        }

        hs.RateLimiter.Take("rc_registration", Authenticator.ClientIp(ctx) ?? "");
        var body = await JsonBody.ReadObjectAsync(ctx);
        var username = body.OptionalString("username", 255)?.ToLowerInvariant();
        var password = body.OptionalString("password", MaxPasswordBytes);
        var deviceId = body.OptionalString("device_id", 255);
        var displayName = body.OptionalString("initial_device_display_name", 255);
        var inhibitLogin = body.OptionalBool("inhibit_login", false);
        var wantsRefresh = body.OptionalBool("refresh_token", false);

        // Name problems are reported before authentication, so clients can ask for another name straight away.
        if (username is not null)
        {
            await CheckUsernameAsync(hs, username, ctx.RequestAborted);
        }

        if (string.IsNullOrEmpty(password))
        {
            throw MatrixException.MissingParam("Missing 'password'");
        }

        string[] flow = hs.Config.RegistrationRequiresToken ? [UserInteractiveAuth.RegistrationToken] : [UserInteractiveAuth.Dummy];
        JsonObject? stageParams = null;
        if (hs.Config.UserConsent is { RequireAtRegistration: true } consent)
        {
            flow = [.. flow, UserInteractiveAuth.Terms];
            stageParams = new JsonObject
            {
                [UserInteractiveAuth.Terms] = new JsonObject
                {
                    ["policies"] = new JsonObject
                    {
                        ["privacy_policy"] = new JsonObject
                        {
                            ["version"] = consent.Version,
                            ["en"] = new JsonObject { ["name"] = consent.PolicyName, ["url"] = hs.Consent.PublicUri },
                        },
                    },
                },
            };
        }

        var session = await hs.Uia.RequireAsync(ctx, body, [flow], userId: null, stageParams);
        try
        {
            username ??= await GenerateLocalpartAsync(hs, ctx.RequestAborted);
            var userId = UserId.Create(username, ServerName.Parse(hs.ServerName)).Value;
            var hash = await hs.Hasher.HashAsync(password, ctx.RequestAborted);
            var now = hs.NowMs;
            var response = await hs.Database.WriteAsync(async tx =>
            {
                if (!await UserStore.TryCreateAsync(tx, new UserRecord { UserId = userId, PasswordHash = hash, CreatedTs = now }))
                {
                    throw MatrixException.Of(400, ErrCode.UserInUse, "User ID already taken");
                }

                await ProfileStore.CreateAsync(tx, userId, username);
                return inhibitLogin
                    ? new JsonObject { ["user_id"] = userId, ["home_server"] = hs.ServerName }
                    : await hs.Sessions.IssueAsync(tx, userId, deviceId, displayName, wantsRefresh);
            }, ctx.RequestAborted);
            if (session.ReservedRegistrationToken is { } token)
            {
                await hs.RegistrationTokens.CompleteAsync(token, ctx.RequestAborted);
                session.ReservedRegistrationToken = null;
            }

            if (session.Completed.Contains(UserInteractiveAuth.Terms))
            {
                await hs.Consent.RecordAsync(userId, hs.Config.UserConsent!.Version, ctx.RequestAborted);
            }

            return response;
        }
        finally
        {
            if (session.ReservedRegistrationToken is { } unused)
            {
                await hs.RegistrationTokens.ReleaseAsync(unused);
            }
        }
    }

    private static async Task CheckUsernameAsync(HomeserverServices hs, string localpart, CancellationToken ct)
    {
        if (!UserId.IsValidLocalpart(localpart))
        {
            throw MatrixException.Of(400, ErrCode.InvalidUsername, "User ID may only contain a-z, 0-9, and . _ = - / +");
        }

        var userId = "@" + localpart + ":" + hs.ServerName;
        if (System.Text.Encoding.UTF8.GetByteCount(userId) > 255)
        {
            throw MatrixException.Of(400, ErrCode.InvalidUsername, "User ID is too long");
        }

        if (await hs.Users.ExistsAsync(userId, ct))
        {
            throw MatrixException.Of(400, ErrCode.UserInUse, "User ID already taken");
        }
    }

    private static async Task<string> GenerateLocalpartAsync(HomeserverServices hs, CancellationToken ct)
    {
        while (true)
        {
            var candidate = SecureRandom.Int32(10_000_000, 99_999_999).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!await hs.Users.ExistsAsync("@" + candidate + ":" + hs.ServerName, ct))
            {
                return candidate;
            }
        }
    }

    private static async ValueTask<JsonNode> LoginAsync(HttpContext ctx, HomeserverServices hs)
    {
        var ip = Authenticator.ClientIp(ctx) ?? "";
        hs.RateLimiter.Take("rc_login.address", ip);
        var body = await JsonBody.ReadObjectAsync(ctx);
        var type = body.RequiredString("type", 255);
        if (type != "m.login.password")
        {
            throw MatrixException.Of(400, ErrCode.Unknown, $"Unknown login type {type}");
        }

        var userId = LoginIdentifier.UserIdFrom(body, hs.ServerName)
            ?? throw MatrixException.Forbidden("Only user identifiers (m.id.user) can log in here");
        var password = body.RequiredString("password", MaxPasswordBytes);
        hs.RateLimiter.Take("rc_login.account", userId);
        hs.RateLimiter.EnsureAvailable("rc_login.failed_attempts", userId);

        var user = UserId.TryParse(userId, out var parsed) && parsed.Server.Value == hs.ServerName
            ? await hs.Users.GetAsync(userId, ctx.RequestAborted)
            : null;
        if (!await hs.Hasher.VerifyAsync(user?.PasswordHash, password, ctx.RequestAborted))
        {
            hs.RateLimiter.TryTake("rc_login.failed_attempts", userId, out _);
            throw MatrixException.Forbidden("Invalid username or password");
        }

        if (user!.Deactivated)
        {
            throw MatrixException.Of(403, ErrCode.UserDeactivated, "This account has been deactivated");
        }

        var response = await hs.Database.WriteAsync(tx => hs.Sessions.IssueAsync(
            tx,
            user.UserId,
            body.OptionalString("device_id", 255),
            body.OptionalString("initial_device_display_name", 255),
            body.OptionalBool("refresh_token", false)), ctx.RequestAborted);
        response["well_known"] = new JsonObject { ["m.homeserver"] = new JsonObject { ["base_url"] = hs.Config.PublicBaseUrl } };
        hs.Activity.Record(user.UserId, response["device_id"]!.GetValue<string>(), hs.NowMs, ip, ctx.Request.Headers.UserAgent.ToString());
        return response;
    }

    private static async ValueTask<JsonNode> ChangePasswordAsync(HttpContext ctx, HomeserverServices hs)
    {
        var body = await JsonBody.ReadObjectAsync(ctx);
        var newPassword = body.OptionalString("new_password", MaxPasswordBytes);
        if (string.IsNullOrEmpty(newPassword))
        {
            throw MatrixException.MissingParam("Missing 'new_password'");
        }

        var logoutDevices = body.OptionalBool("logout_devices", true);
        var requester = await hs.Auth.RequireAsync(ctx);
        await hs.Uia.RequireAsync(ctx, body, [[UserInteractiveAuth.Password]], requester.UserId);
        var hash = await hs.Hasher.HashAsync(newPassword, ctx.RequestAborted);
        await hs.Users.SetPasswordHashAsync(requester.UserId, hash, ctx.RequestAborted);
        if (logoutDevices)
        {
            var others = (await hs.Devices.ListAsync(requester.UserId, ctx.RequestAborted)).Select(d => d.DeviceId).Where(d => d != requester.DeviceId);
            await DeleteDevicesAsync(hs, requester.UserId, others, ctx.RequestAborted);
        }

        return new JsonObject();
    }

    /// <summary>Deletes devices and their tokens, and forgets the tokens in the authentication cache.</summary>
    public static async Task DeleteDevicesAsync(HomeserverServices hs, string userId, IEnumerable<string> deviceIds, CancellationToken ct)
    {
        var ids = deviceIds.ToList();
        if (ids.Count == 0)
        {
            return;
        }

        var (hashes, stream) = await hs.Database.WriteAsync(async tx =>
        {
            var all = new List<string>();
            foreach (var id in ids)
            {
                all.AddRange(await TokenStore.AccessTokenHashesAsync(tx, userId, id));
            }

            await DeviceStore.DeleteAsync(tx, userId, ids);
            await PushStore.DeleteForDevicesAsync(tx, userId, ids);
            // The devices' keys and to-device inboxes go with them (cascade); others must hear the device list changed.
            await E2eKeyStore.DeleteDeviceSignaturesAsync(tx, userId, ids);
            return (all, await E2eKeyStore.RecordChangeAsync(tx, userId));
        }, ct);
        hashes.ForEach(hs.Auth.Forget);
        hs.Activity.Forget(userId, ids);
        await hs.DeviceLists.PublishAsync(userId, stream, ct);
        await hs.Push.RefreshPushUsersAsync(ct);
    }

    /// <summary>
    /// Deactivates an account: no password, devices or tokens, and the user leaves every room they are joined to,
    /// invited to or knocking on, as Synapse does. Erasure of their data is the privacy feature's job.
    /// </summary>
    public static async Task DeactivateAsync(HomeserverServices hs, string userId, CancellationToken ct)
    {
        var (hashes, stream) = await hs.Database.WriteAsync(async tx =>
        {
            var all = await TokenStore.AccessTokenHashesAsync(tx, userId);
            await UserStore.DeactivateAsync(tx, userId);
            await PushStore.DeleteAllForUserAsync(tx, userId);
            // Device keys and inboxes went with the devices; cross-signing keys, signatures and key backups go too.
            await E2eKeyStore.DeleteUserAsync(tx, userId);
            await KeyBackupStore.DeleteUserAsync(tx, userId);
            return (all, await E2eKeyStore.RecordChangeAsync(tx, userId));
        }, ct);
        hashes.ForEach(hs.Auth.Forget);
        hs.Activity.Forget(userId);
        await hs.DeviceLists.PublishAsync(userId, stream, ct);
        await hs.Push.RefreshPushUsersAsync(ct);
        var self = new Requester(userId, "", "", IsAdmin: false, IsGuest: false);
        foreach (var (roomId, _) in await hs.StateStore.RoomsForUserAsync(userId, [Membership.Join, Membership.Invite, Membership.Knock], ct))
        {
            try
            {
                await hs.Memberships.ChangeAsync(self, roomId, userId, Membership.Leave, null, null, ct);
            }
            catch (MatrixException e) when (e.Status is 403 or 404)
            {
                // The room no longer lets them leave (or is gone): nothing more to do there.
            }
        }
    }
}
