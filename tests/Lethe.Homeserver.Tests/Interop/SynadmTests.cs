using System.Diagnostics;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Interop;

/// <summary>
/// Debian's synadm, the Synapse admin CLI operators already use, drives Lethe's admin API unchanged: it lists and shows
/// users and rooms, lists media by room and by user, purges history before an event and deactivates a user with GDPR
/// erasure.
/// </summary>
public sealed class SynadmTests
{
    [Theory]
    [InlineData(DatabaseEngine.Sqlite)]
    [InlineData(DatabaseEngine.Postgres)]
    public async Task SynadmListsShowsPurgesAndErases(DatabaseEngine engine)
    {
        await using var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var root = server.NewClient();
        await root.LoginAsync("root");
        var bob = await server.RegisterAsync("bob");
        var carol = await server.RegisterAsync("carol");
        var roomId = await bob.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["name"] = "Synadm room" });
        await carol.JoinAsync(roomId);
        var old = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            old.Add((await bob.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "old " + i })).Ok()["event_id"]!.GetValue<string>());
        }

        var cut = (await carol.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "the cut" })).Ok()["event_id"]!.GetValue<string>();
        await bob.SendTextAsync(roomId, "newest");

        var config = Path.Combine(server.Dir, "synadm.yaml");
        await File.WriteAllTextAsync(config, $"""
            user: "{root.UserId}"
            token: "{root.AccessToken}"
            base_url: "{server.BaseAddress.ToString().TrimEnd('/')}"
            admin_path: /_synapse/admin
            matrix_path: /_matrix
            timeout: 30
            server_discovery: well-known
            homeserver: test.local
            format: json
            """);

        var users = JsonNode.Parse(await SynadmAsync(config, "user", "list"))!;
        var names = users["users"]!.AsArray().Select(u => u!["name"]!.GetValue<string>()).ToList();
        Assert.Contains(bob.UserId, names);
        Assert.Contains(carol.UserId, names);
        Assert.Equal(3, users["total"]!.GetValue<long>());

        var details = JsonNode.Parse(await SynadmAsync(config, "user", "details", bob.UserId))!;
        Assert.Equal(bob.UserId, details["name"]!.GetValue<string>());
        Assert.False(details["deactivated"]!.GetValue<bool>());

        var rooms = JsonNode.Parse(await SynadmAsync(config, "room", "list"))!;
        var listed = rooms["rooms"]!.AsArray().Single(r => r!["room_id"]!.GetValue<string>() == roomId)!;
        Assert.Equal("Synadm room", listed["name"]!.GetValue<string>());
        var room = JsonNode.Parse(await SynadmAsync(config, "room", "details", roomId))!;
        Assert.Equal(2, room["joined_members"]!.GetValue<long>());
        Assert.Equal(bob.UserId, room["creator"]!.GetValue<string>());

        // Media, by room and by user.
        using (var upload = new HttpRequestMessage(HttpMethod.Post, "/_matrix/media/v3/upload") { Content = new ByteArrayContent(new byte[64]) })
        {
            upload.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
            upload.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bob.AccessToken);
            using var uploaded = await server.Client.SendAsync(upload);
            var mxc = JsonNode.Parse(await uploaded.Content.ReadAsStringAsync())!["content_uri"]!.GetValue<string>();
            (await bob.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.file", ["body"] = "a file", ["url"] = mxc })).Ok();
            var inRoom = JsonNode.Parse(await SynadmAsync(config, "media", "list", "-r", roomId))!;
            Assert.Equal(mxc, Assert.Single(inRoom["local"]!.AsArray())!.GetValue<string>());
            var ofUser = JsonNode.Parse(await SynadmAsync(config, "media", "list", "-u", bob.UserId))!;
            Assert.Equal(mxc[(mxc.LastIndexOf('/') + 1)..], Assert.Single(ofUser["media"]!.AsArray())!["media_id"]!.GetValue<string>());
        }

        // Purge everything before "the cut", local events included.
        var purge = JsonNode.Parse(await SynadmAsync(config, "history", "purge", roomId, "--before-event-id", cut, "--delete-local"))!;
        var purgeId = purge["purge_id"]!.GetValue<string>();
        await Poll.UntilAsync(
            async () => JsonNode.Parse(await SynadmAsync(config, "history", "purge-status", purgeId))!["status"]!.GetValue<string>() == "complete",
            TimeSpan.FromSeconds(30), "the purge to complete");
        foreach (var id in old)
        {
            (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{id}")).Error(System.Net.HttpStatusCode.NotFound, "M_NOT_FOUND");
        }

        (await bob.GetAsync($"/_matrix/client/v3/rooms/{roomId}/event/{cut}")).Ok();

        // Deactivate with erasure.
        await SynadmAsync(config, "user", "deactivate", carol.UserId, "--gdpr-erase");
        var erased = JsonNode.Parse(await SynadmAsync(config, "user", "details", carol.UserId))!;
        Assert.True(erased["deactivated"]!.GetValue<bool>());
        Assert.True(erased["erased"]!.GetValue<bool>());
        (await carol.GetAsync("/_matrix/client/v3/account/whoami")).Error(System.Net.HttpStatusCode.Unauthorized, "M_UNKNOWN_TOKEN");
    }

    /// <summary>Runs synadm in batch mode with JSON output; fails the test on a non-zero exit or a warning about a non-200 answer.</summary>
    private static async Task<string> SynadmAsync(string config, params string[] args)
    {
        var start = new ProcessStartInfo("synadm", ["-c", config, "--batch", "-o", "json", .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        var output = await stdout;
        var errors = await stderr;
        Assert.True(process.ExitCode == 0 && !errors.Contains("returned status code", StringComparison.Ordinal), $"synadm {string.Join(' ', args)} failed ({process.ExitCode}):\n{output}\n{errors}");
        return output;
    }
}
