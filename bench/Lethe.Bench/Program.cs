using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Lethe.Bench;

// Load generator for any Matrix homeserver: point it at a base URL; it registers its own users through the standard API.
// Usage: lethe-bench <scenario> --url URL [--pid PID] [--n N] [--c C] [--rooms R] [--messages M] [--history H] [--shared-secret S]
// Scenarios against --url: send-seq, send-concurrent, sync-wake, sync-incremental, initial-sync, rooms-joins,
// register-login, media [--n N] (1 MB transfers and thumbnails; or --lethe COMMAND to start a Lethe of its own),
// keys-claim, to-device, to-device-fanout (E2EE: 100 devices; 100 members x 2 devices).
// compare [--group-commit]: the ceiling (bare Kestrel + SQLite, see Ceiling.cs) and the server under test (--url, or
// --lethe COMMAND to start one) through the same scenarios in one run, the server as a percentage of the ceiling;
// ceiling (alias baseline) [--group-commit]: the ceiling's rows alone.
// These start their own Lethe (--lethe COMMAND [--postgres CONNECTION_STRING]): purge [--batch SIZE], scaling, export,
// push-room [--members M] [--rounds R] [--n N].
var options = Options.Parse(args);
if (options.Scenario == "ceiling-serve")
{
    return await Ceiling.ServeAsync(args.Contains("--group-commit"));
}

var load = LoadAverage.Read();
long? rssBefore = options.Pid is { } p ? Rss.Of(p) : null;
var result = options.Scenario switch
{
    "send-seq" => await Scenarios.SendSequentialAsync(options),
    "send-concurrent" => await Scenarios.SendConcurrentAsync(options),
    "sync-wake" => await Scenarios.SyncWakeAsync(options),
    "sync-incremental" => await Scenarios.SyncIncrementalAsync(options),
    "initial-sync" => await Scenarios.InitialSyncAsync(options),
    "rooms-joins" => await Scenarios.RoomsAndJoinsAsync(options),
    "register-login" => await Scenarios.RegisterAndLoginAsync(options),
    "scaling" => await ScalingBench.RunAsync(options, Option("--lethe") ?? "./lethe", Option("--postgres")),
    "export" => await ExportBench.RunAsync(options, Option("--lethe") ?? "./lethe", Option("--postgres")),
    "compare" => await Compare.RunAsync(options, Option("--lethe"), Option("--postgres"), args.Contains("--group-commit"), ceilingOnly: false),
    "ceiling" or "baseline" => await Compare.RunAsync(options, null, null, args.Contains("--group-commit"), ceilingOnly: true),
    "push-room" => await PushBench.RunAsync(options, Option("--lethe") ?? "./lethe", Option("--members") is { } m ? int.Parse(m, CultureInfo.InvariantCulture) : 1000, Option("--rounds") is { } r ? int.Parse(r, CultureInfo.InvariantCulture) : 3),
    "media" => await MediaBench.RunAsync(options, Option("--lethe")),
    "keys-claim" or "to-device" or "to-device-fanout" => await E2eeBench.RunAsync(options.Scenario, options),
    "purge" => await PurgeBench.RunAsync(options, Option("--lethe") ?? "./lethe", Option("--postgres"), Option("--batch") is { } b ? int.Parse(b, CultureInfo.InvariantCulture) : null),
    _ => throw new ArgumentException("unknown scenario: " + options.Scenario),
};
if (options.Pid is { } pid && options.Scenario != "compare")
{
    var rssAfter = Rss.Of(pid);
    Rss.Record(result, rssBefore!.Value, rssAfter);
    Console.Error.WriteLine($"server RSS: {rssBefore / 1024} MiB before, {rssAfter / 1024} MiB after");
}

result["load_average_before"] = load;
result["load_average_after"] = LoadAverage.Read();
Console.Error.WriteLine($"load average (1, 5, 15 min): {load} before, {result["load_average_after"]} after");
Console.WriteLine(result.ToJsonString());
return 0;

