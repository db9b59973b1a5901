using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Protocol.Crypto;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Keys;

/// <summary>/keys/upload, /keys/query, /keys/claim and the key counts in /sync.</summary>
public sealed class DeviceKeyTests
{
    private static Task<TestHomeserver> StartAsync(DatabaseEngine engine) => TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);

    [Theory]
    [InlineData(DatabaseEngine.Sqlite)]
    [InlineData(DatabaseEngine.Postgres)]
    public async Task UploadedKeysAreQueriedClaimedOnceAndThenTheFallbackKeyIsServed(DatabaseEngine engine)
    {
        await using var server = await StartAsync(engine);
        var alice = new E2eeDevice(await server.RegisterAsync("alice"));
        var bob = await server.RegisterAsync("bob");
        (await alice.Client.PutAsync($"/_matrix/client/v3/devices/{alice.DeviceId}", new JsonObject { ["display_name"] = "Alice's laptop" })).Ok();

        var deviceKeys = alice.DeviceKeys();
        var counts = (await alice.UploadAsync(deviceKeys, alice.OneTimeKeys(3), alice.OneTimeKeys(1, "fb", fallback: true))).Ok();
        Assert.Equal(3, counts["one_time_key_counts"]!["signed_curve25519"]!.GetValue<int>());

        var sync = await alice.Client.SyncAsync();
        Assert.Equal(3, sync["device_one_time_keys_count"]!["signed_curve25519"]!.GetValue<int>());
        Assert.Equal(["signed_curve25519"], sync["device_unused_fallback_key_types"].Strings());

        // Bob sees Alice's signed device keys as uploaded, with the device's name.
        var query = await bob.QueryKeysAsync(alice.UserId);
        var served = query["device_keys"]![alice.UserId]![alice.DeviceId]!.AsObject();
        Assert.Equal("Alice's laptop", served["unsigned"]!["device_display_name"]!.GetValue<string>());
        served.Remove("unsigned");
        Assert.Equal(deviceKeys.Canonical(), served.Canonical());
        Assert.True(JsonSigning.Verify(served, alice.UserId, "ed25519:" + alice.DeviceId, alice.Ed25519.PublicKey));

        // Three claims get the three one-time keys, each once; then the fallback key, which stays available.
        var seen = new HashSet<string>();
        for (var i = 0; i < 3; i++)
        {
            var claimed = (await bob.ClaimAsync((alice.UserId, alice.DeviceId, "signed_curve25519")))["one_time_keys"]![alice.UserId]![alice.DeviceId]!.AsObject();
            var (keyId, key) = Assert.Single(claimed);
            Assert.StartsWith("signed_curve25519:otk", keyId, StringComparison.Ordinal);
            Assert.True(seen.Add(keyId), $"{keyId} was handed out twice");
            Assert.True(JsonSigning.Verify(key!.AsObject(), alice.UserId, "ed25519:" + alice.DeviceId, alice.Ed25519.PublicKey));
        }

        for (var i = 0; i < 2; i++)
        {
            var claimed = (await bob.ClaimAsync((alice.UserId, alice.DeviceId, "signed_curve25519")))["one_time_keys"]![alice.UserId]![alice.DeviceId]!.AsObject();
            Assert.Equal("signed_curve25519:fb0000", Assert.Single(claimed).Key);
        }

        sync = await alice.Client.SyncAsync();
        Assert.Equal(0, sync["device_one_time_keys_count"]!["signed_curve25519"]!.GetValue<int>());
        Assert.Empty(sync["device_unused_fallback_key_types"].Strings());

        // A new fallback key is unused again; re-uploading the same one-time key is harmless.
        (await alice.UploadAsync(fallbackKeys: alice.OneTimeKeys(1, "fb2", fallback: true))).Ok();
        Assert.Equal(["signed_curve25519"], (await alice.Client.SyncAsync())["device_unused_fallback_key_types"].Strings());
        var again = alice.OneTimeKeys(1, "re");
        (await alice.UploadAsync(oneTimeKeys: again)).Ok();
        Assert.Equal(1, (await alice.UploadAsync(oneTimeKeys: again)).Ok()["one_time_key_counts"]!["signed_curve25519"]!.GetValue<int>());

        // A device with nothing to claim is simply absent; a user with no keys answers an empty object.
        var none = await bob.ClaimAsync((bob.UserId, bob.DeviceId, "signed_curve25519"));
        Assert.Empty(none["one_time_keys"]!.AsObject());
        Assert.Empty((await alice.Client.QueryKeysAsync(bob.UserId))["device_keys"]![bob.UserId]!.AsObject());
    }

    [Theory]
    [InlineData(DatabaseEngine.Sqlite)]
    [InlineData(DatabaseEngine.Postgres)]
    public async Task ConcurrentClaimsNeverHandOutAOneTimeKeyTwice(DatabaseEngine engine)
    {
        await using var server = await StartAsync(engine);
        var alice = new E2eeDevice(await server.RegisterAsync("alice"));
        (await alice.UploadAsync(alice.DeviceKeys(), alice.OneTimeKeys(30), alice.OneTimeKeys(1, "fb", fallback: true))).Ok();
        var claimers = new List<MatrixClient>();
        for (var i = 0; i < 4; i++)
        {
            claimers.Add(await server.RegisterAsync("claimer" + i));
        }

        // 60 claims race for 30 keys: every key goes to exactly one claimer, the other 30 get the fallback key.
        var claims = Enumerable.Range(0, 60).Select(async i =>
        {
            var body = await claimers[i % claimers.Count].ClaimAsync((alice.UserId, alice.DeviceId, "signed_curve25519"));
            return Assert.Single(body["one_time_keys"]![alice.UserId]![alice.DeviceId]!.AsObject()).Key;
        });
        var keys = await Task.WhenAll(claims);

        var oneTime = keys.Where(k => k.StartsWith("signed_curve25519:otk", StringComparison.Ordinal)).ToList();
        Assert.Equal(30, oneTime.Count);
        Assert.Equal(30, oneTime.Distinct().Count());
        Assert.Equal(30, keys.Count(k => k == "signed_curve25519:fb0000"));
    }

    [Fact]
    public async Task MalformedKeysAndSignaturesAreRejectedWithClearErrors()
    {
        await using var server = await StartAsync(DatabaseEngine.Sqlite);
        var alice = new E2eeDevice(await server.RegisterAsync("alice"));
        var bob = new E2eeDevice(await server.RegisterAsync("bob"));

        // Keys for another user or device.
        var keys = alice.DeviceKeys();
        keys["user_id"] = bob.UserId;
        (await alice.UploadAsync(keys)).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        keys = alice.DeviceKeys();
        keys["device_id"] = "OTHER";
        (await alice.UploadAsync(keys)).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");

        // No ed25519 key for the device.
        keys = alice.DeviceKeys();
        keys["keys"]!.AsObject().Remove("ed25519:" + alice.DeviceId);
        (await alice.UploadAsync(keys)).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");

        // Tampered after signing, unsigned, signed by another key.
        keys = alice.DeviceKeys();
        keys["algorithms"] = new JsonArray("m.megolm.v1.aes-sha2");
        (await alice.UploadAsync(keys)).Error(HttpStatusCode.BadRequest, "M_INVALID_SIGNATURE");
        keys = alice.DeviceKeys();
        keys.Remove("signatures");
        (await alice.UploadAsync(keys)).Error(HttpStatusCode.BadRequest, "M_INVALID_SIGNATURE");
        keys = bob.DeviceKeys();
        keys["user_id"] = alice.UserId;
        keys["device_id"] = alice.DeviceId;
        keys["keys"]!["ed25519:" + alice.DeviceId] = alice.Ed25519.PublicKeyBase64;
        (await alice.UploadAsync(keys)).Error(HttpStatusCode.BadRequest, "M_INVALID_SIGNATURE");

        // Wrong shapes.
        (await alice.Client.PostAsync("/_matrix/client/v3/keys/upload", new JsonObject { ["device_keys"] = "nope" })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.Client.PostAsync("/_matrix/client/v3/keys/upload", new JsonObject { ["one_time_keys"] = new JsonObject { ["nocolon"] = "x" } })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.Client.PostAsync("/_matrix/client/v3/keys/upload", new JsonObject { ["one_time_keys"] = new JsonObject { ["curve25519:A"] = 5 } })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.Client.PostAsync("/_matrix/client/v3/keys/query", new JsonObject())).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await alice.Client.PostAsync("/_matrix/client/v3/keys/query", new JsonObject { ["device_keys"] = new JsonObject { ["not a user"] = new JsonArray() } })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.Client.PostAsync("/_matrix/client/v3/keys/claim", new JsonObject { ["one_time_keys"] = new JsonObject { [alice.UserId] = "x" } })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.Client.GetAsync("/_matrix/client/v3/keys/changes?from=garbage&to=s1")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.Client.PostAsync("/_matrix/client/v3/keys/upload/OTHERDEVICE", new JsonObject())).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");

        // Now valid device keys; then a signed one-time key with a bad signature, and a reused key ID with another key.
        (await alice.UploadAsync(alice.DeviceKeys())).Ok();
        var otks = alice.OneTimeKeys(1);
        otks.First().Value!["key"] = "AAAA";
        (await alice.UploadAsync(oneTimeKeys: otks)).Error(HttpStatusCode.BadRequest, "M_INVALID_SIGNATURE");
        (await alice.UploadAsync(oneTimeKeys: alice.OneTimeKeys(1, "dup"))).Ok();
        (await alice.UploadAsync(oneTimeKeys: alice.OneTimeKeys(1, "dup"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");

        // Nothing of the rejected uploads was stored.
        var served = (await bob.Client.QueryKeysAsync(alice.UserId))["device_keys"]![alice.UserId]![alice.DeviceId]!.AsObject();
        Assert.Equal(2, served["algorithms"]!.AsArray().Count);
        Assert.Equal(1, (await alice.UploadAsync()).Ok()["one_time_key_counts"]!["signed_curve25519"]!.GetValue<int>());
    }

    [Fact]
    public async Task LegacyPathsServeTheSameEndpoints()
    {
        await using var server = await StartAsync(DatabaseEngine.Sqlite);
        var alice = new E2eeDevice(await server.RegisterAsync("alice"));
        var body = new JsonObject { ["device_keys"] = alice.DeviceKeys() };
        (await alice.Client.PostAsync($"/_matrix/client/r0/keys/upload/{alice.DeviceId}", body)).Ok();
        (await alice.Client.PostAsync("/_matrix/client/unstable/keys/device_signing/upload", alice.CrossSigningUpload())).Ok();
        var query = (await alice.Client.PostAsync("/_matrix/client/r0/keys/query", new JsonObject { ["device_keys"] = new JsonObject { [alice.UserId] = new JsonArray() } })).Ok();
        Assert.NotNull(query["device_keys"]![alice.UserId]![alice.DeviceId]);
        Assert.NotNull(query["master_keys"]![alice.UserId]);
        (await alice.Client.PostAsync("/_matrix/client/unstable/room_keys/version", new JsonObject { ["algorithm"] = "m.megolm_backup.v1.curve25519-aes-sha2", ["auth_data"] = new JsonObject() })).Ok();
        (await alice.Client.PutAsync("/_matrix/client/r0/sendToDevice/m.test/t1", new JsonObject { ["messages"] = new JsonObject() })).Ok();
    }
}
