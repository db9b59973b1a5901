using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Keys;

/// <summary>device_lists in /sync and /keys/changes: changes reach the users who share an encrypted room, and no others.</summary>
public sealed class DeviceListTests
{
    private static readonly JsonObject Encrypted = new()
    {
        ["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.encryption", ["state_key"] = "", ["content"] = new JsonObject { ["algorithm"] = "m.megolm.v1.aes-sha2" } }),
    };

    [Theory]
    [InlineData(DatabaseEngine.Sqlite)]
    [InlineData(DatabaseEngine.Postgres)]
    public async Task DeviceListChangesReachUsersSharingAnEncryptedRoomAndNoOthers(DatabaseEngine engine)
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        var bob = new E2eeDevice(await server.RegisterAsync("bob"));
        var carol = await server.RegisterAsync("carol");
        var dave = await server.RegisterAsync("dave");

        // Alice and Bob share an encrypted room; Carol shares only an unencrypted one with Bob; Dave shares nothing.
        var secret = await alice.CreateRoomAsync((JsonObject)Encrypted.DeepClone());
        await alice.InviteAsync(secret, bob.UserId);
        await bob.Client.JoinAsync(secret);
        var plain = await carol.CreateRoomAsync();
        await carol.InviteAsync(plain, bob.UserId);
        await bob.Client.JoinAsync(plain);

        var sinceAlice = (await alice.SyncAsync())["next_batch"]!.GetValue<string>();
        var sinceCarol = (await carol.SyncAsync())["next_batch"]!.GetValue<string>();
        var sinceDave = (await dave.SyncAsync())["next_batch"]!.GetValue<string>();
        var sinceBob = (await bob.Client.SyncAsync())["next_batch"]!.GetValue<string>();

        // Bob uploads device keys: Alice's long-poll wakes with the change (other news, such as Bob's presence, may
        // wake it first); Bob hears of his own; Carol and Dave do not.
        var poll = LongPollUntilAsync(alice, sinceAlice, s => s["device_lists"]!["changed"].Strings().Contains(bob.UserId));
        (await bob.UploadAsync(bob.DeviceKeys())).Ok();
        var aliceSync = await poll.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Contains(bob.UserId, (await bob.Client.SyncAsync(sinceBob))["device_lists"]!["changed"].Strings());
        Assert.DoesNotContain(bob.UserId, (await carol.SyncAsync(sinceCarol))["device_lists"]!["changed"].Strings());
        Assert.DoesNotContain(bob.UserId, (await dave.SyncAsync(sinceDave))["device_lists"]!["changed"].Strings());

        var changes = (await alice.GetAsync($"/_matrix/client/v3/keys/changes?from={sinceAlice}&to={aliceSync["next_batch"]!.GetValue<string>()}")).Ok();
        Assert.Equal([bob.UserId], changes["changed"].Strings());
        Assert.Empty((await carol.GetAsync($"/_matrix/client/v3/keys/changes?from={sinceCarol}&to={aliceSync["next_batch"]!.GetValue<string>()}")).Ok()["changed"].Strings());

        // Nothing more happened: the next incremental sync has no changes.
        sinceAlice = aliceSync["next_batch"]!.GetValue<string>();
        Assert.Empty((await alice.SyncAsync(sinceAlice))["device_lists"]!["changed"].Strings());

        // Dave joins the encrypted room: Alice and Bob now share it with him, so he is "changed" for them and they for him.
        sinceDave = (await dave.SyncAsync())["next_batch"]!.GetValue<string>();
        await alice.InviteAsync(secret, dave.UserId);
        await dave.JoinAsync(secret);
        Assert.Contains(dave.UserId, (await alice.SyncAsync(sinceAlice))["device_lists"]!["changed"].Strings());
        var daveChanges = (await dave.SyncAsync(sinceDave))["device_lists"]!["changed"].Strings();
        Assert.Contains(alice.UserId, daveChanges);
        Assert.Contains(bob.UserId, daveChanges);
        sinceAlice = (await alice.SyncAsync())["next_batch"]!.GetValue<string>();

        // Bob leaves the encrypted room: he shares no encrypted room with Alice any more, so he is in her "left".
        (await bob.Client.PostAsync($"/_matrix/client/v3/rooms/{secret}/leave", new JsonObject())).Ok();
        var afterLeave = await alice.SyncAsync(sinceAlice);
        Assert.Contains(bob.UserId, afterLeave["device_lists"]!["left"].Strings());
        Assert.DoesNotContain(bob.UserId, afterLeave["device_lists"]!["changed"].Strings());

        // Being invited to an encrypted room shares nothing yet: no one is "left" (or "changed") for Carol.
        sinceCarol = (await carol.SyncAsync())["next_batch"]!.GetValue<string>();
        await alice.InviteAsync(secret, carol.UserId);
        var invited = await carol.SyncAsync(sinceCarol);
        Assert.NotNull(invited["rooms"]!["invite"]![secret]);
        Assert.Empty(invited["device_lists"]!["left"].Strings());
        Assert.Empty(invited["device_lists"]!["changed"].Strings());

        // Later key changes of Bob no longer reach Alice.
        sinceAlice = afterLeave["next_batch"]!.GetValue<string>();
        var bobPhone = server.NewClient();
        await bobPhone.LoginAsync("bob");
        var phone = new E2eeDevice(bobPhone);
        (await phone.UploadAsync(phone.DeviceKeys())).Ok();
        Assert.DoesNotContain(bob.UserId, (await alice.SyncAsync(sinceAlice))["device_lists"]!["changed"].Strings());
    }

    /// <summary>Long-polls from <paramref name="since"/> until a response satisfies <paramref name="done"/>, and returns it.</summary>
    private static async Task<JsonObject> LongPollUntilAsync(MatrixClient client, string since, Func<JsonObject, bool> done)
    {
        while (true)
        {
            var sync = await client.SyncAsync(since, timeout: 10_000);
            if (done(sync))
            {
                return sync;
            }

            since = sync["next_batch"]!.GetValue<string>();
        }
    }

    [Fact]
    public async Task DeletingADeviceRemovesItsKeysAndInboxAndTellsOthers()
    {
        await using var server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        var bob = new E2eeDevice(await server.RegisterAsync("bob"));
        var room = await alice.CreateRoomAsync((JsonObject)Encrypted.DeepClone());
        await alice.InviteAsync(room, bob.UserId);
        await bob.Client.JoinAsync(room);

        var phoneClient = server.NewClient();
        await phoneClient.LoginAsync("bob");
        var phone = new E2eeDevice(phoneClient);
        (await phone.UploadAsync(phone.DeviceKeys(), phone.OneTimeKeys(5), phone.OneTimeKeys(1, "fb", fallback: true))).Ok();
        (await alice.PutAsync("/_matrix/client/v3/sendToDevice/m.test/1", new JsonObject { ["messages"] = new JsonObject { [bob.UserId] = new JsonObject { [phone.DeviceId] = new JsonObject { ["x"] = 1 } } } })).Ok();
        Assert.Equal(1, await server.Host.Services.ToDevice.CountAsync(bob.UserId, phone.DeviceId));
        var since = (await alice.SyncAsync())["next_batch"]!.GetValue<string>();

        // Delete the phone (with the password).
        var challenge = await bob.Client.DeleteAsync($"/_matrix/client/v3/devices/{phone.DeviceId}", new JsonObject());
        var session = challenge.Body["session"]!.GetValue<string>();
        (await bob.Client.DeleteAsync($"/_matrix/client/v3/devices/{phone.DeviceId}", new JsonObject { ["auth"] = bob.Client.PasswordAuth("correct horse battery", session) })).Ok();

        Assert.Contains(bob.UserId, (await alice.SyncAsync(since))["device_lists"]!["changed"].Strings());
        Assert.Null((await alice.QueryKeysAsync(bob.UserId))["device_keys"]![bob.UserId]![phone.DeviceId]);
        Assert.Empty((await alice.ClaimAsync((bob.UserId, phone.DeviceId, "signed_curve25519")))["one_time_keys"]!.AsObject());
        Assert.Equal(0, await server.Host.Services.ToDevice.CountAsync(bob.UserId, phone.DeviceId));
    }
}
