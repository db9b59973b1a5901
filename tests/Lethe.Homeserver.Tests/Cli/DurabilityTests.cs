using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Cli;

/// <summary>What survives a crash and what a shutdown waits for, with the real server process.</summary>
public sealed class DurabilityTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private static Task<string> WriteConfigAsync(string dir, DatabaseEngine engine) => LetheProcess.WriteServeConfigAsync(dir, "durable.test", engine);

    [Theory]
    [InlineData(DatabaseEngine.Sqlite)]
    [InlineData(DatabaseEngine.Postgres)]
    public async Task AnAnsweredSendSurvivesSigkillAndItsTransactionIdStillMatches(DatabaseEngine engine)
    {
        var dir = TestHomeserver.NewTempDir();
        var config = await WriteConfigAsync(dir, engine);
        string roomId, eventId, token;
        await using (var first = LetheProcess.Start(dir, "serve", "--config", config))
        {
            using var http = new HttpClient { BaseAddress = await first.WaitForUrlAsync(StartTimeout) };
            var alice = await new MatrixClient(http).RegisterAsync("alice");
            token = alice.AccessToken!;
            roomId = await alice.CreateRoomAsync();
            eventId = (await alice.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "durable" }, "txn-crash")).Ok()["event_id"]!.GetValue<string>();

            // The moment the 200 is in hand, kill the process without any chance to flush.
            Process.GetProcessById(first.Pid).Kill();
            await first.WaitForExitAsync(TimeSpan.FromSeconds(10));
        }

        await using var second = LetheProcess.Start(dir, "serve", "--config", config);
        using var http2 = new HttpClient { BaseAddress = await second.WaitForUrlAsync(StartTimeout) };
        var again = new MatrixClient(http2, token);
        var stored = (await again.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{eventId}")).Ok();
        Assert.Equal("durable", stored["content"]!["body"]!.GetValue<string>());
        var retried = (await again.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "durable" }, "txn-crash")).Ok();
        Assert.Equal(eventId, retried["event_id"]!.GetValue<string>());
        var bodies = (await again.GetAsync($"/_matrix/client/v3/rooms/{roomId}/messages?dir=b")).Ok()["chunk"]!.AsArray().Bodies();
        Assert.Equal(["durable"], bodies);

        // New events after the restart continue the stream: sync sees them after the old position.
        var next = (await again.SyncAsync())["next_batch"]!.GetValue<string>();
        await again.SendTextAsync(roomId, "after restart");
        Assert.Equal(["after restart"], (await again.SyncAsync(next)).Timeline(roomId).Bodies());
        second.Terminate();
        Assert.Equal(0, await second.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task SigtermAnswersLongPollsAndExitsWithinTenSeconds()
    {
        var dir = TestHomeserver.NewTempDir();
        var config = await WriteConfigAsync(dir, DatabaseEngine.Sqlite);
        await using var lethe = LetheProcess.Start(dir, "serve", "--config", config);
        using var http = new HttpClient { BaseAddress = await lethe.WaitForUrlAsync(StartTimeout), Timeout = TimeSpan.FromSeconds(60) };
        var alice = await new MatrixClient(http).RegisterAsync("alice");
        var next = (await alice.SyncAsync())["next_batch"]!.GetValue<string>();
        var longPoll = alice.GetAsync($"/_matrix/client/v3/sync?since={next}&timeout=50000");
        await Poll.UntilAsync(() => Task.FromResult(!longPoll.IsCompleted), TimeSpan.FromSeconds(5), "the long-poll is in flight");

        lethe.Terminate();
        var answer = await longPoll.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal(0, await lethe.WaitForExitAsync(TimeSpan.FromSeconds(10)));
    }
}
