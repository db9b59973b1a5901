using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Privacy;

/// <summary>Deactivation with erasure follows the email model: who received a message keeps it, nobody else gets it.</summary>
public abstract class ErasureTests(DatabaseEngine engine)
{
    private static async Task<JsonObject> ContentSeenByAsync(MatrixClient viewer, string roomId, string eventId) =>
        (await viewer.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{eventId}")).Ok()["content"]!.AsObject();

    [Fact]
    public async Task AnErasedUsersMessagesAreRedactedForEveryoneWhoWasNotThere()
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        var carol = await server.RegisterAsync("carol");
        var dave = await server.RegisterAsync("dave");
        var roomId = await bob.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await alice.JoinAsync(roomId);
        var marker = $"zq-erased-{Guid.NewGuid():N}";
        var early = (await alice.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = marker })).Ok()["event_id"]!.GetValue<string>();
        await carol.JoinAsync(roomId);
        var late = (await alice.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = marker + "-late" })).Ok()["event_id"]!.GetValue<string>();
        (await alice.PutAsync($"/_matrix/client/v3/user/{alice.UserId}/account_data/m.secret_notes", new JsonObject { ["note"] = marker })).Ok();
        (await alice.PutAsync($"/_matrix/client/v3/profile/{alice.UserId}/displayname", new JsonObject { ["displayname"] = "Alice " + marker })).Ok();

        // Carol joined between the two messages; with shared history she can read both before the erasure.
        Assert.Equal(marker, (await ContentSeenByAsync(carol, roomId, early))["body"]!.GetValue<string>());

        var deactivate = await alice.PostAsync("/_matrix/client/v3/account/deactivate", new JsonObject { ["erase"] = true });
        var session = deactivate.Body["session"]!.GetValue<string>();
        (await alice.PostAsync("/_matrix/client/v3/account/deactivate", new JsonObject
        {
            ["erase"] = true,
            ["auth"] = alice.PasswordAuth("correct horse battery", session),
        })).Ok();
        await dave.JoinAsync(roomId);

        // Bob was there for both messages; Carol only for the second; Dave for neither.
        Assert.Equal(marker, (await ContentSeenByAsync(bob, roomId, early))["body"]!.GetValue<string>());
        Assert.Equal(marker + "-late", (await ContentSeenByAsync(bob, roomId, late))["body"]!.GetValue<string>());
        Assert.Empty(await ContentSeenByAsync(carol, roomId, early));
        Assert.Equal(marker + "-late", (await ContentSeenByAsync(carol, roomId, late))["body"]!.GetValue<string>());
        Assert.Empty(await ContentSeenByAsync(dave, roomId, early));
        Assert.Empty(await ContentSeenByAsync(dave, roomId, late));

        // The same holds in /messages and in an initial /sync.
        var history = (await dave.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=50")).Ok().ToJsonString();
        Assert.DoesNotContain(marker, history, StringComparison.Ordinal);
        Assert.DoesNotContain(marker, (await dave.SyncAsync()).ToJsonString(), StringComparison.Ordinal);
        Assert.Contains(marker, (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=50")).Ok().ToJsonString(), StringComparison.Ordinal);

        // The account is gone for good: no login, no re-registration, no profile, no account data, out of the room.
        (await server.NewClient().PostAsync("/_matrix/client/v3/login", new JsonObject
        {
            ["type"] = "m.login.password",
            ["identifier"] = new JsonObject { ["type"] = "m.id.user", ["user"] = "alice" },
            ["password"] = "correct horse battery",
        })).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await server.NewClient().GetAsync("/_matrix/client/v3/register/available?username=alice")).Error(HttpStatusCode.BadRequest, "M_USER_IN_USE");
        var profile = await server.NewClient().GetAsync($"/_matrix/client/v3/profile/{alice.UserId}");
        Assert.DoesNotContain(marker, profile.Body.ToJsonString(), StringComparison.Ordinal);
        var members = (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/joined_members")).Ok()["joined"]!.AsObject();
        Assert.False(members.ContainsKey(alice.UserId));
        var accountData = await server.Host.Database.ReadAsync(c => c.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM account_data WHERE user_id = @u", new { u = alice.UserId }));
        Assert.Equal(0, accountData);

        // Erasure survives a restart of the server's memory: it is read back from the database.
        var erased = await server.Host.Database.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM erased_users WHERE user_id = @u", new { u = alice.UserId }));
        Assert.Equal(1, erased);
    }

    [Fact]
    public async Task DeactivationWithoutEraseKeepsMessagesForNewcomers()
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        var dave = await server.RegisterAsync("dave");
        var roomId = await bob.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await alice.JoinAsync(roomId);
        var id = (await alice.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "kept" })).Ok()["event_id"]!.GetValue<string>();
        var session = (await alice.PostAsync("/_matrix/client/v3/account/deactivate", new JsonObject())).Body["session"]!.GetValue<string>();
        (await alice.PostAsync("/_matrix/client/v3/account/deactivate", new JsonObject { ["auth"] = alice.PasswordAuth("correct horse battery", session) })).Ok();
        await dave.JoinAsync(roomId);
        Assert.Equal("kept", (await ContentSeenByAsync(dave, roomId, id))["body"]!.GetValue<string>());
    }

    [Fact]
    public async Task EraseMustBeABoolean()
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);
        var alice = await server.RegisterAsync("alice");
        var session = (await alice.PostAsync("/_matrix/client/v3/account/deactivate", new JsonObject())).Body["session"]!.GetValue<string>();
        (await alice.PostAsync("/_matrix/client/v3/account/deactivate", new JsonObject { ["erase"] = "yes", ["auth"] = alice.PasswordAuth("correct horse battery", session) }))
            .Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.GetAsync("/_matrix/client/v3/account/whoami")).Ok();
    }
}