string? Option(string name) => Array.IndexOf(args, name) is var i && i >= 0 && i + 1 < args.Length ? args[i + 1] : null;

namespace Lethe.Bench
{
    /// <param name="Receipts">Sync scenarios: the reader sends a read receipt for each message it receives (untimed), as a client showing the room does, so the room's unread count stays at one.</param>
    public sealed record Options(string Scenario, Uri Url, int? Pid, int N, int C, int Rooms, int Messages, string? SharedSecret, int History = 0, bool Receipts = false)
    {
        public static Options Parse(string[] args)
        {
            string Get(string name, string fallback)
            {
                var i = Array.IndexOf(args, name);
                return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
            }

            int Int(string name, int fallback) => int.Parse(Get(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
            var pid = Get("--pid", "");
            return new Options(
                args.Length > 0 ? args[0] : "help",
                new Uri(Get("--url", "http://127.0.0.1:8008")),
                pid.Length > 0 ? int.Parse(pid, CultureInfo.InvariantCulture) : null,
                Int("--n", 1000),
                Int("--c", 8),
                Int("--rooms", 100),
                Int("--messages", 1000),
                Get("--shared-secret", "") is { Length: > 0 } s ? s : null,
                Int("--history", 0),
                args.Contains("--receipts"));
        }
    }

    public static class Rss
    {
        public static long Of(int pid) =>
            long.Parse(File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

        /// <summary>Adds the server's RSS (KiB) sampled before the scenario (idle) and after it.</summary>
        public static void Record(JsonObject result, long beforeKib, long afterKib)
        {
            result["rss_before_kib"] = beforeKib;
            result["rss_after_kib"] = afterKib;
        }
    }

    /// <summary>The machine's load average (1, 5 and 15 minutes, from /proc/loadavg): figures from a loaded machine say so.</summary>
    public static class LoadAverage
    {
        public static string Read() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
    }

    public sealed class Client(HttpClient http, string token, string userId)
    {
        private long _txn;

        public string UserId { get; } = userId;

        public string Token => token;

        public static HttpClient NewHttp(Uri baseUrl) => new(new SocketsHttpHandler { MaxConnectionsPerServer = 256, PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
        {
            BaseAddress = baseUrl,
            Timeout = TimeSpan.FromMinutes(5),
        };

        public const string Password = "bench-password-1";

        public static async Task<Client> RegisterAsync(HttpClient http, string? sharedSecret, bool admin = false)
        {
            var name = "bench" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
            const string password = Password;
            JsonObject result;
            if (sharedSecret is null)
            {
                result = await PostAsync(http, "/_matrix/client/v3/register", new JsonObject { ["username"] = name, ["password"] = password, ["auth"] = new JsonObject { ["type"] = "m.login.dummy" } }, null);
            }
            else
            {
                var nonce = (await http.GetFromJsonAsync<JsonObject>("/_synapse/admin/v1/register"))!["nonce"]!.GetValue<string>();
                var mac = Convert.ToHexStringLower(HMACSHA1.HashData(Encoding.UTF8.GetBytes(sharedSecret), Encoding.UTF8.GetBytes($"{nonce}\0{name}\0{password}\0{(admin ? "admin" : "notadmin")}")));
                result = await PostAsync(http, "/_synapse/admin/v1/register", new JsonObject { ["nonce"] = nonce, ["username"] = name, ["password"] = password, ["mac"] = mac, ["admin"] = admin }, null);
            }

            return new Client(http, result["access_token"]!.GetValue<string>(), result["user_id"]!.GetValue<string>());
        }

        public static async Task<Client> LoginAsync(HttpClient http, string userId)
        {
            var result = await PostAsync(http, "/_matrix/client/v3/login", new JsonObject
            {
                ["type"] = "m.login.password",
                ["identifier"] = new JsonObject { ["type"] = "m.id.user", ["user"] = userId },
                ["password"] = Password,
            }, null);
            return new Client(http, result["access_token"]!.GetValue<string>(), userId);
        }

        public async Task<string> CreateRoomAsync(bool isPublic = true, JsonArray? initialState = null) =>
            (await PostAsync(http, "/_matrix/client/v3/createRoom", new JsonObject { ["preset"] = isPublic ? "public_chat" : "private_chat", ["initial_state"] = initialState ?? [] }, token))["room_id"]!.GetValue<string>();

        public Task<JsonObject> AdminPostAsync(string path) => PostAsync(http, path, new JsonObject(), token);

        /// <summary>GETs a (binary) response to the end, without keeping it; returns its length.</summary>
        public async Task<long> DownloadAsync(string path)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.Authorization = new("Bearer", token);
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            response.EnsureSuccessStatusCode();
            await using var body = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[81920];
            long total = 0;
            int n;
            while ((n = await body.ReadAsync(buffer)) > 0)
            {
                total += n;
            }

            return total;
        }

        public Task ReceiptAsync(string roomId, string eventId) =>
            PostAsync(http, $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/receipt/m.read/{Uri.EscapeDataString(eventId)}", new JsonObject(), token);

        public Task JoinAsync(string roomId) => PostAsync(http, $"/_matrix/client/v3/join/{Uri.EscapeDataString(roomId)}", new JsonObject(), token);

        public async Task<string> SendAsync(string roomId, string body)
        {
            var txn = Interlocked.Increment(ref _txn);
            using var request = new HttpRequestMessage(HttpMethod.Put, $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/send/m.room.message/b{txn}")
            {
                Content = JsonContent.Create(new JsonObject { ["msgtype"] = "m.text", ["body"] = body }),
            };
            request.Headers.Authorization = new("Bearer", token);
            using var response = await http.SendAsync(request);
            response.EnsureSuccessStatusCode();
            return (await response.Content.ReadFromJsonAsync<JsonObject>())!["event_id"]!.GetValue<string>();
        }

        public async Task<JsonObject> SyncAsync(string? since, int timeoutMs, string? filter = null)
        {
            var url = $"/_matrix/client/v3/sync?timeout={timeoutMs}" + (since is null ? "" : "&since=" + Uri.EscapeDataString(since)) + (filter is null ? "" : "&filter=" + Uri.EscapeDataString(filter));
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.Authorization = new("Bearer", token);
            using var response = await http.SendAsync(request);
            response.EnsureSuccessStatusCode();
            return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        }

        private static async Task<JsonObject> PostAsync(HttpClient http, string path, JsonObject body, string? token)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
            if (token is not null)
            {
                request.Headers.Authorization = new("Bearer", token);
            }

            using var response = await http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"POST {path}: {(int)response.StatusCode} {text}");
            }

            return JsonNode.Parse(text)!.AsObject();
        }
    }

    public static class Stats
    {
        public static JsonObject Summarise(string scenario, List<double> latenciesMs, double seconds, int operations)
        {
            latenciesMs.Sort();
            double P(double q) => latenciesMs.Count == 0 ? 0 : latenciesMs[Math.Min(latenciesMs.Count - 1, (int)(q * latenciesMs.Count))];
            var result = new JsonObject
            {
                ["scenario"] = scenario,
                ["operations"] = operations,
                ["seconds"] = Math.Round(seconds, 3),
                ["per_second"] = Math.Round(operations / seconds, 1),
                ["p50_ms"] = Math.Round(P(0.50), 3),
                ["p99_ms"] = Math.Round(P(0.99), 3),
                ["max_ms"] = Math.Round(latenciesMs.Count == 0 ? 0 : latenciesMs[^1], 3),
            };
            Console.Error.WriteLine($"{scenario}: {operations} ops in {seconds:F2}s = {operations / seconds:F1}/s, p50 {P(0.5):F2} ms, p99 {P(0.99):F2} ms");
            return result;
        }
    }

    public static class Scenarios
    {
        public static async Task<JsonObject> SendSequentialAsync(Options o)
        {
            using var http = Client.NewHttp(o.Url);
            var client = await Client.RegisterAsync(http, o.SharedSecret);
            var room = await client.CreateRoomAsync();
            for (var i = 0; i < 20; i++)
            {
                await client.SendAsync(room, "warm-up");
            }

            var latencies = new List<double>(o.N);
            var total = Stopwatch.StartNew();
            for (var i = 0; i < o.N; i++)
            {
                var t = Stopwatch.GetTimestamp();
                await client.SendAsync(room, "message " + i);
                latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            }

            return Stats.Summarise("send-seq", latencies, total.Elapsed.TotalSeconds, o.N);
        }

        public static async Task<JsonObject> SendConcurrentAsync(Options o)
        {
            using var http = Client.NewHttp(o.Url);
            var clients = new List<(Client Client, string Room)>();
            for (var i = 0; i < o.C; i++)
            {
                var c = await Client.RegisterAsync(http, o.SharedSecret);
                clients.Add((c, await c.CreateRoomAsync()));
            }

            var latencies = new List<double>(o.N);
            var total = Stopwatch.StartNew();
            var per = o.N / o.C;
            await Task.WhenAll(clients.Select(async pair =>
            {
                var mine = new List<double>(per);
                for (var i = 0; i < per; i++)
                {
                    var t = Stopwatch.GetTimestamp();
                    await pair.Client.SendAsync(pair.Room, "message " + i);
                    mine.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                }

                lock (latencies)
                {
                    latencies.AddRange(mine);
                }
            }));
            var result = Stats.Summarise("send-concurrent", latencies, total.Elapsed.TotalSeconds, per * o.C);
            result["clients"] = o.C;
            return result;
        }

        /// <summary>
        /// A reader long-polls <c>/sync</c>; a sender sends one message into a room they share; the time from the send's
        /// response to the long-poll's response carrying that message. <c>--rooms</c> and <c>--history</c> grow what the
        /// reader is in.
        /// </summary>
        public static async Task<JsonObject> SyncWakeAsync(Options o)
        {
            using var http = Client.NewHttp(o.Url);
            var (sender, reader, room, since) = await SyncSetUpAsync(http, o);
            var latencies = new List<double>(o.N);
            var extraPolls = 0;
            var total = new Stopwatch();
            for (var i = -WarmUp; i < o.N; i++)
            {
                if (i == 0)
                {
                    total.Start();
                }

                var poll = reader.SyncAsync(since, 30_000);
                await Task.Delay(2);
                var eventId = await sender.SendAsync(room, "wake " + i);
                var sent = Stopwatch.GetTimestamp();
                var response = await poll;
                while (!Carries(response, room, eventId))
                {
                    // Woken by something else: the message is what the reader waits for.
                    extraPolls++;
                    response = await reader.SyncAsync(response["next_batch"]!.GetValue<string>(), 30_000);
                }

                if (i >= 0)
                {
                    latencies.Add(Stopwatch.GetElapsedTime(sent).TotalMilliseconds);
                }

                since = await ReadAsync(reader, room, eventId, response, o);
            }

            var result = Stats.Summarise(o.Receipts ? "sync-wake-receipts" : "sync-wake", latencies, total.Elapsed.TotalSeconds, o.N);
            result["rooms"] = o.Rooms;
            result["history"] = o.History;
            result["receipts"] = o.Receipts;
            result["extra_polls"] = extraPolls;
            return result;
        }

        /// <summary>
        /// Incremental sync with one new event: a sender sends one message, then the reader asks
        /// <c>/sync?since=…&amp;timeout=0</c>; the time of that request (the message must be in its answer). Unlike
        /// sync-wake, nothing waits: this is the cost of building an incremental sync.
        /// </summary>
        public static async Task<JsonObject> SyncIncrementalAsync(Options o)
        {
            using var http = Client.NewHttp(o.Url);
            var (sender, reader, room, since) = await SyncSetUpAsync(http, o);
            var latencies = new List<double>(o.N);
            var total = new Stopwatch();
            for (var i = -WarmUp; i < o.N; i++)
            {
                var eventId = await sender.SendAsync(room, "incremental " + i);
                total.Start();
                var t = Stopwatch.GetTimestamp();
                var response = await reader.SyncAsync(since, 0);
                var elapsed = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                total.Stop();
                if (!Carries(response, room, eventId))
                {
                    throw new InvalidOperationException("an incremental sync after a committed send did not carry the message");
                }

                if (i >= 0)
                {
                    latencies.Add(elapsed);
                }
                else
                {
                    total.Reset();
                }

                since = await ReadAsync(reader, room, eventId, response, o);
            }

            // The rate here is of the syncs alone (the sends between them are not counted).
            var result = Stats.Summarise(o.Receipts ? "sync-incremental-receipts" : "sync-incremental", latencies, total.Elapsed.TotalSeconds, o.N);
            result["rooms"] = o.Rooms;
            result["history"] = o.History;
            result["receipts"] = o.Receipts;
            return result;
        }

        private const int WarmUp = 10;

        /// <summary>
        /// After a measured sync: with <c>--receipts</c> the reader marks the message read and takes the sync the receipt
        /// itself causes (both untimed), so the next measurement starts from a caught-up token; returns that token.
        /// </summary>
        private static async Task<string> ReadAsync(Client reader, string room, string eventId, JsonObject response, Options o)
        {
            var since = response["next_batch"]!.GetValue<string>();
            if (!o.Receipts)
            {
                return since;
            }

            await reader.ReceiptAsync(room, eventId);
            return (await reader.SyncAsync(since, 0))["next_batch"]!.GetValue<string>();
        }

        /// <summary>A sender and a reader in one room (and the reader in <c>--rooms</c> − 1 more, the room <c>--history</c> events long); the reader's token after it.</summary>
        private static async Task<(Client Sender, Client Reader, string Room, string Since)> SyncSetUpAsync(HttpClient http, Options o)
        {
            var sender = await Client.RegisterAsync(http, o.SharedSecret);
            var reader = await Client.RegisterAsync(http, o.SharedSecret);
            var room = await sender.CreateRoomAsync();
            await reader.JoinAsync(room);
            for (var i = 1; i < o.Rooms; i++)
            {
                // Extra rooms the reader is in: incremental sync cost should not grow with them.
                var other = await sender.CreateRoomAsync();
                await reader.JoinAsync(other);
            }

            if (o.History > 0)
            {
                // History in the room the reader waits on: incremental sync cost should not grow with it either.
                var filled = 0;
                await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
                {
                    while (Interlocked.Increment(ref filled) <= o.History)
                    {
                        await sender.SendAsync(room, "history");
                    }
                }));
            }

            var since = (await reader.SyncAsync(null, 0, """{"room":{"timeline":{"limit":1}}}"""))["next_batch"]!.GetValue<string>();
            return (sender, reader, room, since);
        }

        /// <summary>Whether a sync response carries the event in the room's timeline.</summary>
        private static bool Carries(JsonObject sync, string room, string eventId) =>
            sync["rooms"]?["join"]?[room]?["timeline"]?["events"] is JsonArray events
            && events.Any(e => e?["event_id"]?.GetValue<string>() == eventId);

        /// <summary>One user creates N public rooms (timed), then C other users join each of them (timed).</summary>
        public static async Task<JsonObject> RoomsAndJoinsAsync(Options o)
        {
            using var http = Client.NewHttp(o.Url);
            var creator = await Client.RegisterAsync(http, o.SharedSecret);
            var joiners = new List<Client>();
            for (var i = 0; i < o.C; i++)
            {
                joiners.Add(await Client.RegisterAsync(http, o.SharedSecret));
            }

            var creations = new List<double>(o.N);
            var rooms = new List<string>(o.N);
            var total = Stopwatch.StartNew();
            for (var i = 0; i < o.N; i++)
            {
                var t = Stopwatch.GetTimestamp();
                rooms.Add(await creator.CreateRoomAsync());
                creations.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            }

            var created = Stats.Summarise("room-create", creations, total.Elapsed.TotalSeconds, o.N);
            var joins = new List<double>(o.N * o.C);
            total.Restart();
            await Task.WhenAll(joiners.Select(async joiner =>
            {
                var mine = new List<double>(o.N);
                foreach (var room in rooms)
                {
                    var t = Stopwatch.GetTimestamp();
                    await joiner.JoinAsync(room);
                    mine.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                }

                lock (joins)
                {
                    joins.AddRange(mine);
                }
            }));
            var joined = Stats.Summarise("join", joins, total.Elapsed.TotalSeconds, joins.Count);
            return new JsonObject { ["scenario"] = "rooms-joins", ["create"] = created, ["join"] = joined, ["joiners"] = o.C };
        }

        /// <summary>N registrations, then N password logins, each one after another. Both are dominated by the password hash by design.</summary>
        public static async Task<JsonObject> RegisterAndLoginAsync(Options o)
        {
            using var http = Client.NewHttp(o.Url);
            var users = new List<string>(o.N);
            var registrations = new List<double>(o.N);
            var total = Stopwatch.StartNew();
            for (var i = 0; i < o.N; i++)
            {
                var t = Stopwatch.GetTimestamp();
                users.Add((await Client.RegisterAsync(http, o.SharedSecret)).UserId);
                registrations.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            }

            var registered = Stats.Summarise("register", registrations, total.Elapsed.TotalSeconds, o.N);
            var logins = new List<double>(o.N);
            total.Restart();
            foreach (var user in users)
            {
                var t = Stopwatch.GetTimestamp();
                await Client.LoginAsync(http, user);
                logins.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            }

            var loggedIn = Stats.Summarise("login", logins, total.Elapsed.TotalSeconds, o.N);
            return new JsonObject { ["scenario"] = "register-login", ["register"] = registered, ["login"] = loggedIn };
        }

        public static async Task<JsonObject> InitialSyncAsync(Options o)
        {
            using var http = Client.NewHttp(o.Url);
            var user = await Client.RegisterAsync(http, o.SharedSecret);
            var rooms = new List<string>();
            for (var r = 0; r < o.Rooms; r++)
            {
                rooms.Add(await user.CreateRoomAsync());
            }

            var setup = Stopwatch.StartNew();
            await Task.WhenAll(rooms.Select(async room =>
            {
                for (var m = 0; m < o.Messages; m++)
                {
                    await user.SendAsync(room, "history " + m);
                }
            }));
            Console.Error.WriteLine($"setup: {o.Rooms} rooms x {o.Messages} messages in {setup.Elapsed.TotalSeconds:F1}s");

            await user.SyncAsync(null, 0);
            var latencies = new List<double>();
            var total = Stopwatch.StartNew();
            for (var i = 0; i < Math.Max(1, o.N); i++)
            {
                var t = Stopwatch.GetTimestamp();
                var response = await user.SyncAsync(null, 0);
                latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
                if (response["rooms"]!["join"]!.AsObject().Count != o.Rooms)
                {
                    throw new InvalidOperationException("initial sync is missing rooms");
                }
            }

            var result = Stats.Summarise("initial-sync", latencies, total.Elapsed.TotalSeconds, latencies.Count);
            result["rooms"] = o.Rooms;
            result["messages_per_room"] = o.Messages;
            return result;
        }
    }
}
