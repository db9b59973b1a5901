using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Protocol.Crypto;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Keys;

/// <summary>Cross-signing keys and signature uploads.</summary>
public sealed class CrossSigningTests
{
    [Theory]
    [InlineData(DatabaseEngine.Sqlite)]
    [InlineData(DatabaseEngine.Postgres)]
    public async Task CrossSigningKeysUploadOnceFreelyAndAreReplacedOnlyWithThePassword(DatabaseEngine engine)
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);
        var alice = new E2eeDevice(await server.RegisterAsync("alice"));
        var bob = await server.RegisterAsync("bob");

        // First upload: no user-interactive auth (MSC3967).
        var upload = alice.CrossSigningUpload();
        (await alice.Client.PostAsync("/_matrix/client/v3/keys/device_signing/upload", upload)).Ok();
        // Repeating the same keys is a no-op, still without auth.
        (await alice.Client.PostAsync("/_matrix/client/v3/keys/device_signing/upload", upload)).Ok();

        var mine = await alice.Client.QueryKeysAsync(alice.UserId);
        Assert.Equal(upload["master_key"]!.Canonical(), mine["master_keys"]![alice.UserId]!.Canonical());
        Assert.Equal(upload["self_signing_key"]!.Canonical(), mine["self_signing_keys"]![alice.UserId]!.Canonical());
        Assert.Equal(upload["user_signing_key"]!.Canonical(), mine["user_signing_keys"]![alice.UserId]!.Canonical());

        // Others see master and self-signing keys, never the user-signing key.
        var theirs = await bob.QueryKeysAsync(alice.UserId);
        Assert.NotNull(theirs["master_keys"]![alice.UserId]);
        Assert.NotNull(theirs["self_signing_keys"]![alice.UserId]);
        Assert.Null(theirs["user_signing_keys"]![alice.UserId]);

        // Replacing them needs the password.
        var newMaster = E2eeDevice.NewCrossSigningKey();
        var replacement = new JsonObject
        {
            ["master_key"] = alice.CrossSigningKey(newMaster, "master", null),
            ["self_signing_key"] = alice.CrossSigningKey(alice.SelfSigning, "self_signing", newMaster),
        };
        var challenge = await alice.Client.PostAsync("/_matrix/client/v3/keys/device_signing/upload", replacement);
        Assert.Equal(HttpStatusCode.Unauthorized, challenge.Status);
        Assert.Contains("m.login.password", challenge.Body["flows"]!.ToJsonString(), StringComparison.Ordinal);
        replacement["auth"] = alice.Client.PasswordAuth("wrong password", challenge.Body["session"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Unauthorized, (await alice.Client.PostAsync("/_matrix/client/v3/keys/device_signing/upload", replacement)).Status);
        Assert.Equal(upload["master_key"]!.Canonical(), (await bob.QueryKeysAsync(alice.UserId))["master_keys"]![alice.UserId]!.Canonical());
        replacement["auth"] = alice.Client.PasswordAuth("correct horse battery", challenge.Body["session"]!.GetValue<string>());
        (await alice.Client.PostAsync("/_matrix/client/v3/keys/device_signing/upload", replacement)).Ok();
        Assert.Equal(replacement["master_key"]!.Canonical(), (await bob.QueryKeysAsync(alice.UserId))["master_keys"]![alice.UserId]!.Canonical());
    }

    [Fact]
    public async Task MalformedCrossSigningKeysAreRejected()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);
        var alice = new E2eeDevice(await server.RegisterAsync("alice"));
        var bob = new E2eeDevice(await server.RegisterAsync("bob"));
        const string Path = "/_matrix/client/v3/keys/device_signing/upload";

        // Self-signing key not signed by the master key; signed by another key.
        var upload = alice.CrossSigningUpload();
        upload["self_signing_key"] = alice.CrossSigningKey(alice.SelfSigning, "self_signing", null);
        (await alice.Client.PostAsync(Path, upload)).Error(HttpStatusCode.BadRequest, "M_INVALID_SIGNATURE");
        upload["self_signing_key"] = alice.CrossSigningKey(alice.SelfSigning, "self_signing", alice.UserSigning);
        (await alice.Client.PostAsync(Path, upload)).Error(HttpStatusCode.BadRequest, "M_INVALID_SIGNATURE");

        // Wrong usage, wrong user, a key ID that is not the key, two keys.
        upload = alice.CrossSigningUpload();
        upload["master_key"]!["usage"] = new JsonArray("self_signing");
        (await alice.Client.PostAsync(Path, upload)).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        upload = bob.CrossSigningUpload();
        (await alice.Client.PostAsync(Path, upload)).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        upload = alice.CrossSigningUpload();
        upload["master_key"]!["keys"] = new JsonObject { ["ed25519:something"] = alice.Master.PublicKeyBase64 };
        (await alice.Client.PostAsync(Path, upload)).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        upload = alice.CrossSigningUpload();
        upload["master_key"]!["keys"]![alice.SelfSigning.KeyId] = alice.SelfSigning.PublicKeyBase64;
        (await alice.Client.PostAsync(Path, upload)).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");

        // A self-signing key without any master key.
        (await alice.Client.PostAsync(Path, new JsonObject { ["self_signing_key"] = alice.CrossSigningKey(alice.SelfSigning, "self_signing", alice.Master) }))
            .Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        Assert.Null((await alice.Client.QueryKeysAsync(alice.UserId))["master_keys"]![alice.UserId]);
    }

    [Theory]
    [InlineData(DatabaseEngine.Sqlite)]
    [InlineData(DatabaseEngine.Postgres)]
    public async Task ValidSignaturesAreStoredAndServedAndInvalidOnesReportedPerKey(DatabaseEngine engine)
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);
        var alice = new E2eeDevice(await server.RegisterAsync("alice"));
        var bob = new E2eeDevice(await server.RegisterAsync("bob"));
        var carol = await server.RegisterAsync("carol");
        foreach (var d in new[] { alice, bob })
        {
            (await d.UploadAsync(d.DeviceKeys())).Ok();
            (await d.Client.PostAsync("/_matrix/client/v3/keys/device_signing/upload", d.CrossSigningUpload())).Ok();
        }

        // Alice's self-signing key signs her device; her device signs her master key; her user-signing key signs Bob's
        // master key. One more entry is signed by the wrong key and one names an unknown key.
        var device = (await alice.Client.QueryKeysAsync(alice.UserId))["device_keys"]![alice.UserId]![alice.DeviceId]!.DeepClone().AsObject();
        device.Remove("unsigned");
        JsonSigning.Sign(device, alice.UserId, alice.SelfSigning);
        var master = alice.CrossSigningKey(alice.Master, "master", null);
        JsonSigning.Sign(master, alice.UserId, alice.Ed25519);
        var bobMaster = bob.CrossSigningKey(bob.Master, "master", null);
        JsonSigning.Sign(bobMaster, alice.UserId, alice.UserSigning);
        var bobDevice = (await alice.Client.QueryKeysAsync(bob.UserId))["device_keys"]![bob.UserId]![bob.DeviceId]!.DeepClone().AsObject();
        bobDevice.Remove("unsigned");
        JsonSigning.Sign(bobDevice, alice.UserId, alice.UserSigning);

        var body = new JsonObject
        {
            [alice.UserId] = new JsonObject { [alice.DeviceId] = device, [alice.Master.PublicKeyBase64] = master, ["NOSUCHDEVICE"] = device.DeepClone() },
            [bob.UserId] = new JsonObject { [bob.Master.PublicKeyBase64] = bobMaster, [bob.DeviceId] = bobDevice },
        };
        var result = (await alice.Client.PostAsync("/_matrix/client/v3/keys/signatures/upload", body)).Ok();
        var failures = result["failures"]!.AsObject();
        Assert.Equal("M_NOT_FOUND", failures[alice.UserId]!["NOSUCHDEVICE"]!["errcode"]!.GetValue<string>());
        Assert.NotNull(failures[bob.UserId]![bob.DeviceId]!["errcode"]);
        Assert.Null(failures[alice.UserId]![alice.DeviceId]);
        Assert.Null(failures[bob.UserId]![bob.Master.PublicKeyBase64]);

        // A tampered signature is reported, not stored.
        var forged = bob.CrossSigningKey(bob.Master, "master", null);
        forged["signatures"] = new JsonObject { [alice.UserId] = new JsonObject { [alice.UserSigning.KeyId] = Base64Unpadded.Encode(new byte[64]) } };
        var forgedResult = (await alice.Client.PostAsync("/_matrix/client/v3/keys/signatures/upload", new JsonObject { [bob.UserId] = new JsonObject { [bob.Master.PublicKeyBase64] = forged } })).Ok();
        Assert.Equal("M_INVALID_SIGNATURE", forgedResult["failures"]![bob.UserId]![bob.Master.PublicKeyBase64]!["errcode"]!.GetValue<string>());

        // Everyone sees Alice's device signed by her self-signing key and her master key signed by her device.
        var seenByCarol = await carol.QueryKeysAsync(alice.UserId, bob.UserId);
        var servedDevice = seenByCarol["device_keys"]![alice.UserId]![alice.DeviceId]!.AsObject();
        Assert.True(JsonSigning.Verify(servedDevice, alice.UserId, alice.SelfSigning.KeyId, alice.SelfSigning.PublicKey));
        Assert.True(JsonSigning.Verify(seenByCarol["master_keys"]![alice.UserId]!.AsObject(), alice.UserId, "ed25519:" + alice.DeviceId, alice.Ed25519.PublicKey));

        // Alice's signature on Bob's master key is hers to see: Carol does not get it, Alice does.
        Assert.False(JsonSigning.TryGetSignature(seenByCarol["master_keys"]![bob.UserId]!.AsObject(), alice.UserId, alice.UserSigning.KeyId, out _));
        var seenByAlice = await alice.Client.QueryKeysAsync(bob.UserId);
        Assert.True(JsonSigning.Verify(seenByAlice["master_keys"]![bob.UserId]!.AsObject(), alice.UserId, alice.UserSigning.KeyId, alice.UserSigning.PublicKey));
    }
}
