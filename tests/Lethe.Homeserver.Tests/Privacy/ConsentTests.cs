using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Privacy;

/// <summary>Consent to the privacy policy: sends blocked until the current version is accepted, a notice asking for it, the policy page, and consent at registration.</summary>
public abstract class ConsentTests(DatabaseEngine engine)
{
    private const string Config = """
        form_secret: "a form secret for the tests"
        server_notices:
          system_mxid_localpart: notices
        user_consent:
          version: "1.0"
          policy_name: "Our Privacy Policy"
          block_events_error: "To continue, read and agree to %(consent_uri)s"
          server_notice_content:
            msgtype: m.text
            body: "Please read and agree to %(consent_uri)s"

        """;

    private static string PathOf(string uri) => new Uri(uri).PathAndQuery;

    [Fact]
    public async Task SendsAreBlockedUntilTheCurrentVersionIsAccepted()
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + Config, resources: "client, consent");
        var bob = await server.RegisterAsync("bob");

        var root = server.NewClient();
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        await root.LoginAsync("root");
        await server.Host.Services.Consent.RecordAsync(root.UserId, "1.0", CancellationToken.None);
        var other = await root.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        var blocked = await bob.PostAsync("/_matrix/client/v3/createRoom", new JsonObject());
        blocked.Error(HttpStatusCode.Forbidden, "M_CONSENT_NOT_GIVEN");
        var consentUri = blocked.Body["consent_uri"]!.GetValue<string>();
        Assert.Contains("/_matrix/consent?u=bob&h=", consentUri, StringComparison.Ordinal);
        Assert.Contains(consentUri, blocked.Body["error"]!.GetValue<string>(), StringComparison.Ordinal);

        // Joining, knocking and inviting are blocked too; a user who agreed (root) is not.
        (await bob.PostAsync($"/_matrix/client/v3/join/{Uri.EscapeDataString(other)}", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_CONSENT_NOT_GIVEN");
        (await bob.PostAsync($"/_matrix/client/v3/knock/{Uri.EscapeDataString(other)}", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_CONSENT_NOT_GIVEN");
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(other)}/invite", new JsonObject { ["user_id"] = root.UserId })).Error(HttpStatusCode.Forbidden, "M_CONSENT_NOT_GIVEN");
        await root.SendTextAsync(other, "root agreed and can talk");

        // Syncing brings the server notice with the link; joining the notices room is allowed.
        var invite = (await bob.SyncAsync())["rooms"]!["invite"]!.AsObject().Single();
        await bob.JoinAsync(invite.Key);
        var notices = (await bob.GetAsync($"/_matrix/client/v3/rooms/{invite.Key}/messages?dir=b&limit=10")).Ok()["chunk"]!.AsArray()
            .Where(e => e!["type"]!.GetValue<string>() == "m.room.message").ToList();
        Assert.Contains(consentUri, Assert.Single(notices)!["content"]!["body"]!.GetValue<string>(), StringComparison.Ordinal);
        await bob.SyncAsync();
        Assert.Single((await bob.GetAsync($"/_matrix/client/v3/rooms/{invite.Key}/messages?dir=b&limit=10")).Ok()["chunk"]!.AsArray(),
            e => e!["type"]!.GetValue<string>() == "m.room.message");

        // The policy page renders with the form; a forged link is refused.
        using (var page = await server.Client.GetAsync(PathOf(consentUri)))
        {
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
            var html = await page.Content.ReadAsStringAsync();
            Assert.Contains("Our Privacy Policy", html, StringComparison.Ordinal);
            Assert.Contains("<form method=\"post\"", html, StringComparison.Ordinal);
        }

        using (var forged = await server.Client.GetAsync("/_matrix/consent?u=bob&h=00"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
        }

        var query = System.Web.HttpUtility.ParseQueryString(new Uri(consentUri).Query);
        async Task<HttpStatusCode> AgreeAsync(string version)
        {
            using var form = new FormUrlEncodedContent(new Dictionary<string, string> { ["u"] = query["u"]!, ["h"] = query["h"]!, ["v"] = version });
            using var response = await server.Client.PostAsync("/_matrix/consent", form);
            return response.StatusCode;
        }

        // Agreeing to an older version is recorded but does not unblock.
        Assert.Equal(HttpStatusCode.OK, await AgreeAsync("0.9"));
        (await bob.PostAsync("/_matrix/client/v3/createRoom", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_CONSENT_NOT_GIVEN");
        Assert.Equal(HttpStatusCode.OK, await AgreeAsync("1.0"));
        var roomId = await bob.CreateRoomAsync(new JsonObject());
        await bob.SendTextAsync(roomId, "free to talk");
    }

    [Fact]
    public async Task ANewPolicyVersionBlocksEveryoneAgainUntilTheyAgreeToIt()
    {
        var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + Config, resources: "client, consent");
        LetheHost? second = null;
        try
        {
            var bob = await server.RegisterAsync("bob");
            var blocked = await bob.PostAsync("/_matrix/client/v3/createRoom", new JsonObject());
            blocked.Error(HttpStatusCode.Forbidden, "M_CONSENT_NOT_GIVEN");
            var query = System.Web.HttpUtility.ParseQueryString(new Uri(blocked.Body["consent_uri"]!.GetValue<string>()).Query);
            async Task AgreeAsync(HttpClient http, string version)
            {
                using var form = new FormUrlEncodedContent(new Dictionary<string, string> { ["u"] = query["u"]!, ["h"] = query["h"]!, ["v"] = version });
                using var response = await http.PostAsync("/_matrix/consent", form);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            await AgreeAsync(server.Client, "1.0");
            var roomId = await bob.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
            await bob.SendTextAsync(roomId, "agreed to 1.0");

            // The operator publishes version 2.0 of the policy and restarts the server on the same database.
            await server.Host.StopAsync();
            var configPath = Path.Combine(server.Dir, "homeserver.yaml");
            await File.WriteAllTextAsync(configPath, (await File.ReadAllTextAsync(configPath)).Replace("version: \"1.0\"", "version: \"2.0\"", StringComparison.Ordinal));
            second = await LetheHost.StartAsync(ConfigLoader.LoadFile(configPath), _ => { });
            using var http = new HttpClient { BaseAddress = new Uri(second.Addresses[0].Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal) + "/") };
            var bob2 = new MatrixClient(http, bob.AccessToken);

            // Agreeing to 1.0 no longer counts: sending, creating and joining are refused until Bob agrees to 2.0.
            (await bob2.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "still agreed?" })).Error(HttpStatusCode.Forbidden, "M_CONSENT_NOT_GIVEN");
            (await bob2.PostAsync("/_matrix/client/v3/createRoom", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_CONSENT_NOT_GIVEN");
            (await bob2.PostAsync($"/_matrix/client/v3/join/{Uri.EscapeDataString(roomId)}", new JsonObject())).Error(HttpStatusCode.Forbidden, "M_CONSENT_NOT_GIVEN");
            await AgreeAsync(http, "1.0");
            (await bob2.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "again 1.0" })).Error(HttpStatusCode.Forbidden, "M_CONSENT_NOT_GIVEN");

            await AgreeAsync(http, "2.0");
            (await bob2.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "agreed to 2.0" })).Ok();
            Assert.Equal("2.0", (await second.Services.Privacy.ConsentAsync(bob.UserId, CancellationToken.None))!.Value.Version);
        }
        finally
        {
            if (second is not null)
            {
                await second.DisposeAsync();
            }

            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task RegistrationCanAskForConsent()
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + Config.Replace("  version: \"1.0\"", "  version: \"1.0\"\n  require_at_registration: true", StringComparison.Ordinal), resources: "client, consent");
        var client = server.NewClient();
        var challenge = await client.PostAsync("/_matrix/client/v3/register", new JsonObject { ["username"] = "carol", ["password"] = "carol's long password" });
        Assert.Equal(HttpStatusCode.Unauthorized, challenge.Status);
        var stages = challenge.Body["flows"]![0]!["stages"]!.AsArray().Select(s => s!.GetValue<string>()).ToList();
        Assert.Contains("m.login.terms", stages);
        var policy = challenge.Body["params"]!["m.login.terms"]!["policies"]!["privacy_policy"]!;
        Assert.Equal("1.0", policy["version"]!.GetValue<string>());
        Assert.Equal("Our Privacy Policy", policy["en"]!["name"]!.GetValue<string>());
        using (var page = await server.Client.GetAsync(PathOf(policy["en"]!["url"]!.GetValue<string>())))
        {
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.DoesNotContain("<form", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var session = challenge.Body["session"]!.GetValue<string>();
        foreach (var stage in stages)
        {
            var step = await client.PostAsync("/_matrix/client/v3/register", new JsonObject
            {
                ["username"] = "carol",
                ["password"] = "carol's long password",
                ["auth"] = new JsonObject { ["type"] = stage, ["session"] = session },
            });
            if (step.Status == HttpStatusCode.OK)
            {
                client.AccessToken = step.Body["access_token"]!.GetValue<string>();
            }
        }

        Assert.NotNull(client.AccessToken);
        var roomId = await client.CreateRoomAsync(new JsonObject());
        await client.SendTextAsync(roomId, "consented at sign-up");
    }

    [Fact]
    public void ConsentNeedsAFormSecretAndItsPolicyPage()
    {
        var minimal = "server_name: example.org\n";
        Assert.Contains("form_secret", Assert.Throws<ConfigException>(() => ConfigLoader.Load(minimal + "user_consent:\n  version: '1'\n", "/etc/lethe")).Message, StringComparison.Ordinal);
        Assert.Contains("template_dir", Assert.Throws<ConfigException>(() => ConfigLoader.Load(minimal + "form_secret: s\nuser_consent:\n  version: '1'\n  template_dir: /nonexistent\n", "/etc/lethe")).Message, StringComparison.Ordinal);
        Assert.Equal("1", ConfigLoader.Load(minimal + "form_secret: s\nuser_consent:\n  version: '1'\n", "/etc/lethe").UserConsent!.Version);
    }
}

public sealed class SqliteConsentTests() : ConsentTests(DatabaseEngine.Sqlite);

public sealed class PostgresConsentTests() : ConsentTests(DatabaseEngine.Postgres);
