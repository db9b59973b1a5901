using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Relations;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Relations;

/// <summary>GET /timestamp_to_event, content reports, and the send-time relation rules.</summary>
public sealed class TimestampAndReportTests : IAsyncLifetime
{
    private TestHomeserver _server = null!;

    public async ValueTask InitializeAsync() => _server = await TestHomeserver.StartAsync(extraYaml: TestHomeserver.OpenRegistration);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    private static string Url(string roomId, long ts, string dir) => $"/_matrix/client/v1/rooms/{Uri.EscapeDataString(roomId)}/timestamp_to_event?ts={ts}&dir={dir}";

    /// <summary>Sends a message and returns its ID and server timestamp, then waits so the next event gets a later one.</summary>
    private static async Task<(string Id, long Ts)> SendTimedAsync(MatrixClient c, string roomId, string body)
    {
        var id = await c.SendTextAsync(roomId, body);
        var ts = (await c.EventAsync(roomId, id))["origin_server_ts"]!.GetValue<long>();
        await Task.Delay(15);
        return (id, ts);
    }

    [Fact]
    public async Task ClosestEventInEitherDirection()
    {
        var alice = await _server.RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync();
        await Task.Delay(15);
        var m1 = await SendTimedAsync(alice, roomId, "one");
        var m2 = await SendTimedAsync(alice, roomId, "two");
        var m3 = await SendTimedAsync(alice, roomId, "three");

        async Task<string> Find(long ts, string dir)
        {
            var body = (await alice.GetAsync(Url(roomId, ts, dir))).Ok();
            Assert.True(body["origin_server_ts"]!.GetValue<long>() is var found && (dir == "f" ? found >= ts : found <= ts));
            return body["event_id"]!.GetValue<string>();
        }

        // An event exactly at the time qualifies in both directions.
        Assert.Equal(m2.Id, await Find(m2.Ts, "f"));
        Assert.Equal(m2.Id, await Find(m2.Ts, "b"));
        Assert.Equal(m3.Id, await Find(m2.Ts + 1, "f"));
        Assert.Equal(m1.Id, await Find(m2.Ts - 1, "b"));
        Assert.Equal(m3.Id, await Find(m3.Ts + 60_000, "b"));

        (await alice.GetAsync(Url(roomId, m3.Ts + 60_000, "f"))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await alice.GetAsync(Url(roomId, 0, "b"))).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
    }

