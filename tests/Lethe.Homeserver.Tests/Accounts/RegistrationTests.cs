using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Admin;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Accounts;

public sealed class RegistrationTests
{
    private static JsonObject Register(string username, JsonObject? auth = null, string password = "pw123456") => new()
    {
        ["username"] = username,
        ["password"] = password,
        ["auth"] = auth,
    };

    [Fact]
    public async Task RegistrationIsClosedByDefault()
    {
        await using var server = await TestHomeserver.StartAsync();
        var r = await server.NewClient().PostAsync("/_matrix/client/v3/register", Register("alice"));
        r.Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
    }

    [Theory]
    [InlineData(DatabaseEngine.Sqlite)]
    [InlineData(DatabaseEngine.Postgres)]
    public async Task OpenRegistrationRunsTheDummyFlowAndLogsIn(DatabaseEngine engine)
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);
        var client = server.NewClient();
        var body = Register("Alice");
        body.Remove("auth");
        var challenge = (await client.PostAsync("/_matrix/client/v3/register", body)).Expect(HttpStatusCode.Unauthorized);
        Assert.Equal("m.login.dummy", challenge["flows"]![0]!["stages"]![0]!.GetValue<string>());
        var session = challenge["session"]!.GetValue<string>();

        body["auth"] = new JsonObject { ["type"] = "m.login.dummy", ["session"] = session };
        body["initial_device_display_name"] = "Test phone";
        var done = (await client.PostAsync("/_matrix/client/v3/register", body)).Ok();
        Assert.Equal("@alice:test.local", done["user_id"]!.GetValue<string>());
        client.AccessToken = done["access_token"]!.GetValue<string>();
        var whoami = (await client.GetAsync("/_matrix/client/v3/account/whoami")).Ok();
        Assert.Equal("@alice:test.local", whoami["user_id"]!.GetValue<string>());
        Assert.Equal(done["device_id"]!.GetValue<string>(), whoami["device_id"]!.GetValue<string>());
        Assert.False(whoami["is_guest"]!.GetValue<bool>());

        var devices = (await client.GetAsync("/_matrix/client/v3/devices")).Ok();
        Assert.Equal("Test phone", devices["devices"]![0]!["display_name"]!.GetValue<string>());
        var profile = (await client.GetAsync("/_matrix/client/v3/profile/@alice:test.local")).Ok();
        Assert.Equal("alice", profile["displayname"]!.GetValue<string>());
    }

    [Fact]
    public async Task UsernamesAreCheckedBeforeAuthentication()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);
        await server.RegisterAsync("taken");
        var client = server.NewClient();
        (await client.PostAsync("/_matrix/client/v3/register", Register("taken"))).Error(HttpStatusCode.BadRequest, "M_USER_IN_USE");
        (await client.PostAsync("/_matrix/client/v3/register", Register("TAKEN"))).Error(HttpStatusCode.BadRequest, "M_USER_IN_USE");
        (await client.PostAsync("/_matrix/client/v3/register", Register("bad name"))).Error(HttpStatusCode.BadRequest, "M_INVALID_USERNAME");
        (await client.PostAsync("/_matrix/client/v3/register", Register("ünïcode"))).Error(HttpStatusCode.BadRequest, "M_INVALID_USERNAME");
        (await client.PostAsync("/_matrix/client/v3/register", Register(new string('a', 250)))).Error(HttpStatusCode.BadRequest, "M_INVALID_USERNAME");

        var noPassword = Register("fresh");
        noPassword.Remove("password");
        (await client.PostAsync("/_matrix/client/v3/register", noPassword)).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");

        (await client.GetAsync("/_matrix/client/v3/register/available?username=taken")).Error(HttpStatusCode.BadRequest, "M_USER_IN_USE");
        (await client.GetAsync("/_matrix/client/v3/register/available?username=a:b")).Error(HttpStatusCode.BadRequest, "M_INVALID_USERNAME");
        Assert.True((await client.GetAsync("/_matrix/client/v3/register/available?username=free")).Ok()["available"]!.GetValue<bool>());
    }

    [Fact]
    public async Task InhibitLoginReturnsNoSessionAndMissingUsernameIsGenerated()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);
        var body = new JsonObject { ["password"] = "pw123456", ["inhibit_login"] = true, ["auth"] = new JsonObject { ["type"] = "m.login.dummy" } };
        var done = (await server.NewClient().PostAsync("/_matrix/client/v3/register", body)).Ok();
        Assert.Matches(@"^@\d+:test\.local$", done["user_id"]!.GetValue<string>());
        Assert.False(done.ContainsKey("access_token"));
        Assert.False(done.ContainsKey("device_id"));
    }

    [Fact]
    public async Task RegistrationTokensAreRequiredAndCounted()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: "enable_registration: true\nregistration_requires_token: true\n");
        await UserStoreSeed.AdminAsync(server, "admin");
        var admin = server.NewClient();
        await admin.LoginAsync("admin");
        var created = (await admin.PostAsync("/_synapse/admin/v1/registration_tokens/new", new JsonObject { ["uses_allowed"] = 1 })).Ok();
        var token = created["token"]!.GetValue<string>();
        Assert.Equal(16, token.Length);

        var anon = server.NewClient();
        Assert.True((await anon.GetAsync($"/_matrix/client/v1/register/m.login.registration_token/validity?token={token}")).Ok()["valid"]!.GetValue<bool>());
        Assert.False((await anon.GetAsync("/_matrix/client/v1/register/m.login.registration_token/validity?token=nope")).Ok()["valid"]!.GetValue<bool>());

        var challenge = (await anon.PostAsync("/_matrix/client/v3/register", Register("bob"))).Expect(HttpStatusCode.Unauthorized);
        Assert.Equal("m.login.registration_token", challenge["flows"]![0]!["stages"]![0]!.GetValue<string>());

        var wrong = await anon.PostAsync("/_matrix/client/v3/register", Register("bob", new JsonObject { ["type"] = "m.login.registration_token", ["token"] = "nope" }));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
        Assert.Equal("M_UNAUTHORIZED", wrong.ErrCode);

        // The dummy stage is not offered when a token is required.
        var dummy = await anon.PostAsync("/_matrix/client/v3/register", Register("bob", new JsonObject { ["type"] = "m.login.dummy" }));
        Assert.Equal(HttpStatusCode.Unauthorized, dummy.Status);

        (await anon.PostAsync("/_matrix/client/v3/register", Register("bob", new JsonObject { ["type"] = "m.login.registration_token", ["token"] = token }))).Ok();
        var used = (await admin.GetAsync($"/_synapse/admin/v1/registration_tokens/{token}")).Ok();
        Assert.Equal(1, used["completed"]!.GetValue<int>());
        Assert.Equal(0, used["pending"]!.GetValue<int>());

        // Its single use is spent.
        var again = await anon.PostAsync("/_matrix/client/v3/register", Register("carol", new JsonObject { ["type"] = "m.login.registration_token", ["token"] = token }));
        Assert.Equal(HttpStatusCode.Unauthorized, again.Status);
        Assert.False((await anon.GetAsync($"/_matrix/client/v1/register/m.login.registration_token/validity?token={token}")).Ok()["valid"]!.GetValue<bool>());
    }

    [Fact]
    public async Task RegistrationTokenAdminApiIsForAdminsOnly()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);
        var user = await server.RegisterAsync("plain");
        (await user.PostAsync("/_synapse/admin/v1/registration_tokens/new", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await server.NewClient().GetAsync("/_synapse/admin/v1/registration_tokens")).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");

        await UserStoreSeed.AdminAsync(server, "root");
        var admin = server.NewClient();
        await admin.LoginAsync("root");
        (await admin.PostAsync("/_synapse/admin/v1/registration_tokens/new", new JsonObject { ["token"] = "abc-DEF_1.~" })).Ok();
        (await admin.PostAsync("/_synapse/admin/v1/registration_tokens/new", new JsonObject { ["token"] = "abc-DEF_1.~" })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await admin.PostAsync("/_synapse/admin/v1/registration_tokens/new", new JsonObject { ["token"] = "has space" })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await admin.PutAsync("/_synapse/admin/v1/registration_tokens/abc-DEF_1.~", new JsonObject { ["uses_allowed"] = 5 })).Ok();
        Assert.Equal(5, (await admin.GetAsync("/_synapse/admin/v1/registration_tokens/abc-DEF_1.~")).Ok()["uses_allowed"]!.GetValue<int>());
        Assert.Single((await admin.GetAsync("/_synapse/admin/v1/registration_tokens")).Ok()["registration_tokens"]!.AsArray());
        (await admin.DeleteAsync("/_synapse/admin/v1/registration_tokens/abc-DEF_1.~")).Ok();
        (await admin.GetAsync("/_synapse/admin/v1/registration_tokens/abc-DEF_1.~")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }

    [Fact]
    public async Task SharedSecretRegistrationFollowsSynapsesScheme()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: "registration_shared_secret: 'sh4red secret'\n");
        var anon = server.NewClient();
        var nonce = (await anon.GetAsync("/_synapse/admin/v1/register")).Ok()["nonce"]!.GetValue<string>();

        // The MAC computed independently, the way Synapse's register_new_matrix_user script computes it.
        var mac = await PythonHmacAsync("sh4red secret", nonce, "boss", "pw123456", "admin");
        Assert.Equal(mac, SharedSecretRegistration.Mac("sh4red secret", nonce, "boss", "pw123456", true, null));

        var body = new JsonObject { ["nonce"] = nonce, ["username"] = "boss", ["password"] = "pw123456", ["admin"] = true, ["mac"] = mac };
        var done = (await anon.PostAsync("/_synapse/admin/v1/register", body)).Ok();
        Assert.Equal("@boss:test.local", done["user_id"]!.GetValue<string>());
        Assert.True((await server.Host.Services.Users.GetAsync("@boss:test.local"))!.IsAdmin);

        // A nonce works once; a wrong MAC is refused.
        (await anon.PostAsync("/_synapse/admin/v1/register", body)).Error(HttpStatusCode.BadRequest, "M_UNKNOWN");
        var nonce2 = (await anon.GetAsync("/_synapse/admin/v1/register")).Ok()["nonce"]!.GetValue<string>();
        var forged = new JsonObject { ["nonce"] = nonce2, ["username"] = "mallory", ["password"] = "pw123456", ["admin"] = true, ["mac"] = mac };
        (await anon.PostAsync("/_synapse/admin/v1/register", forged)).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
    }

    [Fact]
    public async Task SharedSecretRegistrationIsOffWithoutASecret()
    {
        await using var server = await TestHomeserver.StartAsync();
        (await server.NewClient().GetAsync("/_synapse/admin/v1/register")).Error(HttpStatusCode.BadRequest, "M_UNKNOWN");
    }

    private static async Task<string> PythonHmacAsync(string secret, string nonce, string user, string password, string admin)
    {
        const string script = """
            import hmac, hashlib, sys
            secret, nonce, user, password, admin = sys.argv[1:6]
            mac = hmac.new(key=secret.encode("utf8"), digestmod=hashlib.sha1)
            for part in (nonce, user, password):
                mac.update(part.encode("utf8")); mac.update(b"\x00")
            mac.update(admin.encode("utf8"))
            print(mac.hexdigest())
            """;
        var psi = new ProcessStartInfo("/usr/bin/python3", ["-c", script, secret, nonce, user, password, admin]) { RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        var output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        return output.Trim();
    }
}

/// <summary>Creates accounts directly in the database, as <c>lethe register-user</c> does.</summary>
public static class UserStoreSeed
{
    /// <summary>Creates a server admin in the database of a config, before any server runs.</summary>
    public static async Task AdminInDatabaseAsync(Lethe.Homeserver.Configuration.HomeserverConfig config, string localpart, string password = "correct horse battery")
    {
        await using var db = await Database.OpenAsync(config.Database);
        await new UserStore(db).TryCreateAsync(new UserRecord
        {
            UserId = $"@{localpart}:{config.ServerName}",
            PasswordHash = await new Lethe.Homeserver.Accounts.PasswordHasher().HashAsync(password),
            IsAdmin = true,
            CreatedTs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        });
    }

    /// <summary>Creates a server admin with the test password.</summary>
    public static async Task AdminAsync(TestHomeserver server, string localpart, string password = "correct horse battery")
    {
        var hs = server.Host.Services;
        await hs.Users.TryCreateAsync(new UserRecord
        {
            UserId = $"@{localpart}:{hs.ServerName}",
            PasswordHash = await hs.Hasher.HashAsync(password),
            IsAdmin = true,
            CreatedTs = hs.NowMs,
        });
    }
}
