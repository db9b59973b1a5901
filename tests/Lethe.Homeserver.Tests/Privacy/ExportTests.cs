using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Homeserver.Tests.Keys;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Privacy;

/// <summary>A user's data export round-trips: it follows docs/export.md and holds every message they sent, and nothing of rooms they were never in.</summary>
public abstract class ExportTests(DatabaseEngine engine)
{
    private const string Tricky = "a body with a comma, a \"quote\" and\na new line";

    private sealed record Setup(TestHomeserver Server, MatrixClient Root, MatrixClient Alice, MatrixClient Bob, List<string> Sent, string Shared, string Left, string Private, string Upload, byte[] UploadBytes)
    {
        public required string BobsLast { get; init; }

        public required string FilterId { get; init; }

        public required string BackupVersion { get; init; }

        public required E2eeDevice AliceKeys { get; init; }
    }

    /// <summary>docs/export.schema.json, and schemas for its <c>$defs</c> (the lines of the .jsonl files), built once.</summary>
    private static readonly Lazy<Dictionary<string, JsonSchema>> Schemas = new(() =>
    {
        var options = new BuildOptions { SchemaRegistry = new SchemaRegistry() };
        var root = JsonSchema.FromText(File.ReadAllText(Path.Combine(LetheProcess.RepoRoot, "docs", "export.schema.json")), options);
        var id = "https://lethe.invalid/export.schema.json";
        return new Dictionary<string, JsonSchema>
        {
            ["user.json"] = root,
            ["client_event"] = JsonSchema.FromText($$"""{"$ref": "{{id}}#/$defs/client_event"}""", options),
            ["media_item"] = JsonSchema.FromText($$"""{"$ref": "{{id}}#/$defs/media_item"}""", options),
        };
    });

