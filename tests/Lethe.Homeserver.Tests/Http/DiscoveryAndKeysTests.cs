using System.Diagnostics;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Protocol.Crypto;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Http;

public sealed class DiscoveryAndKeysTests
{
    [Fact]
    public async Task VersionsListsSpecVersionsAndUnstableFeatures()
    {
        await using var server = await TestHomeserver.StartAsync();
        var body = await server.GetJsonAsync("/_matrix/client/versions");
        var versions = body["versions"]!.AsArray().Select(v => v!.GetValue<string>()).ToList();
        // r0 for older clients (matrix-nio 0.20), v1.x for current ones; nothing that promises authenticated media yet.
        Assert.Contains("r0.6.1", versions);
        Assert.Contains("v1.1", versions);
        Assert.DoesNotContain("v1.11", versions);
        Assert.IsType<JsonObject>(body["unstable_features"]);
        Assert.True(body["unstable_features"]!["org.matrix.msc3916.stable"]!.GetValue<bool>(), "clients must learn that media needs authentication");
    }

    [Fact]
    public async Task WellKnownClientPointsAtPublicBaseUrlAndMergesExtraContent()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: "extra_well_known_client_content:\n  org.example.support: https://help.example\n  m.homeserver: {base_url: 'https://evil/'}\n");
        var body = await server.GetJsonAsync("/.well-known/matrix/client");
        Assert.Equal("http://127.0.0.1/", body["m.homeserver"]!["base_url"]!.GetValue<string>());
        Assert.Equal("https://help.example", body["org.example.support"]!.GetValue<string>());
    }

    [Fact]
    public async Task WellKnownServerIsServedOnlyWhenEnabled()
    {
        await using (var off = await TestHomeserver.StartAsync())
        {
            await off.GetJsonAsync("/.well-known/matrix/server", 404);
        }

        await using var on = await TestHomeserver.StartAsync(extraYaml: "serve_server_wellknown: true\n");
        Assert.Equal("127.0.0.1:443", (await on.GetJsonAsync("/.well-known/matrix/server"))["m.server"]!.GetValue<string>());
    }

    [Fact]
    public async Task FederationVersionNamesLethe()
    {
        await using var server = await TestHomeserver.StartAsync();
        var body = await server.GetJsonAsync("/_matrix/federation/v1/version");
        Assert.Equal("Lethe", body["server"]!["name"]!.GetValue<string>());
        Assert.Matches(@"^\d+\.\d+\.\d+", body["server"]!["version"]!.GetValue<string>());
    }

    [Fact]
    public async Task HealthSaysOk()
    {
        await using var server = await TestHomeserver.StartAsync();
        Assert.Equal("OK", await server.Client.GetStringAsync("/health"));
    }

    [Fact]
    public async Task KeyResponseIsSelfSignedAndValidForTheRefreshInterval()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: "key_refresh_interval: 2h\n");
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var body = await server.GetJsonAsync("/_matrix/key/v2/server");
        Assert.Equal("test.local", body["server_name"]!.GetValue<string>());
        var validUntil = body["valid_until_ts"]!.GetValue<long>();
        Assert.InRange(validUntil - before, 2 * 3_600_000 - 60_000, 2 * 3_600_000 + 60_000);
        var (keyId, keyNode) = Assert.Single(body["verify_keys"]!.AsObject());
        Assert.Equal(server.Host.SigningKey.KeyId, keyId);
        Assert.True(Base64Unpadded.TryDecode(keyNode!["key"]!.GetValue<string>(), out var publicKey));
        Assert.True(JsonSigning.Verify(body, "test.local", keyId, publicKey));

        // The deprecated per-key path answers the same way.
        var legacy = await server.GetJsonAsync("/_matrix/key/v2/server/" + Uri.EscapeDataString(keyId));
        Assert.Equal(keyId, Assert.Single(legacy["verify_keys"]!.AsObject()).Key);
    }

    [Fact]
    public async Task KeyResponseVerifiesWithAnIndependentEd25519Implementation()
    {
        await using var server = await TestHomeserver.StartAsync();
        var json = await server.Client.GetStringAsync("/_matrix/key/v2/server");

        // PyNaCl (Debian's python3-nacl) checks the signature over the canonical JSON, computed by Python's json module.
        const string script = """
            import json, sys, base64
            from nacl.signing import VerifyKey
            def b64(s): return base64.b64decode(s + "=" * (-len(s) % 4))
            doc = json.loads(sys.stdin.read())
            sigs = doc.pop("signatures"); doc.pop("unsigned", None)
            canonical = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
            (key_id, key), = doc["verify_keys"].items()
            VerifyKey(b64(key["key"])).verify(canonical, b64(sigs[doc["server_name"]][key_id]))
            print("verified", key_id)
            """;
        var psi = new ProcessStartInfo("/usr/bin/python3", ["-c", script]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var python = Process.Start(psi)!;
        await python.StandardInput.WriteAsync(json);
        python.StandardInput.Close();
        var stdout = await python.StandardOutput.ReadToEndAsync();
        var stderr = await python.StandardError.ReadToEndAsync();
        await python.WaitForExitAsync();
        Assert.True(python.ExitCode == 0, "PyNaCl rejected the key response (install python3-nacl; ./test.sh does):\n" + stderr);
        Assert.Equal($"verified {server.Host.SigningKey.KeyId}", stdout.Trim());
    }

    [Fact]
    public async Task SigningKeyIsGeneratedOnceAndReusedAcrossRestarts()
    {
        var dir = TestHomeserver.NewTempDir();
        var yaml = $"server_name: test.local\nlisteners: [{{port: 0, bind_addresses: ['127.0.0.1'], resources: [{{names: [federation]}}]}}]\nsigning_key_path: {dir}/sub/k.key\ndatabase: {{name: sqlite3, args: {{database: {dir}/db}}}}\nmedia_store_path: {dir}/m\n";
        var config = Lethe.Homeserver.Configuration.ConfigLoader.Load(yaml, dir);
        string firstKey;
        await using (var first = await LetheHost.StartAsync(config, _ => { }))
        {
            firstKey = first.SigningKey.KeyId;
        }

        var text = await File.ReadAllTextAsync($"{dir}/sub/k.key");
        Assert.Matches(@"^ed25519 a_[A-Za-z0-9_-]+ [A-Za-z0-9+/]{43}\n$", text);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode($"{dir}/sub/k.key"));
        await using var second = await LetheHost.StartAsync(config, _ => { });
        Assert.Equal(firstKey, second.SigningKey.KeyId);
    }

    [Fact]
    public async Task ServesFromPostgresToo()
    {
        await using var server = await TestHomeserver.StartAsync(DatabaseEngine.Postgres);
        Assert.Equal(DatabaseEngine.Postgres, server.Host.Database.Engine);
        await server.GetJsonAsync("/_matrix/client/versions");
        await server.GetJsonAsync("/_matrix/key/v2/server");
    }
}
