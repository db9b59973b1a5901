using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Keys;

/// <summary>Server-side key backup: versions, keys, etag and count, the better-key rules, wrong versions, deactivation.</summary>
public sealed class KeyBackupTests
{
    private const string Algorithm = "m.megolm_backup.v1.curve25519-aes-sha2";
    private const string Room = "!room:test.local";

    private static JsonObject Key(int firstIndex, int forwarded, bool verified, string marker) => new()
    {
        ["first_message_index"] = firstIndex,
        ["forwarded_count"] = forwarded,
        ["is_verified"] = verified,
        ["session_data"] = new JsonObject { ["ciphertext"] = marker, ["ephemeral"] = "e", ["mac"] = "m" },
    };

    private static string Marker(JsonObject key) => key["session_data"]!["ciphertext"]!.GetValue<string>();

    [Theory]
    [InlineData(DatabaseEngine.Sqlite)]
    [InlineData(DatabaseEngine.Postgres)]
    public async Task BackupVersionsAndKeysFollowTheSpec(DatabaseEngine engine)
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        (await alice.GetAsync("/_matrix/client/v3/room_keys/version")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");

        var authData = new JsonObject { ["public_key"] = "abcdefg", ["signatures"] = new JsonObject() };
        var v1 = (await alice.PostAsync("/_matrix/client/v3/room_keys/version", new JsonObject { ["algorithm"] = Algorithm, ["auth_data"] = authData })).Ok()["version"]!.GetValue<string>();
        var info = (await alice.GetAsync("/_matrix/client/v3/room_keys/version")).Ok();
        Assert.Equal(v1, info["version"]!.GetValue<string>());
        Assert.Equal(Algorithm, info["algorithm"]!.GetValue<string>());
        Assert.Equal(authData.Canonical(), info["auth_data"]!.Canonical());
        Assert.Equal(0, info["count"]!.GetValue<int>());
        var etag0 = info["etag"]!.GetValue<string>();

        // Bob has no backup of his own and cannot see Alice's.
        (await bob.GetAsync("/_matrix/client/v3/room_keys/version")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await bob.GetAsync($"/_matrix/client/v3/room_keys/keys?version={v1}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");

        // Store keys three ways: all rooms, one room, one session.
        var put = (await alice.PutAsync($"/_matrix/client/v3/room_keys/keys?version={v1}", new JsonObject
        {
            ["rooms"] = new JsonObject { [Room] = new JsonObject { ["sessions"] = new JsonObject { ["s1"] = Key(5, 1, false, "s1-first") } } },
        })).Ok();
        Assert.Equal(1, put["count"]!.GetValue<int>());
        Assert.NotEqual(etag0, put["etag"]!.GetValue<string>());
        (await alice.PutAsync($"/_matrix/client/v3/room_keys/keys/{Uri.EscapeDataString(Room)}?version={v1}", new JsonObject { ["sessions"] = new JsonObject { ["s2"] = Key(0, 0, false, "s2") } })).Ok();
        var third = (await alice.PutAsync($"/_matrix/client/v3/room_keys/keys/{Uri.EscapeDataString("!other:test.local")}/s3?version={v1}", Key(0, 0, true, "s3"))).Ok();
        Assert.Equal(3, third["count"]!.GetValue<int>());

        // The better-key rules for s1 (unverified, index 5, forwarded once).
        async Task<string> PutS1Async(JsonObject key)
        {
            (await alice.PutAsync($"/_matrix/client/v3/room_keys/keys/{Uri.EscapeDataString(Room)}/s1?version={v1}", key)).Ok();
            return Marker((await alice.GetAsync($"/_matrix/client/v3/room_keys/keys/{Uri.EscapeDataString(Room)}/s1?version={v1}")).Ok());
        }

        var etagBefore = (await alice.GetAsync("/_matrix/client/v3/room_keys/version")).Ok()["etag"]!.GetValue<string>();
        Assert.Equal("s1-first", await PutS1Async(Key(7, 0, false, "worse index")));
        Assert.Equal("s1-first", await PutS1Async(Key(5, 2, false, "more forwards")));
        Assert.Equal(etagBefore, (await alice.GetAsync("/_matrix/client/v3/room_keys/version")).Ok()["etag"]!.GetValue<string>());
        Assert.Equal("fewer forwards", await PutS1Async(Key(5, 0, false, "fewer forwards")));
        Assert.Equal("lower index", await PutS1Async(Key(2, 3, false, "lower index")));
        Assert.Equal("verified", await PutS1Async(Key(9, 9, true, "verified")));
        Assert.Equal("verified", await PutS1Async(Key(0, 0, false, "unverified but earlier")));
        Assert.NotEqual(etagBefore, (await alice.GetAsync("/_matrix/client/v3/room_keys/version")).Ok()["etag"]!.GetValue<string>());

        // Reading back all, one room, one session.
        var all = (await alice.GetAsync($"/_matrix/client/v3/room_keys/keys?version={v1}")).Ok();
        Assert.Equal(["s1", "s2"], all["rooms"]![Room]!["sessions"]!.AsObject().Select(kv => kv.Key).Order().ToList());
        var oneRoom = (await alice.GetAsync($"/_matrix/client/v3/room_keys/keys/{Uri.EscapeDataString(Room)}?version={v1}")).Ok();
        Assert.Equal(2, oneRoom["sessions"]!.AsObject().Count);
        Assert.Empty((await alice.GetAsync($"/_matrix/client/v3/room_keys/keys/{Uri.EscapeDataString("!empty:test.local")}?version={v1}")).Ok()["sessions"]!.AsObject());
        (await alice.GetAsync($"/_matrix/client/v3/room_keys/keys/{Uri.EscapeDataString(Room)}/nope?version={v1}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");

        // A new version becomes current: writing to the old one is refused with the current version named.
        var v2 = (await alice.PostAsync("/_matrix/client/v3/room_keys/version", new JsonObject { ["algorithm"] = Algorithm, ["auth_data"] = new JsonObject { ["public_key"] = "second" } })).Ok()["version"]!.GetValue<string>();
        Assert.NotEqual(v1, v2);
        var wrong = await alice.PutAsync($"/_matrix/client/v3/room_keys/keys/{Uri.EscapeDataString(Room)}/s9?version={v1}", Key(0, 0, false, "x"));
        wrong.Error(HttpStatusCode.Forbidden, "M_WRONG_ROOM_KEYS_VERSION");
        Assert.Equal(v2, wrong.Body["current_version"]!.GetValue<string>());
        Assert.Equal(3, (await alice.GetAsync($"/_matrix/client/v3/room_keys/version/{v1}")).Ok()["count"]!.GetValue<int>());

        // Update auth_data (same algorithm only; the body's version must match the path).
        (await alice.PutAsync($"/_matrix/client/v3/room_keys/version/{v2}", new JsonObject { ["algorithm"] = Algorithm, ["auth_data"] = new JsonObject { ["public_key"] = "second", ["x"] = 1 }, ["version"] = v2 })).Ok();
        Assert.Equal(1, (await alice.GetAsync($"/_matrix/client/v3/room_keys/version/{v2}")).Ok()["auth_data"]!["x"]!.GetValue<int>());
        (await alice.PutAsync($"/_matrix/client/v3/room_keys/version/{v2}", new JsonObject { ["algorithm"] = "other", ["auth_data"] = new JsonObject() })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PutAsync($"/_matrix/client/v3/room_keys/version/{v2}", new JsonObject { ["algorithm"] = Algorithm, ["auth_data"] = new JsonObject(), ["version"] = v1 })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");

        // Deleting keys: one session, one room; then the whole old version.
        var afterDelete = (await alice.DeleteAsync($"/_matrix/client/v3/room_keys/keys/{Uri.EscapeDataString(Room)}/s1?version={v1}")).Ok();
        Assert.Equal(2, afterDelete["count"]!.GetValue<int>());
        Assert.Equal(1, (await alice.DeleteAsync($"/_matrix/client/v3/room_keys/keys/{Uri.EscapeDataString(Room)}?version={v1}")).Ok()["count"]!.GetValue<int>());
        (await alice.DeleteAsync($"/_matrix/client/v3/room_keys/version/{v1}")).Ok();
        (await alice.GetAsync($"/_matrix/client/v3/room_keys/version/{v1}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await alice.GetAsync($"/_matrix/client/v3/room_keys/keys?version={v1}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await alice.DeleteAsync($"/_matrix/client/v3/room_keys/version/{v1}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        Assert.Equal(v2, (await alice.GetAsync("/_matrix/client/v3/room_keys/version")).Ok()["version"]!.GetValue<string>());

        // A deleted version's number is not reused.
        (await alice.DeleteAsync($"/_matrix/client/v3/room_keys/version/{v2}")).Ok();
        (await alice.GetAsync("/_matrix/client/v3/room_keys/version")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        var v3 = (await alice.PostAsync("/_matrix/client/v3/room_keys/version", new JsonObject { ["algorithm"] = Algorithm, ["auth_data"] = new JsonObject() })).Ok()["version"]!.GetValue<string>();
        Assert.DoesNotContain(v3, new[] { v1, v2 });
    }

    [Fact]
    public async Task BadBackupRequestsGetClearErrors()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        (await alice.PostAsync("/_matrix/client/v3/room_keys/version", new JsonObject { ["auth_data"] = new JsonObject() })).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await alice.PostAsync("/_matrix/client/v3/room_keys/version", new JsonObject { ["algorithm"] = Algorithm })).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        var v = (await alice.PostAsync("/_matrix/client/v3/room_keys/version", new JsonObject { ["algorithm"] = Algorithm, ["auth_data"] = new JsonObject() })).Ok()["version"]!.GetValue<string>();
        (await alice.GetAsync("/_matrix/client/v3/room_keys/keys")).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await alice.GetAsync("/_matrix/client/v3/room_keys/version/abc")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await alice.PutAsync($"/_matrix/client/v3/room_keys/keys/{Uri.EscapeDataString(Room)}/s?version={v}", new JsonObject { ["first_message_index"] = 0 })).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await alice.PutAsync($"/_matrix/client/v3/room_keys/keys/{Uri.EscapeDataString(Room)}/s?version={v}", Key(-1, 0, false, "x"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.PutAsync($"/_matrix/client/v3/room_keys/keys?version={v}", new JsonObject { ["rooms"] = new JsonObject { [Room] = "x" } })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        Assert.Equal(0, (await alice.GetAsync($"/_matrix/client/v3/room_keys/version/{v}")).Ok()["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task DeactivationRemovesKeysSignaturesAndBackups()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);
        var alice = new E2eeDevice(await server.RegisterAsync("alice"));
        var bob = await server.RegisterAsync("bob");
        (await alice.UploadAsync(alice.DeviceKeys(), alice.OneTimeKeys(3))).Ok();
        (await alice.Client.PostAsync("/_matrix/client/v3/keys/device_signing/upload", alice.CrossSigningUpload())).Ok();
        var v = (await alice.Client.PostAsync("/_matrix/client/v3/room_keys/version", new JsonObject { ["algorithm"] = Algorithm, ["auth_data"] = new JsonObject() })).Ok()["version"]!.GetValue<string>();
        (await alice.Client.PutAsync($"/_matrix/client/v3/room_keys/keys/{Uri.EscapeDataString(Room)}/s1?version={v}", Key(0, 0, false, "secret"))).Ok();
        (await bob.PutAsync("/_matrix/client/v3/sendToDevice/m.test/1", new JsonObject { ["messages"] = new JsonObject { [alice.UserId] = new JsonObject { ["*"] = new JsonObject { ["x"] = 1 } } } })).Ok();

        (await alice.Client.PostAsync("/_matrix/client/v3/account/deactivate", new JsonObject { ["auth"] = alice.Client.PasswordAuth("correct horse battery") })).Ok();

        var query = await bob.QueryKeysAsync(alice.UserId);
        Assert.Empty(query["device_keys"]![alice.UserId]!.AsObject());
        Assert.Null(query["master_keys"]![alice.UserId]);
        Assert.Null(query["self_signing_keys"]![alice.UserId]);
        Assert.Empty((await bob.ClaimAsync((alice.UserId, alice.DeviceId, "signed_curve25519")))["one_time_keys"]!.AsObject());
        var db = server.Host.Services.Database;
        foreach (var table in new[] { "e2e_device_keys", "e2e_one_time_keys", "e2e_cross_signing_keys", "room_key_backup_versions", "room_key_backup_keys", "to_device_inbox" })
        {
            var column = "user_id";
            var rows = await db.ReadAsync(c => Dapper.SqlMapper.ExecuteScalarAsync<long>(c, $"SELECT COUNT(*) FROM {table} WHERE {column} = @u", new { u = alice.UserId }));
            Assert.True(rows == 0, $"{table} still holds {rows} rows of the deactivated user");
        }

        Assert.Equal(0, await db.ReadAsync(c => Dapper.SqlMapper.ExecuteScalarAsync<long>(c, "SELECT COUNT(*) FROM e2e_signatures WHERE target_user_id = @u OR signer_user_id = @u", new { u = alice.UserId })));
    }
}
