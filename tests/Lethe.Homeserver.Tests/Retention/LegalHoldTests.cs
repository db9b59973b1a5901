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
/// collector and an erased user's uploads keep what the hold covers and finish the deletion when it ends. Media a held
/// message shows is held the same way against every media deletion: the admin API's (unless forced), the media expiry
/// job's and the uploader's own.
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
        media_retention:
          local_media_lifetime: 30d

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

    /// <summary>Deletes media through one of the admin API's three deletion paths (by ID: one call per item); merges the answers.</summary>
    private async Task<(List<string> Deleted, List<string> Held, long Total)> AdminDeleteMediaAsync(string path, IReadOnlyList<string> mxcs, string? force)
    {
        var query = force is null ? "" : "force_purge=" + force;
        var calls = path switch
        {
            "by_id" => mxcs.Select(m => (HttpMethod.Delete, $"/_synapse/admin/v1/media/{m["mxc://".Length..]}" + (force is null ? "" : "?" + query))).ToList(),
            "by_age" => [(HttpMethod.Post, $"/_synapse/admin/v1/media/delete?before_ts={Server.Host.Services.NowMs + 1}" + (force is null ? "" : "&" + query))],
            "by_user" => [(HttpMethod.Delete, $"/_synapse/admin/v1/users/{Uri.EscapeDataString(Alice.UserId)}/media" + (force is null ? "" : "?" + query))],
            _ => throw new ArgumentOutOfRangeException(nameof(path)),
        };
        var (deleted, held, total) = (new List<string>(), new List<string>(), 0L);
        foreach (var (method, url) in calls)
        {
            var body = (await Root.SendAsync(method, url, method == HttpMethod.Post ? new JsonObject() : null)).Ok();
            deleted.AddRange(body["deleted_media"]!.AsArray().Select(m => m!.GetValue<string>()));
            held.AddRange(body["held_media"]!.AsArray().Select(m => m!.GetValue<string>()));
            total += body["total"]!.GetValue<long>();
        }

        return (deleted, held, total);
    }

    private static string MediaIdOf(string mxc) => mxc[(mxc.LastIndexOf('/') + 1)..];

    private bool OnDisk(string mxc) => File.Exists(Server.Host.Services.Media.Files.ContentPath(MediaIdOf(mxc)));

    private async Task<string> SendPictureAsync(string roomId, string mxc) =>
        (await Alice.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.image", ["body"] = "picture", ["url"] = mxc })).Ok()["event_id"]!.GetValue<string>();

    private async Task<long?> HeldMediaJobAsync(string mxc) =>
        (await Root.GetAsync("/_lethe/admin/v1/jobs")).Ok()["jobs"]!.AsArray()
            .FirstOrDefault(j => j!["job"]!.GetValue<string>() == "held:media:" + MediaIdOf(mxc))?["next_run_ts"]?.GetValue<long>();

    [Theory]
    [InlineData("by_id")]
    [InlineData("by_age")]
    [InlineData("by_user")]
    public async Task AnAdminMediaDeletionKeepsWhatAHeldMessageShowsUntilTheHoldEnds(string path)
    {
        var roomId = await RoomHoldingAsync(Day);
        var stale = await UploadAsync(Alice);
        await SendPictureAsync(roomId, stale);
        Clock.Advance(Day * 2);
        var shown = await UploadAsync(Alice);
        var shownTs = await OriginTsAsync(Bob, roomId, await SendPictureAsync(roomId, shown));
        var unsent = await UploadAsync(Alice);

        // Only the picture a message younger than the hold shows is kept; the one an older message shows and the unsent one go.
        var (deleted, held, total) = await AdminDeleteMediaAsync(path, [stale, shown, unsent], force: null);
        Assert.Equal(new[] { MediaIdOf(stale), MediaIdOf(unsent) }.Order(StringComparer.Ordinal), deleted.Order(StringComparer.Ordinal));
        Assert.Equal(2, total);
        Assert.Equal([MediaIdOf(shown)], held);
        Assert.True(OnDisk(shown));
        Assert.Equal(HttpStatusCode.OK, await DownloadAsync(Bob, shown));
        Assert.False(OnDisk(stale));
        Assert.False(OnDisk(unsent));
        Assert.Equal(HttpStatusCode.NotFound, await DownloadAsync(Bob, unsent));
        Assert.Equal(shownTs + (long)Day.TotalMilliseconds, await HeldMediaJobAsync(shown));

        // Before the hold ends nothing changes; after it, the picture is deleted by itself.
        Clock.Advance(Day / 2);
        await RunHeldDeletionsAsync();
        Assert.True(OnDisk(shown));
        Clock.Advance(Day);
        await RunHeldDeletionsAsync();
        Assert.False(OnDisk(shown));
        Assert.Equal(HttpStatusCode.NotFound, await DownloadAsync(Bob, shown));
        Assert.Null(await HeldMediaJobAsync(shown));
    }

    [Theory]
    [InlineData("by_id")]
    [InlineData("by_age")]
    [InlineData("by_user")]
    public async Task ForcePurgeDeletesHeldMediaAtOnce(string path)
    {
        var roomId = await RoomHoldingAsync(Day * 30);
        var shown = await UploadAsync(Alice);
        await SendPictureAsync(roomId, shown);

        var kept = await AdminDeleteMediaAsync(path, [shown], force: "false");
        Assert.Equal([MediaIdOf(shown)], kept.Held);
        Assert.Empty(kept.Deleted);
        Assert.True(OnDisk(shown));

        var forced = await AdminDeleteMediaAsync(path, [shown], force: "true");
        Assert.Equal([MediaIdOf(shown)], forced.Deleted);
        Assert.Empty(forced.Held);
        Assert.False(OnDisk(shown));
        Assert.Equal(HttpStatusCode.NotFound, await DownloadAsync(Bob, shown));

        // The job the first call left finds nothing to do and goes.
        Clock.Advance(Day * 31);
        await RunHeldDeletionsAsync();
        Assert.Null(await HeldMediaJobAsync(shown));
    }

    [Fact]
    public async Task ForcePurgeMustBeTrueOrFalse()
    {
        var mxc = await UploadAsync(Alice);
        (await Root.DeleteAsync($"/_synapse/admin/v1/media/{mxc["mxc://".Length..]}?force_purge=yes")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Root.PostAsync($"/_synapse/admin/v1/media/delete?before_ts=1&force_purge=1", null)).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await Root.DeleteAsync($"/_synapse/admin/v1/users/{Uri.EscapeDataString(Alice.UserId)}/media?force_purge=")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        Assert.True(OnDisk(mxc));
    }

    [Fact]
    public async Task TheMediaExpiryJobSparesIdleMediaAHeldMessageShowsUntilTheHoldEnds()
    {
        var roomId = await RoomHoldingAsync(Day * 60);
        var shown = await UploadAsync(Alice);
        await SendPictureAsync(roomId, shown);
        var idle = await UploadAsync(Alice);

        // Both idle past local_media_lifetime (30 days); the held picture stays.
        Clock.Advance(Day * 31);
        Assert.Equal(1, await Server.Host.MediaRetention.RunAsync(CancellationToken.None));
        Assert.False(OnDisk(idle));
        Assert.True(OnDisk(shown));
        Assert.Null(await HeldMediaJobAsync(shown));

        // The download counts as use; the hold ends on day 60 and by day 62 the picture has been idle 31 days again:
        // the next run finds it.
        Assert.Equal(HttpStatusCode.OK, await DownloadAsync(Bob, shown));
        Clock.Advance(Day * 31);
        Assert.Equal(1, await Server.Host.MediaRetention.RunAsync(CancellationToken.None));
        Assert.False(OnDisk(shown));
        Assert.Equal(HttpStatusCode.NotFound, await DownloadAsync(Bob, shown));
    }

    [Fact]
    public async Task AnUploaderCannotDeleteMediaAHeldMessageShowsUntilTheHoldEnds()
    {
        var roomId = await RoomHoldingAsync(Day);
        var shown = await UploadAsync(Alice);
        var shownTs = await OriginTsAsync(Bob, roomId, await SendPictureAsync(roomId, shown));
        var unsent = await UploadAsync(Alice);
        string Path(string mxc) => "/_matrix/client/unstable/org.matrix.msc3911/media/" + mxc["mxc://".Length..];

        var refused = await Alice.DeleteAsync(Path(shown));
        refused.Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        Assert.Equal(shownTs + (long)Day.TotalMilliseconds, refused.Body["held_until_ts"]!.GetValue<long>());
        Assert.True(OnDisk(shown));
        Assert.Equal(HttpStatusCode.OK, await DownloadAsync(Bob, shown));
        (await Alice.DeleteAsync(Path(unsent))).Ok();
        Assert.False(OnDisk(unsent));

        // Nothing is put off on the uploader's behalf: once the hold has ended, deleting works.
        Clock.Advance(Day * 2);
        await RunHeldDeletionsAsync();
        Assert.True(OnDisk(shown));
        (await Alice.DeleteAsync(Path(shown))).Ok();
        Assert.False(OnDisk(shown));
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
