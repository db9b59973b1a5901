using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Accounts;

/// <summary>Login, tokens, logout, refresh, password change, deactivation, devices.</summary>
public abstract class SessionTests(DatabaseEngine engine) : IAsyncLifetime
{
    private TestHomeserver _server = null!;

    public async ValueTask InitializeAsync() => _server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task LoginAcceptsTheIdentifierFormsClientsUse()
    {
        await _server.RegisterAsync("dora");
        var flows = (await _server.NewClient().GetAsync("/_matrix/client/v3/login")).Ok();
        Assert.Contains(flows["flows"]!.AsArray(), f => f!["type"]!.GetValue<string>() == "m.login.password");

        foreach (var name in new[] { "dora", "DORA", "@dora:test.local" })
        {
            var c = _server.NewClient();
            var result = await c.LoginAsync(name);
            Assert.Equal("@dora:test.local", result["user_id"]!.GetValue<string>());
            Assert.Equal(_server.Client.BaseAddress!.Host, new Uri(result["well_known"]!["m.homeserver"]!["base_url"]!.GetValue<string>()).Host);
        }

        // The deprecated top-level "user" field still works (older clients, matrix-nio 0.20).
        var legacy = (await _server.NewClient().PostAsync("/_matrix/client/r0/login", new JsonObject { ["type"] = "m.login.password", ["user"] = "dora", ["password"] = "correct horse battery" })).Ok();
        Assert.Equal("@dora:test.local", legacy["user_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task WrongPasswordsAndUnknownUsersGetTheSameAnswer()
    {
        await _server.RegisterAsync("eve");
        var c = _server.NewClient();
        var wrong = await c.PostAsync("/_matrix/client/v3/login", new JsonObject { ["type"] = "m.login.password", ["identifier"] = new JsonObject { ["type"] = "m.id.user", ["user"] = "eve" }, ["password"] = "nope" });
        var unknown = await c.PostAsync("/_matrix/client/v3/login", new JsonObject { ["type"] = "m.login.password", ["identifier"] = new JsonObject { ["type"] = "m.id.user", ["user"] = "nobody" }, ["password"] = "nope" });
        wrong.Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        unknown.Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        Assert.Equal(wrong.Body["error"]!.GetValue<string>(), unknown.Body["error"]!.GetValue<string>());
        (await c.PostAsync("/_matrix/client/v3/login", new JsonObject { ["type"] = "m.login.sso" })).Error(HttpStatusCode.BadRequest, "M_UNKNOWN");
        (await c.PostAsync("/_matrix/client/v3/login", new JsonObject { ["type"] = "m.login.password", ["identifier"] = new JsonObject { ["type"] = "m.id.thirdparty", ["medium"] = "email", ["address"] = "a@b" }, ["password"] = "x" }))
            .Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
    }

    [Fact]
    public async Task TokensAreCheckedOnEveryRequest()
    {
        var user = await _server.RegisterAsync("fred");
        var anon = _server.NewClient();
        (await anon.GetAsync("/_matrix/client/v3/account/whoami")).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
        (await new MatrixClient(_server.Client, "lat_bogus").GetAsync("/_matrix/client/v3/account/whoami")).Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
        (await anon.GetAsync("/_matrix/client/v3/account/whoami?access_token=" + user.AccessToken)).Ok();
        Assert.StartsWith("lat_", user.AccessToken, StringComparison.Ordinal);
        Assert.True(user.AccessToken!.Length >= 4 + 43, "256 bits of randomness");
    }

    [Fact]
    public async Task LogoutDeletesTheDeviceAndLogoutAllEveryDevice()
    {
        var first = await _server.RegisterAsync("gina");
        var second = _server.NewClient();
        await second.LoginAsync("gina");
        var third = _server.NewClient();
        await third.LoginAsync("gina");
        Assert.Equal(3, (await first.GetAsync("/_matrix/client/v3/devices")).Ok()["devices"]!.AsArray().Count);

        (await second.PostAsync("/_matrix/client/v3/logout", null)).Ok();
        (await second.GetAsync("/_matrix/client/v3/account/whoami")).Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
        var devices = (await first.GetAsync("/_matrix/client/v3/devices")).Ok()["devices"]!.AsArray();
        Assert.DoesNotContain(devices, d => d!["device_id"]!.GetValue<string>() == second.DeviceId);

        (await first.PostAsync("/_matrix/client/v3/logout/all", null)).Ok();
        (await first.GetAsync("/_matrix/client/v3/account/whoami")).Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
        (await third.GetAsync("/_matrix/client/v3/account/whoami")).Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
    }

    [Fact]
    public async Task RefreshTokensRotateAndRetireTheOldPair()
    {
        await _server.RegisterAsync("hank");
        var c = _server.NewClient();
        var login = await c.LoginAsync("hank", extra: new JsonObject { ["refresh_token"] = true });
        Assert.Equal(300_000, login["expires_in_ms"]!.GetValue<long>());
        var oldAccess = c.AccessToken!;
        var oldRefresh = login["refresh_token"]!.GetValue<string>();

        var refreshed = (await _server.NewClient().PostAsync("/_matrix/client/v3/refresh", new JsonObject { ["refresh_token"] = oldRefresh })).Ok();
        var newAccess = refreshed["access_token"]!.GetValue<string>();
        Assert.NotEqual(oldAccess, newAccess);
        Assert.NotEqual(oldRefresh, refreshed["refresh_token"]!.GetValue<string>());

        // Until the new pair is used, the old access token still works.
        (await new MatrixClient(_server.Client, oldAccess).GetAsync("/_matrix/client/v3/account/whoami")).Ok();
        var whoami = (await new MatrixClient(_server.Client, newAccess).GetAsync("/_matrix/client/v3/account/whoami")).Ok();
        Assert.Equal(c.DeviceId, whoami["device_id"]!.GetValue<string>());
        (await new MatrixClient(_server.Client, oldAccess).GetAsync("/_matrix/client/v3/account/whoami")).Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
        (await _server.NewClient().PostAsync("/_matrix/client/v3/refresh", new JsonObject { ["refresh_token"] = oldRefresh })).Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
    }

    [Fact]
    public async Task PasswordChangeNeedsThePasswordAndLogsOutOtherDevices()
    {
        var main = await _server.RegisterAsync("ivy", "old password");
        var other = _server.NewClient();
        await other.LoginAsync("ivy", "old password");

        var body = new JsonObject { ["new_password"] = "new password" };
        var challenge = (await main.PostAsync("/_matrix/client/v3/account/password", body)).Expect(HttpStatusCode.Unauthorized);
        Assert.Equal("m.login.password", challenge["flows"]![0]!["stages"]![0]!.GetValue<string>());
        var session = challenge["session"]!.GetValue<string>();

        body["auth"] = main.PasswordAuth("wrong", session);
        var failed = (await main.PostAsync("/_matrix/client/v3/account/password", body)).Expect(HttpStatusCode.Unauthorized);
        Assert.Equal("M_FORBIDDEN", failed["errcode"]!.GetValue<string>());

        body["auth"] = main.PasswordAuth("old password", session);
        (await main.PostAsync("/_matrix/client/v3/account/password", body)).Ok();
        (await main.GetAsync("/_matrix/client/v3/account/whoami")).Ok();
        (await other.GetAsync("/_matrix/client/v3/account/whoami")).Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
        await _server.NewClient().LoginAsync("ivy", "new password");
        (await _server.NewClient().PostAsync("/_matrix/client/v3/login", new JsonObject { ["type"] = "m.login.password", ["user"] = "ivy", ["password"] = "old password" }))
            .Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
    }

    [Fact]
    public async Task AuthSessionsCannotBeReusedForAnotherOperation()
    {
        var c = await _server.RegisterAsync("jack");
        var challenge = (await c.PostAsync("/_matrix/client/v3/account/password", new JsonObject { ["new_password"] = "x" })).Expect(HttpStatusCode.Unauthorized);
        var session = challenge["session"]!.GetValue<string>();
        var body = new JsonObject { ["auth"] = c.PasswordAuth("correct horse battery", session) };
        (await c.PostAsync("/_matrix/client/v3/account/deactivate", body)).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        body["auth"]!["session"] = "made-up";
        Assert.Equal(HttpStatusCode.BadRequest, (await c.PostAsync("/_matrix/client/v3/account/deactivate", body)).Status);
    }

    [Fact]
    public async Task DeactivationEndsEverySessionAndFreesNothing()
    {
        var c = await _server.RegisterAsync("kate");
        var body = new JsonObject { ["auth"] = c.PasswordAuth("correct horse battery") };
        var done = (await c.PostAsync("/_matrix/client/v3/account/deactivate", body)).Ok();
        Assert.Equal("no-support", done["id_server_unbind_result"]!.GetValue<string>());
        (await c.GetAsync("/_matrix/client/v3/account/whoami")).Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
        (await _server.NewClient().PostAsync("/_matrix/client/v3/login", new JsonObject { ["type"] = "m.login.password", ["user"] = "kate", ["password"] = "correct horse battery" }))
            .Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        // User IDs are never reused.
        (await _server.NewClient().GetAsync("/_matrix/client/v3/register/available?username=kate")).Error(HttpStatusCode.BadRequest, "M_USER_IN_USE");
        (await _server.NewClient().GetAsync("/_matrix/client/v3/profile/@kate:test.local")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }

    [Fact]
    public async Task DeactivatedUsersLeaveTheirRoomsAndInvites()
    {
        var owner = await _server.RegisterAsync("lola");
        var leaver = await _server.RegisterAsync("lars");
        var joined = await owner.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        var invited = await owner.CreateRoomAsync();
        await leaver.JoinAsync(joined);
        await owner.InviteAsync(invited, leaver.UserId);
        (await leaver.PostAsync("/_matrix/client/v3/account/deactivate", new JsonObject { ["auth"] = leaver.PasswordAuth("correct horse battery") })).Ok();
        foreach (var room in new[] { joined, invited })
        {
            var member = (await owner.GetAsync($"/_matrix/client/v3/rooms/{room}/state/m.room.member/{leaver.UserId}")).Ok();
            Assert.Equal("leave", member["membership"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task DevicesCanBeRenamedAndDeletedWithThePassword()
    {
        var main = await _server.RegisterAsync("leo");
        var phone = _server.NewClient();
        await phone.LoginAsync("leo", extra: new JsonObject { ["initial_device_display_name"] = "Phone", ["device_id"] = "PHONEDEVICE" });
        Assert.Equal("PHONEDEVICE", phone.DeviceId);

        var got = (await main.GetAsync("/_matrix/client/v3/devices/PHONEDEVICE")).Ok();
        Assert.Equal("Phone", got["display_name"]!.GetValue<string>());
        Assert.True(got.ContainsKey("last_seen_ts"), "the phone logged in, so it has been seen");

        (await main.PutAsync("/_matrix/client/v3/devices/PHONEDEVICE", new JsonObject { ["display_name"] = "Old phone" })).Ok();
        Assert.Equal("Old phone", (await main.GetAsync("/_matrix/client/v3/devices/PHONEDEVICE")).Ok()["display_name"]!.GetValue<string>());
        (await main.PutAsync("/_matrix/client/v3/devices/NOPE", new JsonObject { ["display_name"] = "x" })).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await main.GetAsync("/_matrix/client/v3/devices/NOPE")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");

        // Logging in again with the same device ID reuses the device.
        var phoneAgain = _server.NewClient();
        await phoneAgain.LoginAsync("leo", extra: new JsonObject { ["device_id"] = "PHONEDEVICE" });
        Assert.Equal(2, (await main.GetAsync("/_matrix/client/v3/devices")).Ok()["devices"]!.AsArray().Count);

        Assert.Equal(HttpStatusCode.Unauthorized, (await main.DeleteAsync("/_matrix/client/v3/devices/PHONEDEVICE")).Status);
        (await main.DeleteAsync("/_matrix/client/v3/devices/PHONEDEVICE", new JsonObject { ["auth"] = main.PasswordAuth("correct horse battery") })).Ok();
        (await phone.GetAsync("/_matrix/client/v3/account/whoami")).Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
        (await phoneAgain.GetAsync("/_matrix/client/v3/account/whoami")).Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");

        var tablet = _server.NewClient();
        await tablet.LoginAsync("leo");
        (await main.PostAsync("/_matrix/client/v3/delete_devices", new JsonObject { ["devices"] = new JsonArray(tablet.DeviceId), ["auth"] = main.PasswordAuth("correct horse battery") })).Ok();
        (await tablet.GetAsync("/_matrix/client/v3/account/whoami")).Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
        Assert.Single((await main.GetAsync("/_matrix/client/v3/devices")).Ok()["devices"]!.AsArray());
    }

    [Fact]
    public async Task ProfilesCanBeReadByAnyoneAndChangedOnlyByTheirOwner()
    {
        var mia = await _server.RegisterAsync("mia");
        var ned = await _server.RegisterAsync("ned");
        (await mia.PutAsync("/_matrix/client/v3/profile/@mia:test.local/displayname", new JsonObject { ["displayname"] = "Mia 🌸" })).Ok();
        (await mia.PutAsync("/_matrix/client/v3/profile/@mia:test.local/avatar_url", new JsonObject { ["avatar_url"] = "mxc://test.local/abc" })).Ok();
        var profile = (await ned.GetAsync("/_matrix/client/r0/profile/@mia:test.local")).Ok();
        Assert.Equal("Mia 🌸", profile["displayname"]!.GetValue<string>());
        Assert.Equal("mxc://test.local/abc", profile["avatar_url"]!.GetValue<string>());
        Assert.Equal("Mia 🌸", (await ned.GetAsync("/_matrix/client/v3/profile/@mia:test.local/displayname")).Ok()["displayname"]!.GetValue<string>());

        (await ned.PutAsync("/_matrix/client/v3/profile/@mia:test.local/displayname", new JsonObject { ["displayname"] = "pwned" })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await mia.PutAsync("/_matrix/client/v3/profile/@mia:test.local/avatar_url", new JsonObject { ["avatar_url"] = "https://tracker.example/x.png" })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await mia.PutAsync("/_matrix/client/v3/profile/@mia:test.local/displayname", new JsonObject { ["displayname"] = new string('x', 300) })).Error(HttpStatusCode.BadRequest, "M_TOO_LARGE");
        (await ned.GetAsync("/_matrix/client/v3/profile/@nobody:test.local")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await ned.GetAsync("/_matrix/client/v3/profile/not-a-user")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }
}

public sealed class SoftLogoutAndRateLimitTests
{
    [Fact]
    public async Task AnExpiredRefreshableTokenIsASoftLogout()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration + "refreshable_access_token_lifetime: 1\n");
        await server.RegisterAsync("olga");
        var c = server.NewClient();
        await c.LoginAsync("olga", extra: new JsonObject { ["refresh_token"] = true });
        var r = await c.GetAsync("/_matrix/client/v3/account/whoami");
        r.Error(HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
        Assert.True(r.Body["soft_logout"]!.GetValue<bool>());
    }

    [Fact]
    public async Task LoginAttemptsAreRateLimitedPerAddress()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: "rc_login:\n  address: {per_second: 0.001, burst_count: 3}\n");
        var c = server.NewClient();
        var body = new JsonObject { ["type"] = "m.login.password", ["user"] = "nobody", ["password"] = "x" };
        for (var i = 0; i < 3; i++)
        {
            (await c.PostAsync("/_matrix/client/v3/login", body)).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        }

        var limited = await c.PostAsync("/_matrix/client/v3/login", body);
        limited.Error(HttpStatusCode.TooManyRequests, "M_LIMIT_EXCEEDED");
        Assert.True(limited.Body["retry_after_ms"]!.GetValue<long>() > 0);
        Assert.True(limited.Raw.Headers.RetryAfter is not null, "Retry-After header");
    }
}

public sealed class SqliteSessionTests() : SessionTests(DatabaseEngine.Sqlite);

public sealed class PostgresSessionTests() : SessionTests(DatabaseEngine.Postgres);