    /// <summary>Validates against the documented schema; the message lists every failing location.</summary>
    private static (bool Valid, string Errors) Validate(JsonNode instance, string schema)
    {
        using var doc = JsonDocument.Parse(instance.ToJsonString());
        var result = Schemas.Value[schema].Evaluate(doc.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        var errors = (result.Details ?? []).Where(d => d.Errors is { Count: > 0 }).Select(d => $"{d.InstanceLocation}: {string.Join("; ", d.Errors!.Values)}");
        return (result.IsValid, string.Join("\n", errors));
    }

    private static void AssertValid(JsonNode instance, string schema)
    {
        var (valid, errors) = Validate(instance, schema);
        Assert.True(valid, $"{schema} does not match docs/export.schema.json:\n{errors}\n{instance.ToJsonString()}");
    }

    private async Task<Setup> StartAsync()
    {
        var server = await TestHomeserver.StartAsync(engine, extraYaml: TestHomeserver.OpenRegistration);
        await Accounts.UserStoreSeed.AdminAsync(server, "root");
        var root = server.NewClient();
        await root.LoginAsync("root");
        var alice = await server.RegisterAsync("alice");
        var bob = await server.RegisterAsync("bob");
        var shared = await alice.CreateRoomAsync(new JsonObject { ["preset"] = "public_chat", ["name"] = "Shared" });
        await bob.JoinAsync(shared);
        var sent = new List<string>();
        var bobsLast = "";
        for (var i = 0; i < 7; i++)
        {
            var body = i == 3 ? Tricky : $"zq-alice-{i}-{Guid.NewGuid():N}";
            await alice.SendTextAsync(shared, body);
            sent.Add(body);
            bobsLast = await bob.SendTextAsync(shared, "bob says " + i);
        }

        // What else the server keeps for her: a filter, presence, a read receipt, a report, and public E2EE keys.
        var filterId = (await alice.PostAsync($"/_matrix/client/v3/user/{alice.UserId}/filter", new JsonObject { ["room"] = new JsonObject { ["timeline"] = new JsonObject { ["limit"] = 7 } } })).Ok()["filter_id"]!.GetValue<string>();
        (await alice.PutAsync($"/_matrix/client/v3/presence/{alice.UserId}/status", new JsonObject { ["presence"] = "unavailable", ["status_msg"] = "zq-out-for-lunch" })).Ok();
        (await alice.PostAsync($"/_matrix/client/v3/rooms/{shared}/receipt/m.read/{bobsLast}", new JsonObject())).Ok();
        (await alice.PostAsync($"/_matrix/client/v3/rooms/{shared}/report/{bobsLast}", new JsonObject { ["reason"] = "zq-alice-reports-bob", ["score"] = -10 })).Ok();
        var keys = new E2eeDevice(alice);
        (await keys.UploadAsync(deviceKeys: keys.DeviceKeys())).Ok();
        (await alice.PostAsync("/_matrix/client/v3/keys/device_signing/upload", keys.CrossSigningUpload())).Ok();
        var backup = (await alice.PostAsync("/_matrix/client/v3/room_keys/version", new JsonObject
        {
            ["algorithm"] = "m.megolm_backup.v1.curve25519-aes-sha2",
            ["auth_data"] = new JsonObject { ["public_key"] = "zq-backup-public-key" },
        })).Ok()["version"]!.GetValue<string>();

        var left = await alice.CreateRoomAsync(new JsonObject { ["name"] = "Left behind" });
        await alice.SendTextAsync(left, "zq-in-the-room-i-left");
        sent.Add("zq-in-the-room-i-left");
        (await alice.PostAsync($"/_matrix/client/v3/rooms/{left}/leave", new JsonObject())).Ok();
        var secret = await bob.CreateRoomAsync(new JsonObject());
        await bob.SendTextAsync(secret, "zq-bob-private");
        (await alice.PutAsync($"/_matrix/client/v3/user/{alice.UserId}/account_data/m.test", new JsonObject { ["a"] = 1 })).Ok();
        (await alice.PutAsync($"/_matrix/client/v3/user/{alice.UserId}/rooms/{shared}/tags/u.work", new JsonObject { ["order"] = 0.5 })).Ok();
        var bytes = System.Security.Cryptography.RandomNumberGenerator.GetBytes(300);
        using var upload = new HttpRequestMessage(HttpMethod.Post, "/_matrix/media/v3/upload?filename=notes.bin") { Content = new ByteArrayContent(bytes) };
        upload.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        upload.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", alice.AccessToken);
        using var uploaded = await server.Client.SendAsync(upload);
        var mxc = JsonNode.Parse(await uploaded.Content.ReadAsStringAsync())!["content_uri"]!.GetValue<string>();
        return new Setup(server, root, alice, bob, sent, shared, left, secret, mxc, bytes) { BobsLast = bobsLast, FilterId = filterId, BackupVersion = backup, AliceKeys = keys };
    }

    /// <summary>Reads an export (from a zip or a folder, as path → bytes) and checks it against docs/export.md.</summary>
    private static JsonObject CheckExport(Setup s, IReadOnlyDictionary<string, byte[]> files)
    {
        string Text(string path) => Encoding.UTF8.GetString(files[path]);
        var user = JsonNode.Parse(Text("user.json"))!.AsObject();
        AssertValid(user, "user.json");
        var broken = user.DeepClone().AsObject();
        broken["devices"]![0]!.AsObject().Remove("last_seen_user_agent");
        Assert.False(Validate(broken, "user.json").Valid, "the schema requires each device's user agent field");
        Assert.Equal("lethe.export.v1", user["format"]!.GetValue<string>());
        Assert.Equal(s.Alice.UserId, user["user_id"]!.GetValue<string>());
        Assert.True(user["exported_ts"]!.GetValue<long>() > 0);
        Assert.False(user["account"]!["deactivated"]!.GetValue<bool>());
        Assert.Equal("alice", user["profile"]!["displayname"]!.GetValue<string>());
        var device = Assert.Single(user["devices"]!.AsArray())!.AsObject();
        Assert.Equal(s.Alice.DeviceId, device["device_id"]!.GetValue<string>());
        Assert.Equal(1, user["account_data"]!["global"]!["m.test"]!["a"]!.GetValue<int>());
        Assert.NotNull(user["account_data"]!["rooms"]![s.Shared]!["m.tag"]!["tags"]!["u.work"]);
        Assert.DoesNotContain(s.Alice.AccessToken!, Text("user.json"), StringComparison.Ordinal);
        Assert.Contains(user["push_rules"]!["global"]!["override"]!.AsArray(), r => r!["rule_id"]!.GetValue<string>() == ".m.rule.master");
        Assert.Empty(user["pushers"]!.AsArray());
        Assert.Null(user["consent"]);
        Assert.Equal("test.local", user["server_name"]!.GetValue<string>());

        Assert.Equal("zq-out-for-lunch", user["presence"]!["status_msg"]!.GetValue<string>());
        var filter = Assert.Single(user["filters"]!.AsArray())!;
        Assert.Equal(s.FilterId, filter["filter_id"]!.GetValue<string>());
        Assert.Equal(7, filter["filter"]!["room"]!["timeline"]!["limit"]!.GetValue<int>());
        Assert.Contains(user["receipts"]!.AsArray(), r => r!["room_id"]!.GetValue<string>() == s.Shared && r["receipt_type"]!.GetValue<string>() == "m.read" && r["event_id"]!.GetValue<string>() == s.BobsLast);
        var report = Assert.Single(user["reports"]!.AsArray())!;
        Assert.Equal("event", report["kind"]!.GetValue<string>());
        Assert.Equal(s.BobsLast, report["event_id"]!.GetValue<string>());
        Assert.Equal("zq-alice-reports-bob", report["reason"]!.GetValue<string>());
        Assert.Equal(-10, report["score"]!.GetValue<int>());

        // Public E2EE keys as uploaded, and the backup version with its public auth data; no backed-up session keys.
        var e2ee = user["e2ee"]!;
        Assert.Equal(s.AliceKeys.Ed25519.PublicKeyBase64, e2ee["device_keys"]![s.Alice.DeviceId]!["keys"]!["ed25519:" + s.Alice.DeviceId]!.GetValue<string>());
        Assert.Equal(["master", "self_signing", "user_signing"], e2ee["cross_signing_keys"]!.AsObject().Select(k => k.Key));
        Assert.Equal(s.AliceKeys.Master.PublicKeyBase64, e2ee["cross_signing_keys"]!["master"]!["keys"]!.AsObject().Single().Value!.GetValue<string>());
        var version = Assert.Single(e2ee["key_backup_versions"]!.AsArray())!;
        Assert.Equal(s.BackupVersion, version["version"]!.GetValue<string>());
        Assert.Equal("zq-backup-public-key", version["auth_data"]!["public_key"]!.GetValue<string>());
        Assert.Equal(0, version["count"]!.GetValue<int>());

        var rooms = user["rooms"]!.AsArray().ToDictionary(r => r!["room_id"]!.GetValue<string>(), r => r!.AsObject());
        Assert.Equal("join", rooms[s.Shared]["membership"]!.GetValue<string>());
        Assert.Equal("leave", rooms[s.Left]["membership"]!.GetValue<string>());
        Assert.False(rooms.ContainsKey(s.Private));

        // Every message Alice sent, in order, as client events; nothing she did not send.
        var sentEvents = Text(user["files"]!["sent_events"]!.GetValue<string>()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        sentEvents.ForEach(e => AssertValid(e, "client_event"));
        Assert.All(sentEvents, e => Assert.Equal(s.Alice.UserId, e["sender"]!.GetValue<string>()));
        var bodies = sentEvents.Where(e => e["type"]!.GetValue<string>() == "m.room.message").Select(e => e["content"]!["body"]!.GetValue<string>()).ToList();
        Assert.Equal(s.Sent, bodies);

        // The CSV has a row per sent event, and bodies survive commas, quotes and new lines.
        var csv = ParseCsv(Text(user["files"]!["sent_messages_csv"]!.GetValue<string>()));
        Assert.Equal(["room_id", "event_id", "origin_server_ts", "sent_at_utc", "type", "msgtype", "body"], csv[0]);
        Assert.Equal(sentEvents.Count, csv.Count - 1);
        Assert.Equal(s.Sent, csv.Skip(1).Where(r => r[4] == "m.room.message").Select(r => r[6]));
        Assert.Contains(csv, r => r[6] == Tricky && r[0] == s.Shared);

        // Her upload, byte for byte, described in media.jsonl.
        var media = Text(user["files"]!["media"]!.GetValue<string>()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        var item = Assert.Single(media)!;
        AssertValid(item, "media_item");
        Assert.Equal(s.Upload, item["content_uri"]!.GetValue<string>());
        Assert.Equal("notes.bin", item["upload_name"]!.GetValue<string>());
        Assert.Equal(s.UploadBytes, files[item["file"]!.GetValue<string>()]);

        // The shared room's timeline as Alice sees it holds Bob's messages too; the private room is nowhere.
        var timeline = Text(rooms[s.Shared]["timeline"]!.GetValue<string>());
        foreach (var line in timeline.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            AssertValid(JsonNode.Parse(line)!, "client_event");
        }

        Assert.Contains("bob says 6", timeline, StringComparison.Ordinal);
        Assert.Contains("zq-in-the-room-i-left", Text(rooms[s.Left]["timeline"]!.GetValue<string>()), StringComparison.Ordinal);
        Assert.All(files, f => Assert.DoesNotContain("zq-bob-private", Encoding.UTF8.GetString(f.Value), StringComparison.Ordinal));
        return user;
    }

    private static Dictionary<string, byte[]> Unzip(byte[] zip)
    {
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        return archive.Entries.ToDictionary(e => e.FullName, e =>
        {
            using var stream = e.Open();
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            return copy.ToArray();
        });
    }

    /// <summary>RFC 4180 CSV: quoted fields may hold commas, doubled quotes and line breaks.</summary>
    private static List<string[]> ParseCsv(string text)
    {
        var rows = new List<string[]>();
        var row = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                row.Add(field.ToString());
                field.Clear();
            }
            else if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n')
            {
                row.Add(field.ToString());
                field.Clear();
                rows.Add([.. row]);
                row.Clear();
                i++;
            }
            else
            {
                field.Append(c);
            }
        }

        return rows;
    }

    [Fact]
    public async Task AdminAndUserExportsFollowTheDocumentedLayout()
    {
        var s = await StartAsync();
        await using var _ = s.Server;

        var admin = await s.Root.SendAsync(HttpMethod.Get, $"/_lethe/admin/v1/users/{s.Alice.UserId}/export");
        Assert.Equal(HttpStatusCode.OK, admin.Status);
        Assert.Equal("application/zip", admin.Raw.Content.Headers.ContentType!.MediaType);
        var user = CheckExport(s, Unzip(await admin.Raw.Content.ReadAsByteArrayAsync()));

        // The running server includes the device's latest IP address and user agent (the CLI reads what was written).
        Assert.Equal("127.0.0.1", user["devices"]![0]!["last_seen_ip"]!.GetValue<string>());

        var own = await s.Alice.SendAsync(HttpMethod.Post, "/_lethe/client/v1/export", new JsonObject());
        Assert.Equal(HttpStatusCode.OK, own.Status);
        CheckExport(s, Unzip(await own.Raw.Content.ReadAsByteArrayAsync()));

        // Users export only themselves, and not too often; admins only local accounts that exist.
        (await s.Bob.GetAsync($"/_lethe/admin/v1/users/{s.Alice.UserId}/export")).Error(HttpStatusCode.Forbidden, "M_FORBIDDEN");
        (await s.Root.GetAsync("/_lethe/admin/v1/users/@nobody:test.local/export")).Error(HttpStatusCode.NotFound, "M_NOT_FOUND");
        (await s.Alice.PostAsync("/_lethe/client/v1/export", new JsonObject())).Raw.Dispose();
        (await s.Alice.PostAsync("/_lethe/client/v1/export", new JsonObject())).Raw.Dispose();
        (await s.Alice.PostAsync("/_lethe/client/v1/export", new JsonObject())).Error(HttpStatusCode.TooManyRequests, "M_LIMIT_EXCEEDED");
    }

    [Fact]
    public async Task TheCliWritesTheSameExportIntoAFolder()
    {
        var s = await StartAsync();
        await using var _ = s.Server;
        var output = Path.Combine(s.Server.Dir, "export");
        var (code, stdout, stderr) = await LetheProcess.RunAsync(s.Server.Dir, "export-user", s.Alice.UserId, "--config", Path.Combine(s.Server.Dir, "homeserver.yaml"), "--out", output);
        Assert.True(code == 0, stdout + stderr);
        var files = Directory.GetFiles(output, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(output, f).Replace('\\', '/'), File.ReadAllBytes);
        CheckExport(s, files);

        var again = await LetheProcess.RunAsync(s.Server.Dir, "export-user", s.Alice.UserId, "--config", Path.Combine(s.Server.Dir, "homeserver.yaml"), "--out", output);
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("not empty", again.Stderr, StringComparison.Ordinal);
    }
}

public sealed class SqliteExportTests() : ExportTests(DatabaseEngine.Sqlite);

public sealed class PostgresExportTests() : ExportTests(DatabaseEngine.Postgres);
