using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;

namespace Lethe.Homeserver.Tests.Keys;

/// <summary>Dehydrated devices (MSC3814): a parked device whose to-device messages a later login can read.</summary>
public sealed class DehydratedDeviceTests
{
    private const string Path = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device";

    /// <summary>A PUT body for a dehydrated device with the given ID, signed by a fresh device key.</summary>
    private static JsonObject Body(MatrixClient owner, string deviceId, string pickle)
    {
        var parked = new E2eeDevice(new MatrixClient(new HttpClient()) { UserId = owner.UserId, DeviceId = deviceId });
        var keys = parked.DeviceKeys();
        keys["dehydrated"] = true;
        Lethe.Protocol.Crypto.JsonSigning.Sign(keys, owner.UserId, parked.Ed25519);
        return new JsonObject
        {
            ["device_id"] = deviceId,
            ["device_data"] = new JsonObject { ["algorithm"] = "org.matrix.msc3814.v2", ["device_pickle"] = pickle, ["nonce"] = "n" },
            ["initial_device_display_name"] = "Dehydrated device",
            ["device_keys"] = keys,
            ["one_time_keys"] = parked.OneTimeKeys(2),
            ["fallback_keys"] = parked.OneTimeKeys(1, "fb", fallback: true),
        };
    }

    [Fact]
    public async Task ADehydratedDeviceKeepsItsMessagesForTheNextLoginAndIsReplacedOrDeleted()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        (await alice.GetAsync(Path)).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");

        Assert.Equal("PARKED1", (await alice.PutAsync(Path, Body(alice, "PARKED1", "pickle-1"))).Ok()["device_id"]!.GetValue<string>());
        var got = (await alice.GetAsync(Path)).Ok();
        Assert.Equal("PARKED1", got["device_id"]!.GetValue<string>());
        Assert.Equal("pickle-1", got["device_data"]!["device_pickle"]!.GetValue<string>());

        // Others see it as one of Alice's devices and can claim its keys and send it messages.
        Assert.True((await bob.QueryKeysAsync(alice.UserId))["device_keys"]![alice.UserId]!["PARKED1"]!["dehydrated"]!.GetValue<bool>());
        Assert.Single((await bob.ClaimAsync((alice.UserId, "PARKED1", "signed_curve25519")))["one_time_keys"]![alice.UserId]!["PARKED1"]!.AsObject());
        for (var i = 0; i < 3; i++)
        {
            (await bob.PutAsync($"/_matrix/client/v3/sendToDevice/m.room.encrypted/p{i}", new JsonObject
            {
                ["messages"] = new JsonObject { [alice.UserId] = new JsonObject { ["PARKED1"] = new JsonObject { ["n"] = i } } },
            })).Ok();
        }

        // A new login reads them in pages; the token acknowledges what was read.
        var events = $"{Path}/PARKED1/events";
        var page1 = (await alice.GetAsync(events + "?limit=2")).Ok();
        Assert.Equal([0, 1], page1["events"]!.AsArray().Select(e => e!["content"]!["n"]!.GetValue<int>()));
        Assert.Equal(bob.UserId, page1["events"]![0]!["sender"]!.GetValue<string>());
        var page2 = (await alice.PostAsync(events, new JsonObject { ["next_batch"] = page1["next_batch"]!.GetValue<string>() })).Ok();
        Assert.Equal([2], page2["events"]!.AsArray().Select(e => e!["content"]!["n"]!.GetValue<int>()));
        var page3 = (await alice.GetAsync(events + "?from=" + page2["next_batch"]!.GetValue<string>())).Ok();
        Assert.Empty(page3["events"]!.AsArray());
        Assert.Equal(0, await server.Host.Services.ToDevice.CountAsync(alice.UserId, "PARKED1"));
        (await alice.GetAsync(events + "?from=garbage")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.GetAsync($"{Path}/{alice.DeviceId}/events")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");

        // A new dehydrated device replaces the old one, whose keys go with it.
        (await alice.PutAsync(Path, Body(alice, "PARKED2", "pickle-2"))).Ok();
        var query = await bob.QueryKeysAsync(alice.UserId);
        Assert.Null(query["device_keys"]![alice.UserId]!["PARKED1"]);
        Assert.NotNull(query["device_keys"]![alice.UserId]!["PARKED2"]);
        (await alice.GetAsync($"{Path}/PARKED1/events")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");

        // Deleting it removes the device.
        Assert.Equal("PARKED2", (await alice.DeleteAsync(Path)).Ok()["device_id"]!.GetValue<string>());
        (await alice.GetAsync(Path)).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        Assert.Null((await bob.QueryKeysAsync(alice.UserId))["device_keys"]![alice.UserId]!["PARKED2"]);
    }

    [Fact]
    public async Task BadDehydratedDevicesAreRejected()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        var body = Body(alice, "PARKED", "p");
        body.Remove("device_keys");
        (await alice.PutAsync(Path, body)).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await alice.PutAsync(Path, Body(alice, alice.DeviceId, "p"))).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        var unsigned = Body(alice, "PARKED", "p");
        unsigned["device_keys"]!.AsObject().Remove("signatures");
        (await alice.PutAsync(Path, unsigned)).Error(HttpStatusCode.BadRequest, "M_INVALID_SIGNATURE");
        var noAlgorithm = Body(alice, "PARKED", "p");
        noAlgorithm["device_data"]!.AsObject().Remove("algorithm");
        (await alice.PutAsync(Path, noAlgorithm)).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await alice.GetAsync(Path)).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        Assert.Single((await alice.GetAsync("/_matrix/client/v3/devices")).Ok()["devices"]!.AsArray());
    }
}