public sealed class SqliteErasureTests() : ErasureTests(DatabaseEngine.Sqlite);

public sealed class PostgresErasureTests() : ErasureTests(DatabaseEngine.Postgres);

/// <summary>erase_delay: readers see the erasure at once; the data goes after the grace period, and an admin can cancel within it.</summary>
public abstract class EraseDelayTests(DatabaseEngine engine)
{
    [Fact]
    public async Task DataIsDeletedAfterTheGracePeriodAndTheErasureCanBeCancelledWithinIt()
    {
        var clock = new TestClock();
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + "erase_delay: 30d\n", clock: clock);
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var root = server.NewClient();
        await root.LoginAsync("root");
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        var dave = await server.RegisterAsync("dave");
        var roomId = await bob.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await alice.JoinAsync(roomId);
        var id = (await alice.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "zq-delayed" })).Ok()["event_id"]!.GetValue<string>();
        (await alice.PutAsync($"/_matrix/client/v3/profile/{alice.UserId}/displayname", new JsonObject { ["displayname"] = "zq-alice-name" })).Ok();
        var carol = await server.RegisterAsync("carol");
        var carolRoom = await bob.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await carol.JoinAsync(carolRoom);
        await carol.SendTextAsync(carolRoom, "zq-carol");
        (await carol.PutAsync($"/_matrix/client/v3/profile/{carol.UserId}/displayname", new JsonObject { ["displayname"] = "zq-carol-name" })).Ok();

        (await root.PostAsync("/_synapse/admin/v1/deactivate/" + alice.UserId, new JsonObject { ["erase"] = true })).Ok();
        (await root.PostAsync("/_synapse/admin/v1/deactivate/" + carol.UserId, new JsonObject { ["erase"] = true })).Ok();
        await dave.JoinAsync(roomId);
        Assert.Empty((await dave.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{id}")).Ok()["content"]!.AsObject());
        Assert.Equal("zq-alice-name", (await root.GetAsync("/_synapse/admin/v2/users/" + alice.UserId)).Ok()["displayname"]!.GetValue<string>());

        // Within the grace period, reactivating Alice cancels her erasure: newcomers see her messages again.
        (await root.PutAsync("/_synapse/admin/v2/users/" + alice.UserId, new JsonObject { ["deactivated"] = false, ["password"] = "a fresh long password" })).Ok();
        Assert.Equal("zq-delayed", (await dave.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{id}")).Ok()["content"]!["body"]!.GetValue<string>());
        await server.NewClient().LoginAsync("alice", "a fresh long password");

        // Carol's grace period ends: her data goes, for good.
        clock.Advance(TimeSpan.FromDays(29));
        Assert.Equal(0, (await root.PostAsync("/_lethe/admin/v1/privacy/gc", new JsonObject())).Ok()["erasures_completed"]!.GetValue<long>());
        clock.Advance(TimeSpan.FromDays(2));
        Assert.Equal(1, (await root.PostAsync("/_lethe/admin/v1/privacy/gc", new JsonObject())).Ok()["erasures_completed"]!.GetValue<long>());
        Assert.Null((await root.GetAsync("/_synapse/admin/v2/users/" + carol.UserId)).Ok()["displayname"]);
        (await root.PutAsync("/_synapse/admin/v2/users/" + carol.UserId, new JsonObject { ["deactivated"] = false, ["password"] = "a fresh long password" }))
            .Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
    }

    [Fact]
    public async Task WhenTheGracePeriodEndsTheErasedDataIsGoneFromTheDatabaseFiles()
    {
        var clock = new TestClock();
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + "erase_delay: 30d\n", clock: clock);
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var root = server.NewClient();
        await root.LoginAsync("root");
        var bob = await server.RegisterAsync("bob");
        var carol = await server.RegisterAsync("carol");
        var roomId = await bob.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        var reported = (await bob.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "reported" })).Ok()["event_id"]!.GetValue<string>();

        // Carol leaves personal data everywhere erasure deletes it. Her name is set after she left the room, so no
        // membership event (which the email model keeps) carries it.
        var marker = $"zq-carol-{Guid.NewGuid():N}";
        await carol.JoinAsync(roomId);
        (await carol.PostAsync($"/_matrix/client/v3/rooms/{roomId}/report/{reported}", new JsonObject { ["reason"] = marker + "-report" })).Ok();
        (await carol.PostAsync($"/_matrix/client/v3/rooms/{roomId}/leave", new JsonObject())).Ok();
        (await carol.PutAsync($"/_matrix/client/v3/profile/{carol.UserId}/displayname", new JsonObject { ["displayname"] = marker + "-name" })).Ok();
        (await carol.PutAsync($"/_matrix/client/v3/user/{carol.UserId}/account_data/m.secret_notes", new JsonObject { ["note"] = marker + "-note" })).Ok();
        (await carol.PutAsync($"/_matrix/client/v3/presence/{carol.UserId}/status", new JsonObject { ["presence"] = "online", ["status_msg"] = marker + "-status" })).Ok();
        (await carol.PostAsync($"/_matrix/client/v3/user/{carol.UserId}/filter", new JsonObject { ["room"] = new JsonObject { ["not_rooms"] = new JsonArray($"!{marker}-filter:test.local") } })).Ok();
        using (var upload = new HttpRequestMessage(HttpMethod.Post, "/_matrix/media/v3/upload?filename=notes.txt") { Content = new StringContent(marker + "-upload") })
        {
            upload.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", carol.AccessToken);
            using var uploaded = await server.Client.SendAsync(upload);
            Assert.Equal(HttpStatusCode.OK, uploaded.StatusCode);
        }

        string[] pieces = ["-report", "-name", "-note", "-status", "-filter", "-upload"];
        (await root.PostAsync("/_synapse/admin/v1/deactivate/" + carol.UserId, new JsonObject { ["erase"] = true })).Ok();
        clock.Advance(TimeSpan.FromDays(29));
        Assert.Equal(0, (await root.PostAsync("/_lethe/admin/v1/privacy/gc", new JsonObject())).Ok()["erasures_completed"]!.GetValue<long>());
        if (engine == DatabaseEngine.Sqlite)
        {
            // Within the grace period everything is still there (the check below can fail).
            foreach (var piece in pieces)
            {
                Assert.True(await server.FilesContainAsync(marker + piece), piece);
            }
        }

        clock.Advance(TimeSpan.FromDays(2));
        Assert.Equal(1, (await root.PostAsync("/_lethe/admin/v1/privacy/gc", new JsonObject())).Ok()["erasures_completed"]!.GetValue<long>());
        var rows = await server.Host.Database.ReadAsync(async c =>
            await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM reports WHERE user_id = @u", new { u = carol.UserId })
            + await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM account_data WHERE user_id = @u", new { u = carol.UserId })
            + await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM presence WHERE user_id = @u", new { u = carol.UserId })
            + await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM filters WHERE user_id = @u", new { u = carol.UserId })
            + await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM media WHERE user_id = @u", new { u = carol.UserId })
            + await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM profiles WHERE user_id = @u AND displayname IS NOT NULL", new { u = carol.UserId }));
        Assert.Equal(0, rows);
        if (engine == DatabaseEngine.Sqlite)
        {
            foreach (var piece in pieces)
            {
                Assert.False(await server.FilesContainAsync(marker + piece), piece);
            }
        }

        // Bob's message, which she reported, is untouched.
        Assert.Equal("reported", (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{reported}")).Ok()["content"]!["body"]!.GetValue<string>());
    }
}

public sealed class SqliteEraseDelayTests() : EraseDelayTests(DatabaseEngine.Sqlite);

public sealed class PostgresEraseDelayTests() : EraseDelayTests(DatabaseEngine.Postgres);
