using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Directories;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Directories;

/// <summary>User directory search, on both database engines.</summary>
public abstract class UserDirectoryTests(DatabaseEngine engine) : IAsyncLifetime
{
    protected TestHomeserver Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    private static async Task<JsonObject> Search(MatrixClient c, string term, int? limit = null)
    {
        var body = new JsonObject { ["search_term"] = term };
        if (limit is not null)
        {
            body["limit"] = limit;
        }

        return (await c.PostAsync("/_matrix/client/v3/user_directory/search", body)).Ok();
    }

    private static async Task<List<string>> Found(MatrixClient c, string term) =>
        (await Search(c, term))["results"]!.AsArray().Select(r => r!["user_id"]!.GetValue<string>()).ToList();

    [Fact]
    public async Task FindsThoseWhoShareARoomOrSitInAPublicOneAndNobodyElse()
    {
        var alice = await Server.RegisterAsync("alice");
        var bob = await Server.RegisterAsync("bob");
        var carol = await Server.RegisterAsync("carol");
        var dave = await Server.RegisterAsync("dave");
        var erin = await Server.RegisterAsync("erin");
        var frank = await Server.RegisterAsync("frank");

        var shared = await alice.CreateRoomAsync();
        await alice.InviteAsync(shared, bob.UserId);
        await bob.JoinAsync(shared);
        await carol.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await frank.CreateRoomAsync(new JsonObject
        {
            ["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.history_visibility", ["content"] = new JsonObject { ["history_visibility"] = "world_readable" } }),
        });
        await dave.CreateRoomAsync();
        // An invitation is not membership.
        await alice.InviteAsync(shared, erin.UserId);

        Assert.Equal([bob.UserId], await Found(alice, "bob"));
        Assert.Equal([carol.UserId], await Found(alice, "carol"));
        Assert.Equal([frank.UserId], await Found(alice, "frank"));
        Assert.Empty(await Found(alice, "dave"));
        Assert.Empty(await Found(alice, "erin"));
        // Dave sees Carol (public room) but not Bob (no shared room).
        Assert.Equal([carol.UserId], await Found(dave, "carol"));
        Assert.Empty(await Found(dave, "bob"));

        // Leaving the shared room takes Bob out of Alice's results.
        (await bob.PostAsync($"/_matrix/client/v3/rooms/{shared}/leave", new JsonObject())).Ok();
        Assert.Empty(await Found(alice, "bob"));
    }

    [Fact]
    public async Task MatchesLocalpartsAndDisplayNamesCaseInsensitivelyBestFirst()
    {
        var alice = await Server.RegisterAsync("alice");
        var lobby = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        var anna = await Server.RegisterAsync("anna");
        var annabel = await Server.RegisterAsync("annabel");
        var joanna = await Server.RegisterAsync("joanna");
        var zoe = await Server.RegisterAsync("z1");
        foreach (var c in new[] { anna, annabel, joanna, zoe })
        {
            await c.JoinAsync(lobby);
        }

        (await zoe.PutAsync($"/_matrix/client/v3/profile/{zoe.UserId}/displayname", new JsonObject { ["displayname"] = "Zoë Smith" })).Ok();
        (await zoe.PutAsync($"/_matrix/client/v3/profile/{zoe.UserId}/avatar_url", new JsonObject { ["avatar_url"] = "mxc://test.local/zoe" })).Ok();

        // A whole word first, then a word that starts with the term, then the term inside a word.
        Assert.Equal([anna.UserId, annabel.UserId, joanna.UserId], await Found(alice, "ANNA"));
        // Searching by full user ID puts that user first (the server name matches everyone a little).
        Assert.Equal(anna.UserId, (await Found(alice, "@anna:test.local"))[0]);

        // Display names count, with non-ASCII letters folded; every word of the term must match.
        Assert.Equal([zoe.UserId], await Found(alice, "ZOË"));
        Assert.Equal([zoe.UserId], await Found(alice, "smi"));
        Assert.Equal([zoe.UserId], await Found(alice, "smith zoë"));
        Assert.Empty(await Found(alice, "smith annabel"));
        Assert.Empty(await Found(alice, "zoe"));
        var hit = Assert.Single((await Search(alice, "zoë"))["results"]!.AsArray())!;
        Assert.Equal("Zoë Smith", hit["display_name"]!.GetValue<string>());
        Assert.Equal("mxc://test.local/zoe", hit["avatar_url"]!.GetValue<string>());

        // Equal matches: those with an avatar come first.
        (await annabel.PutAsync($"/_matrix/client/v3/profile/{annabel.UserId}/displayname", new JsonObject { ["displayname"] = "Anna B" })).Ok();
        (await annabel.PutAsync($"/_matrix/client/v3/profile/{annabel.UserId}/avatar_url", new JsonObject { ["avatar_url"] = "mxc://test.local/ab" })).Ok();
        Assert.Equal([annabel.UserId, anna.UserId, joanna.UserId], await Found(alice, "anna"));

        // A term with no letters or digits matches nobody.
        Assert.Empty(await Found(alice, "@:."));
        Assert.Empty(await Found(alice, ""));
    }

    [Fact]
    public async Task DeactivatedUsersNeverAppear()
    {
        var alice = await Server.RegisterAsync("alice");
        var bob = await Server.RegisterAsync("bob");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        await bob.JoinAsync(roomId);
        Assert.Equal([bob.UserId], await Found(alice, "bob"));
        (await bob.PostAsync("/_matrix/client/v3/account/deactivate", new JsonObject { ["auth"] = bob.PasswordAuth("correct horse battery") })).Ok();
        Assert.Empty(await Found(alice, "bob"));
    }

    [Fact]
    public async Task LimitCutsTheResultsAndSaysSo()
    {
        var alice = await Server.RegisterAsync("alice");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat" });
        for (var i = 0; i < 12; i++)
        {
            await (await Server.RegisterAsync("fan" + i)).JoinAsync(roomId);
        }

        var some = await Search(alice, "fan", 5);
        Assert.Equal(5, some["results"]!.AsArray().Count);
        Assert.True(some["limited"]!.GetValue<bool>());
        var byDefault = await Search(alice, "fan");
        Assert.Equal(10, byDefault["results"]!.AsArray().Count);
        Assert.True(byDefault["limited"]!.GetValue<bool>());
        var all = await Search(alice, "fan", 50);
        Assert.Equal(12, all["results"]!.AsArray().Count);
        Assert.False(all["limited"]!.GetValue<bool>());
        // Out-of-range limits are clamped, as Synapse does.
        Assert.Equal(12, (await Search(alice, "fan", 1000))["results"]!.AsArray().Count);
        Assert.Empty((await Search(alice, "fan", -3))["results"]!.AsArray());
    }

    [Fact]
    public async Task BadSearchRequestsAreRefused()
    {
        var alice = await Server.RegisterAsync("alice");
        const string path = "/_matrix/client/v3/user_directory/search";
        (await Server.NewClient().PostAsync(path, new JsonObject { ["search_term"] = "a" })).Error(HttpStatusCode.Unauthorized, "M_MISSING_TOKEN");
        (await alice.PostAsync(path, new JsonObject())).Error(HttpStatusCode.BadRequest, "M_MISSING_PARAM");
        (await alice.PostAsync(path, new JsonObject { ["search_term"] = 7 })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.PostAsync(path, new JsonObject { ["search_term"] = "a", ["limit"] = "10" })).Error(HttpStatusCode.BadRequest, "M_BAD_JSON");
        (await alice.PostAsync(path, "[]")).Error(HttpStatusCode.BadRequest, "M_NOT_JSON");
        (await alice.PostAsync(path, new JsonObject { ["search_term"] = new string('a', 2000) })).Error(HttpStatusCode.BadRequest, "M_TOO_LARGE");
    }
}

