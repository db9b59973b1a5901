using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Tests.Infrastructure;

namespace Lethe.Homeserver.Tests.Discovery;

/// <summary><c>GET /voip/turnServer</c>: the TURN server VoIP clients are given, configured with Synapse's <c>turn_*</c> keys.</summary>
public sealed class TurnServerTests
{
    private const string Path = "/_matrix/client/v3/voip/turnServer";

    [Fact]
    public async Task ASharedSecretGivesTimeLimitedCredentialsTheTurnServerCanCheck()
    {
        const string secret = "s3cret-shared-with-coturn";
        var clock = new TestClock();
        // A clock far from real time proves the expiry comes from the server's clock.
        clock.Advance(TimeSpan.FromDays(3));
        var dir = TestHomeserver.NewTempDir();
        var secretFile = System.IO.Path.Combine(dir, "turn.secret");
        await File.WriteAllTextAsync(secretFile, secret + "\n");
        await using var server = await TestHomeserver.StartAsync(clock: clock, extraYaml: TestHomeserver.OpenRegistration + $"""
            turn_uris: ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349?transport=tcp"]
            turn_shared_secret_path: "{secretFile}"
            turn_user_lifetime: 2h

            """);
        var alice = await server.RegisterAsync("alice");

        var body = (await alice.GetAsync(Path)).Ok();
        var username = body["username"]!.GetValue<string>();
        var colon = username.IndexOf(':', StringComparison.Ordinal);
        Assert.Equal(alice.UserId, username[(colon + 1)..]);
        var expiry = long.Parse(username[..colon], NumberStyles.None, CultureInfo.InvariantCulture);
        var expected = clock.GetUtcNow().AddHours(2).ToUnixTimeSeconds();
        Assert.InRange(expiry, expected - 60, expected + 1);

        // The TURN server recomputes the password from the username and the secret it shares with us.
#pragma warning disable CA5350 // The TURN REST API fixes HMAC-SHA1.
        var password = Convert.ToBase64String(HMACSHA1.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(username)));
#pragma warning restore CA5350
        Assert.Equal(password, body["password"]!.GetValue<string>());
        Assert.Equal(7200, body["ttl"]!.GetValue<long>());
        Assert.Equal(["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349?transport=tcp"], body["uris"]!.AsArray().Select(u => u!.GetValue<string>()));

        // Each user gets their own credentials, and the secret is never logged.
        var bob = await server.RegisterAsync("bob");
        var bobs = (await bob.GetAsync(Path)).Ok();
        Assert.EndsWith(":" + bob.UserId, bobs["username"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.NotEqual(password, bobs["password"]!.GetValue<string>());
        Assert.DoesNotContain(secret, server.Log.Text, StringComparison.Ordinal);
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task AFixedUsernameAndPasswordAreHandedOutAsConfigured()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration + """
            turn_uris: ["turn:turn.example.org"]
            turn_username: "lethe"
            turn_password: "fixed-password"

            """);
        var alice = await server.RegisterAsync("alice");
        var body = (await alice.GetAsync(Path)).Ok();
        Assert.Equal("lethe", body["username"]!.GetValue<string>());
        Assert.Equal("fixed-password", body["password"]!.GetValue<string>());
        Assert.Equal(3600, body["ttl"]!.GetValue<long>());
        Assert.Equal(["turn:turn.example.org"], body["uris"]!.AsArray().Select(u => u!.GetValue<string>()));
    }

    [Fact]
    public async Task WithoutATurnServerTheAnswerIsEmptyAndAnAccessTokenIsStillNeeded()
    {
        // turn_uris without credentials offers nothing either (and says so at start-up).
        foreach (var yaml in new[] { "", "turn_uris: [\"turn:turn.example.org\"]\n" })
        {
            await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration + yaml);
            var alice = await server.RegisterAsync("alice");
            Assert.Empty((await alice.GetAsync(Path)).Ok());
            (await server.NewClient().GetAsync(Path)).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
            (await server.NewClient().GetAsync("/_matrix/client/r0/voip/turnServer")).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
        }

        Assert.Contains(Load("turn_uris: [\"turn:turn.example.org\"]\n").Warnings, w => w.StartsWith("turn_uris:", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("turn_uris: [\"http://turn.example.org\"]\n", "turn_uris[0]")]
    [InlineData("turn_uris: \"turn:turn.example.org\"\n", "turn_uris")]
    [InlineData("turn_shared_secret: a\nturn_shared_secret_path: /etc/lethe/turn\n", "turn_shared_secret_path")]
    [InlineData("turn_shared_secret_path: /nonexistent/turn.secret\n", "turn_shared_secret_path")]
    [InlineData("turn_shared_secret: \"\"\n", "turn_shared_secret")]
    [InlineData("turn_username: lethe\n", "turn_password")]
    [InlineData("turn_user_lifetime: 10ms\n", "turn_user_lifetime")]
    [InlineData("turn_user_lifetime: soon\n", "turn_user_lifetime")]
    [InlineData("turn_allow_guests: maybe\n", "turn_allow_guests")]
    public void BadTurnSettingsStopStartUpNamingTheKey(string yaml, string key)
    {
        var e = Assert.Throws<ConfigException>(() => Load(yaml));
        Assert.Equal(key, e.Key);
        Assert.DoesNotContain("s3cret", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TurnSettingsAreReadWithSynapsesDefaults()
    {
        var turn = Load("turn_uris: [\"turn:t.example.org\"]\nturn_shared_secret: x\nturn_allow_guests: false\n").Turn;
        Assert.True(turn.Configured);
        Assert.Equal(3_600_000, turn.UserLifetime);
        Assert.False(turn.AllowGuests);
        Assert.False(Load("").Turn.Configured);
        Assert.True(Load("").Turn.AllowGuests);
    }

    private static HomeserverConfig Load(string yaml) => ConfigLoader.Load("server_name: example.org\n" + yaml, "/etc/lethe");
}
