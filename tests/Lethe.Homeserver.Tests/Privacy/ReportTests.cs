using System.Net;
using System.Text.Json.Nodes;
using Dapper;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Privacy;

/// <summary>Content reports: admins review and delete them (Synapse's event_reports API); they go with the reporter's erasure and after report_retention_period.</summary>
public abstract class ReportTests(DatabaseEngine engine)
{
    private sealed record Setup(TestHomeserver Server, TestClock Clock, MatrixClient Root, MatrixClient Alice, MatrixClient Bob, MatrixClient Carol, string RoomId, string EventId);

    private async Task<Setup> StartAsync(string yaml = "")
    {
        var clock = new TestClock();
        var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration + yaml, clock: clock);
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var root = server.NewClient();
        await root.LoginAsync("root");
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        var carol = await server.RegisterAsync("carol");
        var roomId = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["name"] = "Reported room", ["room_alias_name"] = "reported" });
        await bob.JoinAsync(roomId);
        await carol.JoinAsync(roomId);
        var eventId = (await bob.SendEventAsync(roomId, "m.room.message", new JsonObject { ["msgtype"] = "m.text", ["body"] = "zq-offending" })).Ok()["event_id"]!.GetValue<string>();
        return new Setup(server, clock, root, alice, bob, carol, roomId, eventId);
    }

    private static async Task ReportAsync(MatrixClient reporter, string roomId, string eventId, string reason, int? score = null)
    {
        var body = new JsonObject { ["reason"] = reason };
        if (score is not null)
        {
            body["score"] = score;
        }

        (await reporter.PostAsync($"/_matrix/client/v3/rooms/{roomId}/report/{eventId}", body)).Ok();
    }

    private static async Task<long> StoredReportsAsync(TestHomeserver server, string reason) =>
        await server.Host.Database.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM reports WHERE reason = @reason", new { reason }));

    [Fact]
    public async Task AdminsListShowAndDeleteEventReports()
    {
        var s = await StartAsync();
        await using var _ = s.Server;
        var deletedReason = $"zq-report-deleted-{Guid.NewGuid():N}";
        await ReportAsync(s.Alice, s.RoomId, s.EventId, deletedReason, score: -50);
        (await s.Alice.PostAsync($"/_matrix/client/v3/rooms/{s.RoomId}/report", new JsonObject { ["reason"] = "the whole room" })).Ok();
        await ReportAsync(s.Carol, s.RoomId, s.EventId, "carol's report");

        (await s.Bob.GetAsync("/_synapse/admin/v1/event_reports")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await s.Bob.GetAsync("/_synapse/admin/v1/event_reports/1")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await s.Bob.DeleteAsync("/_synapse/admin/v1/event_reports/1")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");

        // Newest first by default; the room report is not an event report.
        var list = (await s.Root.GetAsync("/_synapse/admin/v1/event_reports")).Ok();
        Assert.Equal(2, list["total"]!.GetValue<long>());
        Assert.Null(list["next_token"]);
        var reports = list["event_reports"]!.AsArray();
        Assert.Equal(["carol's report", deletedReason], reports.Select(r => r!["reason"]!.GetValue<string>()));
        var alices = reports[1]!.AsObject();
        Assert.Equal(s.EventId, alices["event_id"]!.GetValue<string>());
        Assert.Equal(s.RoomId, alices["room_id"]!.GetValue<string>());
        Assert.Equal("Reported room", alices["name"]!.GetValue<string>());
        Assert.Equal("#reported:test.local", alices["canonical_alias"]!.GetValue<string>());
        Assert.Equal(s.Bob.UserId, alices["sender"]!.GetValue<string>());
        Assert.Equal(s.Alice.UserId, alices["user_id"]!.GetValue<string>());
        Assert.Equal(-50, alices["score"]!.GetValue<long>());
        Assert.True(alices["received_ts"]!.GetValue<long>() > 0);

        // Paging, order and filters.
        var first = (await s.Root.GetAsync("/_synapse/admin/v1/event_reports?limit=1&dir=f")).Ok();
        Assert.Equal(deletedReason, first["event_reports"]![0]!["reason"]!.GetValue<string>());
        Assert.Equal(1, first["next_token"]!.GetValue<long>());
        var second = (await s.Root.GetAsync("/_synapse/admin/v1/event_reports?limit=1&dir=f&from=1")).Ok();
        Assert.Equal("carol's report", Assert.Single(second["event_reports"]!.AsArray())!["reason"]!.GetValue<string>());
        Assert.Null(second["next_token"]);
        Assert.Equal(1, (await s.Root.GetAsync("/_synapse/admin/v1/event_reports?user_id=carol")).Ok()["total"]!.GetValue<long>());
        Assert.Equal(2, (await s.Root.GetAsync($"/_synapse/admin/v1/event_reports?room_id={Uri.EscapeDataString(s.RoomId)}")).Ok()["total"]!.GetValue<long>());
        Assert.Equal(0, (await s.Root.GetAsync("/_synapse/admin/v1/event_reports?room_id=%21elsewhere")).Ok()["total"]!.GetValue<long>());
        (await s.Root.GetAsync("/_synapse/admin/v1/event_reports?dir=sideways")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await s.Root.GetAsync("/_synapse/admin/v1/event_reports?limit=-1")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");

        // One report shows the event reported.
        var id = alices["id"]!.GetValue<long>();
        var one = (await s.Root.GetAsync($"/_synapse/admin/v1/event_reports/{id}")).Ok();
        Assert.Equal(deletedReason, one["reason"]!.GetValue<string>());
        Assert.Equal("zq-offending", one["event_json"]!["content"]!["body"]!.GetValue<string>());
        Assert.Equal(s.Bob.UserId, one["event_json"]!["sender"]!.GetValue<string>());
        (await s.Root.GetAsync("/_synapse/admin/v1/event_reports/abc")).Error(HttpStatusCode.BadRequest, "M_INVALID_PARAM");
        (await s.Root.GetAsync("/_synapse/admin/v1/event_reports/99999")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        var roomReport = await s.Server.Host.Database.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT id FROM reports WHERE event_id IS NULL"));
        (await s.Root.GetAsync($"/_synapse/admin/v1/event_reports/{roomReport}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");

        // Deleting takes it out of the list, the database and its files.
        Assert.Empty((await s.Root.DeleteAsync($"/_synapse/admin/v1/event_reports/{id}")).Ok());
        (await s.Root.GetAsync($"/_synapse/admin/v1/event_reports/{id}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await s.Root.DeleteAsync($"/_synapse/admin/v1/event_reports/{id}")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        Assert.Equal(1, (await s.Root.GetAsync("/_synapse/admin/v1/event_reports")).Ok()["total"]!.GetValue<long>());
        Assert.Equal(0, await StoredReportsAsync(s.Server, deletedReason));
        if (engine == DatabaseEngine.Sqlite)
        {
            Assert.False(await s.Server.FilesContainAsync(deletedReason));
            Assert.True(await s.Server.FilesContainAsync("carol's report"));
        }
    }

    [Fact]
    public async Task ReportsGoWithTheReportersErasureAndAfterTheRetentionPeriod()
    {
        var s = await StartAsync("report_retention_period: 30d\n");
        await using var _ = s.Server;
        var alicesReason = $"zq-alice-reason-{Guid.NewGuid():N}";
        var carolsReason = $"zq-carol-reason-{Guid.NewGuid():N}";
        await ReportAsync(s.Alice, s.RoomId, s.EventId, alicesReason);
        await ReportAsync(s.Carol, s.RoomId, s.EventId, carolsReason);
        (await s.Carol.PostAsync($"/_matrix/client/v3/users/{s.Bob.UserId}/report", new JsonObject { ["reason"] = "about bob" })).Ok();
        if (engine == DatabaseEngine.Sqlite)
        {
            Assert.True(await s.Server.FilesContainAsync(alicesReason));
        }

        // Carol can see what is kept about her reports, and until when.
        var privacy = (await s.Carol.GetAsync("/_lethe/client/v1/privacy")).Ok();
        Assert.Equal(30 * 86_400_000L, privacy["policies"]!["report_retention_period_ms"]!.GetValue<long>());
        var made = privacy["stored"]!["reports_made"]!.AsArray();
        Assert.Equal(2, made.Count);
        Assert.All(made, r => Assert.Equal(r!["received_ts"]!.GetValue<long>() + 30 * 86_400_000L, r["deleted_after_ts"]!.GetValue<long>()));

        // Alice is erased: the reports she made go, from the files too; Carol's stay.
        (await s.Root.PostAsync("/_synapse/admin/v1/deactivate/" + s.Alice.UserId, new JsonObject { ["erase"] = true })).Ok();
        Assert.Equal(0, await StoredReportsAsync(s.Server, alicesReason));
        Assert.Equal(1, await StoredReportsAsync(s.Server, carolsReason));
        if (engine == DatabaseEngine.Sqlite)
        {
            Assert.False(await s.Server.FilesContainAsync(alicesReason));
        }

        // Reports of every kind go report_retention_period after they arrived, and not before.
        async Task<long> GcAsync() => (await s.Root.PostAsync("/_lethe/admin/v1/privacy/gc", new JsonObject())).Ok()["reports_pruned"]!.GetValue<long>();
        s.Clock.Advance(TimeSpan.FromDays(29));
        Assert.Equal(0, await GcAsync());
        Assert.Equal(1, (await s.Root.GetAsync("/_synapse/admin/v1/event_reports")).Ok()["total"]!.GetValue<long>());
        s.Clock.Advance(TimeSpan.FromDays(2));
        Assert.Equal(2, await GcAsync());
        Assert.Equal(0, (await s.Root.GetAsync("/_synapse/admin/v1/event_reports")).Ok()["total"]!.GetValue<long>());
        Assert.Equal(0, await s.Server.Host.Database.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM reports")));
        if (engine == DatabaseEngine.Sqlite)
        {
            Assert.False(await s.Server.FilesContainAsync(carolsReason));
        }
    }

    [Fact]
    public async Task WithANullPeriodReportsAreKept()
    {
        Assert.Equal(365 * 86_400_000L, Lethe.Homeserver.Configuration.ConfigLoader.Load("server_name: example.org\n", "/etc/lethe").ReportRetentionPeriod);
        var s = await StartAsync("report_retention_period: null\n");
        await using var _ = s.Server;
        await ReportAsync(s.Carol, s.RoomId, s.EventId, "kept for ever");
        s.Clock.Advance(TimeSpan.FromDays(3650));
        Assert.Equal(0, (await s.Root.PostAsync("/_lethe/admin/v1/privacy/gc", new JsonObject())).Ok()["reports_pruned"]!.GetValue<long>());
        Assert.Equal(1, await StoredReportsAsync(s.Server, "kept for ever"));
    }
}

public sealed class SqliteReportTests() : ReportTests(DatabaseEngine.Sqlite);

public sealed class PostgresReportTests() : ReportTests(DatabaseEngine.Postgres);