public sealed class SqliteUserDirectoryTests() : UserDirectoryTests(DatabaseEngine.Sqlite);

public sealed class PostgresUserDirectoryTests() : UserDirectoryTests(DatabaseEngine.Postgres);

/// <summary>The <c>rc_user_directory</c> bucket throttles searches per user.</summary>
public sealed class UserDirectoryRateLimitTests : IAsyncLifetime
{
    private TestHomeserver _server = null!;

    public async ValueTask InitializeAsync() => _server = await TestHomeserver.StartAsync(
        extraYaml: TestHomeserver.OpenRegistration + "rc_user_directory: {per_second: 0.001, burst_count: 2}\n");

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task SearchesBeyondTheBurstAreThrottled()
    {
        var alice = await _server.RegisterAsync("alice");
        var body = new JsonObject { ["search_term"] = "bob" };
        (await alice.PostAsync("/_matrix/client/v3/user_directory/search", body)).Ok();
        (await alice.PostAsync("/_matrix/client/v3/user_directory/search", body)).Ok();
        var throttled = await alice.PostAsync("/_matrix/client/v3/user_directory/search", body);
        throttled.Error(HttpStatusCode.TooManyRequests, "M_LIMIT_EXCEEDED");
        Assert.True(throttled.Body["retry_after_ms"]!.GetValue<long>() > 0);
    }
}

/// <summary>The matching and ranking rules of the user directory, without a server.</summary>
public sealed class UserDirectoryScoringTests
{
    [Fact]
    public void WordsAreLowerCasedRunsOfLettersAndDigits() =>
        Assert.Equal(["bob", "smith", "example", "org", "zoë", "2"], UserDirectory.Words("@Bob.Smith:example.org ZOË-2").ToList());

    [Fact]
    public void WholeWordsBeatPrefixesWhichBeatOtherOccurrences()
    {
        Assert.Equal(3, UserDirectory.Score(["anna"], "@anna:test.local", null));
        Assert.Equal(2, UserDirectory.Score(["anna"], "@annabel:test.local", null));
        Assert.Equal(1, UserDirectory.Score(["anna"], "@joanna:test.local", null));
        Assert.Equal(3, UserDirectory.Score(["smith"], "@x:test.local", "Ann Smith"));
        // The server name matches too (clients search by full user ID), but only as an occurrence.
        Assert.Equal(1, UserDirectory.Score(["test"], "@x:test.local", null));
        Assert.Null(UserDirectory.Score(["anna", "zed"], "@anna:test.local", "Anna"));
    }
}
