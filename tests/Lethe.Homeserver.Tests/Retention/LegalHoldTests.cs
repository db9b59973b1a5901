using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Dapper;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Retention;

/// <summary>
/// min_lifetime holds messages against every deletion path: an admin's room deletion (unless forced), the forgotten-room
/// collector and an erased user's uploads keep what the hold covers and finish the deletion when it ends.
/// </summary>
public abstract class LegalHoldTests(DatabaseEngine engine) : IAsyncLifetime
{
    private static readonly TimeSpan Day = TimeSpan.FromDays(1);

    private const string Config = """
        forgotten_room_retention_period: 7d
        retention:
          enabled: true
          purge_jobs:
            - interval: 1y

        """;

    private TestClock Clock { get; } = new();

    private TestHomeserver Server { get; set; } = null!;

    private MatrixClient Alice { get; set; } = null!;

    private MatrixClient Bob { get; set; } = null!;

    private MatrixClient Root { get; set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + Config, clock: Clock);
        Alice = await Server.RegisterAsync("alice");
        Bob = await Server.RegisterAsync("bob");
        await Accounts.UserStoreSeed.AdminAsync(Server, "root");
        Root = Server.NewClient();
        await Root.LoginAsync("root");
    }

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    private async Task<string> RoomHoldingAsync(TimeSpan minLifetime)
    {
        var roomId = await Alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await Bob.JoinAsync(roomId);
        (await Alice.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["min_lifetime"] = (long)minLifetime.TotalMilliseconds })).Ok();
        return roomId;
    }

    private async Task<JsonNode> DeleteRoomAsync(string roomId, JsonObject body)
    {
        var deleteId = (await Root.DeleteAsync($"/_synapse/admin/v2/rooms/{roomId}", body)).Ok()["delete_id"]!.GetValue<string>();
        JsonNode status = null!;
        await Poll.UntilAsync(async () =>
        {
            status = (await Root.GetAsync("/_synapse/admin/v2/rooms/delete_status/" + deleteId)).Ok();
            return status["status"]!.GetValue<string>() == "complete" || status["held_until_ts"] is not null;
        }, TimeSpan.FromSeconds(30), "the room deletion to finish or be held");
        return status;
    }

    private async Task<long> OriginTsAsync(MatrixClient who, string roomId, string eventId) =>
        (await who.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{eventId}")).Ok()["origin_server_ts"]!.GetValue<long>();

    /// <summary>The admin API's "run now": purge jobs, and the put-off deletions that are due.</summary>
    private async Task RunHeldDeletionsAsync() => (await Root.PostAsync("/_lethe/admin/v1/retention/purge", new JsonObject())).Ok();

    /// <summary>True when an event with the text is stored, or (SQLite) any byte of the data directory still holds it.</summary>
    private async Task<bool> StoredAsync(string text)
    {
        if (await Server.Host.Database.ReadAsync(async c => (await c.QueryAsync<byte[]>("SELECT json FROM events"))
                .Any(j => Encoding.UTF8.GetString(j).Contains(text, StringComparison.Ordinal))))
        {
            return true;
        }

        if (engine != DatabaseEngine.Sqlite)
        {
            return false;
        }

        foreach (var file in Directory.GetFiles(Server.Dir, "*", SearchOption.AllDirectories))
        {
            if (Encoding.UTF8.GetString(await File.ReadAllBytesAsync(file)).Contains(text, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    [Fact]
    public async Task AnAdminRoomDeletionKeepsHeldMessagesUntilTheHoldEnds()
    {
        var roomId = await RoomHoldingAsync(Day);
        var old = $"zq-old-{Guid.NewGuid():N}";
        var young = $"zq-young-{Guid.NewGuid():N}";
        await Bob.SendTextAsync(roomId, old);
        Clock.Advance(Day * 2);
        var youngId = await Bob.SendTextAsync(roomId, young);
        var youngTs = await OriginTsAsync(Bob, roomId, youngId);

        // Everyone is put out of the room at once; the message older than the hold goes, the young one stays.
        var status = await DeleteRoomAsync(roomId, new JsonObject { ["purge"] = true });
        Assert.Equal("purging", status["status"]!.GetValue<string>());
        Assert.Equal(youngTs + (long)Day.TotalMilliseconds, status["held_until_ts"]!.GetValue<long>());
        Assert.Empty((await Bob.GetAsync("/_matrix/client/v3/joined_rooms")).Ok()["joined_rooms"]!.AsArray());
        Assert.False(await StoredAsync(old));
        Assert.True(await StoredAsync(young));
        (await Root.GetAsync("/_synapse/admin/v1/rooms/" + roomId)).Ok();

        // Before the hold ends, running the held deletions changes nothing; after it, the room is gone.
        Clock.Advance(Day / 2);
        await RunHeldDeletionsAsync();
        Assert.True(await StoredAsync(young));
        Clock.Advance(Day);
        await RunHeldDeletionsAsync();
        Assert.False(await StoredAsync(young));
        (await Root.GetAsync("/_synapse/admin/v1/rooms/" + roomId)).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        var final = (await Root.GetAsync($"/_synapse/admin/v2/rooms/{roomId}/delete_status")).Ok()["results"]![0]!;
        Assert.Equal("complete", final["status"]!.GetValue<string>());
        Assert.DoesNotContain((await Root.GetAsync("/_lethe/admin/v1/jobs")).Ok()["jobs"]!.AsArray(), j => j!["job"]!.GetValue<string>().Contains(roomId, StringComparison.Ordinal));
    }

    [Fact]
    public async Task ForcePurgeOverridesTheHold()
    {
        var roomId = await RoomHoldingAsync(Day * 30);
        var young = $"zq-forced-{Guid.NewGuid():N}";
        await Bob.SendTextAsync(roomId, young);
        (await Root.DeleteAsync($"/_synapse/admin/v2/rooms/{roomId}", new JsonObject { ["force_purge"] = "yes" })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");

        var status = await DeleteRoomAsync(roomId, new JsonObject { ["purge"] = true, ["force_purge"] = true });
        Assert.Equal("complete", status["status"]!.GetValue<string>());
        Assert.False(await StoredAsync(young));
        (await Root.GetAsync("/_synapse/admin/v1/rooms/" + roomId)).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }

    [Fact]
    public async Task TheForgottenRoomCollectorWaitsForTheHold()
    {
        var roomId = await RoomHoldingAsync(Day * 10);
        var marker = $"zq-forgotten-held-{Guid.NewGuid():N}";
        await Alice.SendTextAsync(roomId, marker);
        foreach (var who in new[] { Alice, Bob })
        {
            (await who.PostAsync($"/_matrix/client/v3/rooms/{roomId}/leave", new JsonObject())).Ok();
            (await who.PostAsync($"/_matrix/client/v3/rooms/{roomId}/forget", new JsonObject())).Ok();
        }

        async Task<long> GcAsync() => (await Root.PostAsync("/_lethe/admin/v1/privacy/gc", new JsonObject())).Ok()["forgotten_rooms_purged"]!.GetValue<long>();

        // Forgotten for longer than forgotten_room_retention_period (7 days), but the message is held for 10.
        Clock.Advance(Day * 8);
        Assert.Equal(0, await GcAsync());
        Assert.True(await StoredAsync(marker));
        var held = (await Root.GetAsync("/_lethe/admin/v1/jobs")).Ok()["jobs"]!.AsArray().Single(j => j!["job"]!.GetValue<string>() == "held:room_deletion:" + roomId)!;
        Assert.True(held["next_run_ts"]!.GetValue<long>() > Server.Host.Services.NowMs);

        Clock.Advance(Day * 3);
        Assert.Equal(1, await GcAsync());
        Assert.False(await StoredAsync(marker));
    }

    [Fact]
    public async Task AnErasedUsersUploadsStayWhileAHeldMessageShowsThem()
    {
        var roomId = await RoomHoldingAsync(Day);
        var shown = await UploadAsync(Alice);
        var unsent = await UploadAsync(Alice);
        (await Alice.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.image", ["body"] = "held picture", ["url"] = shown })).Ok();
        (await Root.PostAsync("/_synapse/admin/v1/deactivate/" + Alice.UserId, new JsonObject { ["erase"] = true })).Ok();

        // Bob was in the room: the picture the held message shows is still there for him; the unsent upload is gone.
        Assert.Equal(HttpStatusCode.OK, await DownloadAsync(Bob, shown));
        Assert.Equal(HttpStatusCode.NotFound, await DownloadAsync(Bob, unsent));

        Clock.Advance(Day * 2);
        await RunHeldDeletionsAsync();
        Assert.Equal(HttpStatusCode.NotFound, await DownloadAsync(Bob, shown));
        Assert.False(File.Exists(Server.Host.Services.Media.Files.ContentPath(shown[(shown.LastIndexOf('/') + 1)..])));
    }

    private async Task<string> UploadAsync(MatrixClient who)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/_matrix/media/v3/upload") { Content = new ByteArrayContent(RandomNumberGenerator.GetBytes(200)) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", who.AccessToken);
        using var response = await Server.Client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonNode.Parse(body)!["content_uri"]!.GetValue<string>();
    }

    private async Task<HttpStatusCode> DownloadAsync(MatrixClient who, string mxc)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/_matrix/client/v1/media/download/" + mxc["mxc://".Length..]);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", who.AccessToken);
        using var response = await Server.Client.SendAsync(request);
        return response.StatusCode;
    }
}

public sealed class SqliteLegalHoldTests() : LegalHoldTests(DatabaseEngine.Sqlite);

public sealed class PostgresLegalHoldTests() : LegalHoldTests(DatabaseEngine.Postgres);