    [Fact]
    public async Task OnlyEventsTheReaderMaySeeAreFound()
    {
        var alice = await _server.RegisterAsync("host");
        var bob = await _server.RegisterAsync("latecomer");
        var outsider = await _server.RegisterAsync("stranger");
        var roomId = await alice.CreatePublicRoomAsync();
        await alice.SetHistoryVisibilityAsync(roomId, "joined");
        await Task.Delay(15);
        var secret = await SendTimedAsync(alice, roomId, "before bob");
        await bob.JoinAsync(roomId);
        await Task.Delay(15);
        var open = await SendTimedAsync(alice, roomId, "after bob joined");

        Assert.Equal(secret.Id, (await alice.GetAsync(Url(roomId, secret.Ts, "b"))).Ok()["event_id"]!.GetValue<string>());
        // Bob skips the message he may not see and lands on the last event he may: the switch to "joined" itself
        // (visible because the setting before it, "shared", lets later members see it).
        var fallback = (await bob.GetAsync(Url(roomId, secret.Ts, "b"))).Ok()["event_id"]!.GetValue<string>();
        Assert.Equal("m.room.history_visibility", (await alice.EventAsync(roomId, fallback))["type"]!.GetValue<string>());
        // Going forwards from before he joined, the first event bob may see is his own join.
        var first = (await bob.GetAsync(Url(roomId, secret.Ts, "f"))).Ok()["event_id"]!.GetValue<string>();
        Assert.Equal("m.room.member", (await bob.EventAsync(roomId, first))["type"]!.GetValue<string>());
        Assert.Equal(open.Id, (await bob.GetAsync(Url(roomId, open.Ts, "f"))).Ok()["event_id"]!.GetValue<string>());

        (await outsider.GetAsync(Url(roomId, open.Ts, "b"))).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await alice.GetAsync($"/_matrix/client/v1/rooms/{roomId}/timestamp_to_event?dir=f")).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await alice.GetAsync($"/_matrix/client/v1/rooms/{roomId}/timestamp_to_event?ts=1")).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await alice.GetAsync($"/_matrix/client/v1/rooms/{roomId}/timestamp_to_event?ts=soon&dir=f")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await alice.GetAsync($"/_matrix/client/v1/rooms/{roomId}/timestamp_to_event?ts=1&dir=up")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
    }

    [Fact]
    public async Task EventReportsAreStoredOnlyForVisibleEventsOfJoinedRooms()
    {
        var alice = await _server.RegisterAsync("offender");
        var bob = await _server.RegisterAsync("reporter");
        var outsider = await _server.RegisterAsync("bystander");
        var roomId = await alice.CreatePublicRoomAsync();
        await alice.SetHistoryVisibilityAsync(roomId, "joined");
        var hidden = await alice.SendTextAsync(roomId, "before bob joined");
        await bob.JoinAsync(roomId);
        var rude = await alice.SendTextAsync(roomId, "something rude");
        var url = $"/_matrix/client/v3/rooms/{roomId}/report/{rude}";

        Assert.Empty((await bob.PostAsync(url, new JsonObject { ["reason"] = "rude", ["score"] = -100 })).Ok());
        Assert.Empty((await bob.PostAsync(url, new JsonObject())).Ok());
        var reports = await new ReportStore(_server.Host.Database).ListAsync(10);
        Assert.Equal(2, reports.Count);
        var full = reports.Single(r => r.Reason is not null);
        Assert.Equal((roomId, rude, bob.UserId, "rude", -100L), (full.RoomId!, full.EventId!, full.UserId, full.Reason!, full.Score!.Value));
        Assert.Null(full.TargetUserId);

        // Not joined, not visible, not in this room, unknown, redacted: 404 alike.
        (await outsider.PostAsync(url, new JsonObject { ["reason"] = "x" })).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/report/{hidden}", new JsonObject())).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        var otherRoom = await bob.CreateRoomAsync();
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{otherRoom}/report/{rude}", new JsonObject())).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/report/$unknown", new JsonObject())).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        await alice.RedactAsync(roomId, rude);
        (await bob.PostAsync(url, new JsonObject())).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");

        var another = await alice.SendTextAsync(roomId, "another");
        var anotherUrl = $"/_matrix/client/v3/rooms/{roomId}/report/{another}";
        (await bob.PostAsync(anotherUrl, new JsonObject { ["reason"] = 5 })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await bob.PostAsync(anotherUrl, new JsonObject { ["score"] = "bad" })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await bob.PostAsync(anotherUrl, new JsonObject { ["score"] = 5 })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await bob.PostAsync(anotherUrl, "not json")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
        Assert.Equal(2, (await new ReportStore(_server.Host.Database).ListAsync(10)).Count);
    }

    [Fact]
    public async Task RoomAndUserReports()
    {
        var alice = await _server.RegisterAsync("roomowner");
        var bob = await _server.RegisterAsync("roomreporter");
        var roomId = await alice.CreateRoomAsync();

        // Room reports need no membership (spec 1.13): bob saw it in the directory, say.
        Assert.Empty((await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/report", new JsonObject { ["reason"] = "spam room" })).Ok());
        (await bob.PostAsync($"/_matrix/client/v3/rooms/!missing:test.local/report", new JsonObject { ["reason"] = "x" })).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{roomId}/report", new JsonObject())).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");

        Assert.Empty((await bob.PostAsync($"/_matrix/client/v3/users/{Uri.EscapeDataString(alice.UserId)}/report", new JsonObject { ["reason"] = "harassment" })).Ok());
        // Unknown and remote users: accepted, so the answer does not reveal who exists, but nothing is kept.
        Assert.Empty((await bob.PostAsync($"/_matrix/client/v3/users/{Uri.EscapeDataString("@nobody:test.local")}/report", new JsonObject { ["reason"] = "x" })).Ok());
        Assert.Empty((await bob.PostAsync($"/_matrix/client/v3/users/{Uri.EscapeDataString("@someone:elsewhere.example")}/report", new JsonObject { ["reason"] = "x" })).Ok());
        (await bob.PostAsync($"/_matrix/client/v3/users/not-a-user/report", new JsonObject { ["reason"] = "x" })).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");

        var reports = await new ReportStore(_server.Host.Database).ListAsync(10);
        Assert.Equal(2, reports.Count);
        Assert.Contains(reports, r => r.RoomId == roomId && r.EventId is null && r.Reason == "spam room" && r.UserId == bob.UserId);
        Assert.Contains(reports, r => r.TargetUserId == alice.UserId && r.RoomId is null && r.Reason == "harassment");
    }

    [Fact]
    public async Task SendTimeRulesRefuseDuplicateAnnotationsAndThreadsOnRelations()
    {
        var alice = await _server.RegisterAsync("ruled");
        var roomId = await alice.CreateRoomAsync();
        var otherRoom = await alice.CreateRoomAsync();
        var message = await alice.SendTextAsync(roomId, "hi");

        // Through the real send endpoint, so the rules hold for clients.
        Task<MatrixClient.Response> Send(string type, JsonObject relatesTo, string inRoom = "") =>
            alice.SendEventAsync(inRoom.Length == 0 ? roomId : inRoom, type, new JsonObject { ["m.relates_to"] = relatesTo });
        JsonObject Annotation(string key) => new() { ["rel_type"] = "m.annotation", ["event_id"] = message, ["key"] = key };

        var reaction = (await Send("m.reaction", Annotation("👍"))).Ok()["event_id"]!.GetValue<string>();
        (await Send("m.reaction", Annotation("👍"))).Error(System.Net.HttpStatusCode.BadRequest, "M_DUPLICATE_ANNOTATION");

        // Another key, or another event type, is a different annotation; a redacted one no longer counts.
        (await Send("m.reaction", Annotation("👎"))).Ok();
        (await Send("org.example.vote", Annotation("👍"))).Ok();
        await alice.RedactAsync(roomId, reaction);
        (await Send("m.reaction", Annotation("👍"))).Ok();

        (await Send("m.reaction", new JsonObject { ["rel_type"] = "m.annotation", ["event_id"] = message })).Error(System.Net.HttpStatusCode.BadRequest, "M_UNKNOWN");
        (await Send("m.reaction", Annotation(new string('x', 501)))).Error(System.Net.HttpStatusCode.BadRequest, "M_UNKNOWN");

        // No thread off an event that itself has a relation.
        var reply = await alice.ReplyInThreadAsync(roomId, message, "in thread");
        (await Send("m.room.message", new JsonObject { ["rel_type"] = "m.thread", ["event_id"] = message })).Ok();
        (await Send("m.room.message", new JsonObject { ["rel_type"] = "m.thread", ["event_id"] = reply })).Error(System.Net.HttpStatusCode.BadRequest, "M_UNKNOWN");

        // Relations across rooms, or to events nobody has heard of, are refused.
        (await Send("m.room.message", new JsonObject { ["rel_type"] = "m.reference", ["event_id"] = message }, otherRoom)).Error(System.Net.HttpStatusCode.BadRequest, "M_UNKNOWN");
        (await Send("m.room.message", new JsonObject { ["rel_type"] = "m.reference", ["event_id"] = "$never" })).Error(System.Net.HttpStatusCode.BadRequest, "M_UNKNOWN");

        // Edits pass: whether an edit counts is judged when aggregating (another sender's edit is simply not bundled).
        (await Send("m.room.message", new JsonObject { ["rel_type"] = "m.replace", ["event_id"] = message })).Ok();
    }
}
