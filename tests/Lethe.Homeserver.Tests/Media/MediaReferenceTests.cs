using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Media;

/// <summary>Media named only by messages that retention purges or self-destruct prunes is deleted with them, bytes included; media something else still names is kept.</summary>
public abstract class MediaReferenceTests(DatabaseEngine engine) : IAsyncLifetime
{
    private static readonly TimeSpan Day = TimeSpan.FromDays(1);

    private const string Config = """
        retention:
          enabled: true
          purge_jobs:
            - interval: 1y

        """;

    private TestClock Clock { get; } = new();

    private TestHomeserver Server { get; set; } = null!;

    private MatrixClient Alice { get; set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + Config, clock: Clock);
        Alice = await Server.RegisterAsync("alice");
    }

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    [Fact]
    public async Task PurgingTheLastMessageThatNamesMediaDeletesTheMedia()
    {
        var roomId = await Alice.CreateRoomAsync(new JsonObject { ["preset"] = "private_chat" });
        (await Alice.SetStateAsync(roomId, "m.room.retention", new JsonObject { ["max_lifetime"] = (long)Day.TotalMilliseconds })).Ok();
        var only = await UploadAsync();
        var shared = await UploadAsync();
        var unsent = await UploadAsync();
        await SendImageAsync(roomId, only);
        await SendImageAsync(roomId, shared);

        Clock.Advance(Day * 2);
        await SendImageAsync(roomId, shared); // still named by a message that has not expired
        await Alice.SendTextAsync(roomId, "newest");
        Assert.True(await Server.Host.Purger.RunAllAsync(CancellationToken.None) >= 2);

        Assert.False(File.Exists(ContentPath(only)), "media named only by purged messages is deleted");
        await ExpectNotFoundAsync(only);
        Assert.True(File.Exists(ContentPath(shared)), "media still named by a live message stays");
        Assert.True(File.Exists(ContentPath(unsent)), "media never sent is not retention's business");
    }

    [Fact]
    public async Task ASelfDestructingMessageTakesItsMediaWithIt()
    {
        var roomId = await Alice.CreateRoomAsync(new JsonObject { ["preset"] = "private_chat" });
        var media = await UploadAsync();
        (await Alice.SendEventAsync(roomId, "m.room.message", new JsonObject
        {
            ["msgtype"] = "m.image",
            ["body"] = "gone soon",
            ["url"] = media,
            ["org.matrix.self_destruct_after"] = Server.Host.Services.NowMs + 1000,
        })).Ok();
        await Alice.SendTextAsync(roomId, "later");
        Clock.Advance(TimeSpan.FromMinutes(1));
        await Server.Host.SelfDestruct.RunDueAsync(CancellationToken.None);
        Assert.False(File.Exists(ContentPath(media)));
        await ExpectNotFoundAsync(media);
    }

    [Fact]
    public async Task RedactionGcTakesTheMediaOfTheRedactedMessage()
    {
        var roomId = await Alice.CreateRoomAsync(new JsonObject { ["preset"] = "private_chat" });
        var media = await UploadAsync();
        await SendImageAsync(roomId, media);
        var id = (await Alice.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b&limit=1")).Ok()["chunk"]![0]!["event_id"]!.GetValue<string>();
        (await Alice.PutAsync($"/_matrix/client/v3/rooms/{roomId}/redact/{id}/r1", new JsonObject())).Ok();
        Clock.Advance(Day * 8);
        Assert.Equal(1, (await Server.Host.PrivacyGc.RunNowAsync(CancellationToken.None)).RedactionsPruned);
        Assert.False(File.Exists(ContentPath(media)), "the redacted message's image goes with its content");
    }

    [Fact]
    public async Task ErasureDeletesTheUsersUploads()
    {
        var media = await UploadAsync();
        await Server.Host.Services.Erasure.EraseAsync(Alice.UserId, CancellationToken.None);
        Assert.False(File.Exists(ContentPath(media)));
    }

    [Fact]
    public async Task DeletingARoomDeletesMediaOnlyItNamed()
    {
        var avatar = await UploadAsync();
        var roomId = await Alice.CreateRoomAsync(new JsonObject { ["preset"] = "private_chat" });
        (await Alice.SetStateAsync(roomId, "m.room.avatar", new JsonObject { ["url"] = avatar })).Ok();
        var picture = await UploadAsync();
        await SendImageAsync(roomId, picture);
        await Server.Host.Services.RoomPurge.ShutDownAndPurgeAsync(roomId, force: false, CancellationToken.None);
        Assert.False(File.Exists(ContentPath(avatar)));
        Assert.False(File.Exists(ContentPath(picture)));
    }

    private async Task SendImageAsync(string roomId, string mxc) =>
        (await Alice.SendEventAsync(roomId, "m.room.message", new JsonObject
        {
            ["msgtype"] = "m.image",
            ["body"] = "picture",
            ["url"] = mxc,
            ["info"] = new JsonObject { ["mimetype"] = "image/png", ["thumbnail_url"] = mxc },
        })).Ok();

    private async Task<string> UploadAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/_matrix/media/v3/upload") { Content = new ByteArrayContent(RandomNumberGenerator.GetBytes(200)) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Alice.AccessToken);
        using var response = await Server.Client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonNode.Parse(body)!["content_uri"]!.GetValue<string>();
    }

    private async Task ExpectNotFoundAsync(string mxc) =>
        (await Alice.GetAsync("/_matrix/client/v1/media/download/" + mxc["mxc://".Length..])).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");

    private string ContentPath(string mxc) => Server.Host.Services.Media.Files.ContentPath(mxc[(mxc.LastIndexOf('/') + 1)..]);
}

public sealed class SqliteMediaReferenceTests() : MediaReferenceTests(DatabaseEngine.Sqlite);

public sealed class PostgresMediaReferenceTests() : MediaReferenceTests(DatabaseEngine.Postgres);
