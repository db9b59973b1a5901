using System.Diagnostics;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Lethe.Bench;

/// <summary>
/// End-to-end encryption scenarios against any homeserver with open registration:
/// <c>keys-claim</c> (one /keys/claim for a key of each of 100 devices), <c>to-device</c> (one /sendToDevice to 100
/// devices) and <c>to-device-fanout</c> (a room of 100 members with 2 devices each; one sender shares a Megolm session,
/// i.e. 200 to-device messages in one request, timed until every device's long-poll has it).
/// </summary>
public static class E2eeBench
{
    private const string Password = "bench-password-1";

    private sealed record Device(string UserId, string DeviceId, string Token);

    /// <summary>Runs one of the scenarios.</summary>
    public static async Task<JsonObject> RunAsync(string scenario, Options o)
    {
        using var http = Client.NewHttp(o.Url);
        return scenario switch
        {
            "keys-claim" => await ClaimAsync(http, o),
            "to-device" => await ToDeviceAsync(http, o),
            "to-device-fanout" => await FanOutAsync(http, o),
            _ => throw new ArgumentException("unknown scenario " + scenario),
        };
    }

    private static async Task<JsonObject> ClaimAsync(HttpClient http, Options o)
    {
        var devices = await DevicesAsync(http, users: 50, devicesPerUser: 2);
        var keysPerDevice = o.N + 10;
        Console.Error.WriteLine($"setup: uploading {keysPerDevice} one-time keys to each of {devices.Count} devices");
        await Parallel.ForEachAsync(devices, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (d, _) =>
        {
            for (var start = 0; start < keysPerDevice; start += 100)
            {
                var keys = new JsonObject();
                for (var i = start; i < Math.Min(keysPerDevice, start + 100); i++)
                {
                    keys[$"curve25519:k{i:D6}"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=');
                }

                await PostAsync(http, "/_matrix/client/v3/keys/upload", new JsonObject { ["one_time_keys"] = keys }, d.Token);
            }
        });

        var claimer = devices[0];
        var request = new JsonObject();
        foreach (var d in devices)
        {
            var byUser = request[d.UserId] as JsonObject ?? (JsonObject)(request[d.UserId] = new JsonObject());
            byUser[d.DeviceId] = "curve25519";
        }

        var body = new JsonObject { ["one_time_keys"] = request };
        var latencies = new List<double>(o.N);
        var total = Stopwatch.StartNew();
        for (var i = 0; i < o.N; i++)
        {
            var t = Stopwatch.GetTimestamp();
            var result = await PostAsync(http, "/_matrix/client/v3/keys/claim", body, claimer.Token);
            latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            var claimed = result["one_time_keys"]!.AsObject().Sum(u => u.Value!.AsObject().Count);
            if (claimed != devices.Count)
            {
                throw new InvalidOperationException($"claim {i} got {claimed} keys for {devices.Count} devices");
            }
        }

        var summary = Stats.Summarise("keys-claim", latencies, total.Elapsed.TotalSeconds, o.N);
        summary["devices_per_claim"] = devices.Count;
        return summary;
    }

    private static async Task<JsonObject> ToDeviceAsync(HttpClient http, Options o)
    {
        var devices = await DevicesAsync(http, users: 50, devicesPerUser: 2);
        var sender = devices[0];
        var latencies = new List<double>(o.N);
        var total = Stopwatch.StartNew();
        for (var i = 0; i < o.N; i++)
        {
            var t = Stopwatch.GetTimestamp();
            await PutAsync(http, $"/_matrix/client/v3/sendToDevice/m.room.encrypted/b{i}", Messages(devices, i), sender.Token);
            latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }

        var summary = Stats.Summarise("to-device", latencies, total.Elapsed.TotalSeconds, o.N);
        summary["devices_per_request"] = devices.Count;
        return summary;
    }

    private static async Task<JsonObject> FanOutAsync(HttpClient http, Options o)
    {
        var devices = await DevicesAsync(http, users: 100, devicesPerUser: 2);
        var sender = devices[0];
        var room = (await PostAsync(http, "/_matrix/client/v3/createRoom", new JsonObject
        {
            ["preset"] = "public_chat",
            ["initial_state"] = new JsonArray(new JsonObject { ["type"] = "m.room.encryption", ["state_key"] = "", ["content"] = new JsonObject { ["algorithm"] = "m.megolm.v1.aes-sha2" } }),
        }, sender.Token))["room_id"]!.GetValue<string>();
        foreach (var d in devices.Where(d => d.UserId != sender.UserId).DistinctBy(d => d.UserId))
        {
            await PostAsync(http, $"/_matrix/client/v3/join/{Uri.EscapeDataString(room)}", new JsonObject(), d.Token);
        }

        // Each device's sync position, after the joins.
        var since = new string[devices.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, devices.Count), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
            since[i] = (await SyncAsync(http, devices[i], null, 0))["next_batch"]!.GetValue<string>());

        var rounds = Math.Max(1, o.N);
        var latencies = new List<double>(rounds);
        var total = Stopwatch.StartNew();
        for (var round = 0; round < rounds; round++)
        {
            // Every device long-polls; each poll ends when its device has this round's message.
            var received = devices.Select(async (d, i) =>
            {
                while (true)
                {
                    var sync = await SyncAsync(http, d, since[i], 30_000);
                    since[i] = sync["next_batch"]!.GetValue<string>();
                    if (sync["to_device"]!["events"]!.AsArray().Any(e => e!["content"]!["round"]!.GetValue<int>() == round))
                    {
                        return Stopwatch.GetTimestamp();
                    }
                }
            }).ToList();
            await WaitForPollsAsync();
            var sent = Stopwatch.GetTimestamp();
            await PutAsync(http, $"/_matrix/client/v3/sendToDevice/m.room.encrypted/fan{round}", Messages(devices, round), sender.Token);
            var last = (await Task.WhenAll(received)).Max();
            latencies.Add(Stopwatch.GetElapsedTime(sent, last).TotalMilliseconds);
        }

        var summary = Stats.Summarise("to-device-fanout", latencies, total.Elapsed.TotalSeconds, rounds);
        summary["members"] = 100;
        summary["devices"] = devices.Count;
        summary["note"] = "latency = from the send request to the last of 200 long-polling devices receiving its message";
        return summary;
    }

    /// <summary>
    /// Gives the long-polls a moment to reach the server before sending, so the round measures the wake-up path. (A poll
    /// that arrives late still gets the message at once, so the figure stays a delivery time either way.)
    /// </summary>
    private static Task WaitForPollsAsync() => Task.Delay(200);

    private static JsonObject Messages(List<Device> devices, int round)
    {
        var messages = new JsonObject();
        foreach (var d in devices)
        {
            var byUser = messages[d.UserId] as JsonObject ?? (JsonObject)(messages[d.UserId] = new JsonObject());
            // About the size of an Olm-encrypted m.room_key: a ciphertext of ~1 KiB.
            byUser[d.DeviceId] = new JsonObject
            {
                ["algorithm"] = "m.olm.v1.curve25519-aes-sha2",
                ["round"] = round,
                ["sender_key"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('='),
                ["ciphertext"] = new JsonObject { ["key"] = new JsonObject { ["type"] = 0, ["body"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(700)) } },
            };
        }

        return new JsonObject { ["messages"] = messages };
    }

    /// <summary>Registers <paramref name="users"/> users and logs each into further devices.</summary>
    private static async Task<List<Device>> DevicesAsync(HttpClient http, int users, int devicesPerUser)
    {
        var result = new List<Device>();
        for (var u = 0; u < users; u++)
        {
            var name = "e2e" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
            var reg = await PostAsync(http, "/_matrix/client/v3/register", new JsonObject { ["username"] = name, ["password"] = Password, ["auth"] = new JsonObject { ["type"] = "m.login.dummy" } }, null);
            var userId = reg["user_id"]!.GetValue<string>();
            result.Add(new Device(userId, reg["device_id"]!.GetValue<string>(), reg["access_token"]!.GetValue<string>()));
            for (var d = 1; d < devicesPerUser; d++)
            {
                var login = await PostAsync(http, "/_matrix/client/v3/login", new JsonObject
                {
                    ["type"] = "m.login.password",
                    ["identifier"] = new JsonObject { ["type"] = "m.id.user", ["user"] = userId },
                    ["password"] = Password,
                }, null);
                result.Add(new Device(userId, login["device_id"]!.GetValue<string>(), login["access_token"]!.GetValue<string>()));
            }
        }

        return result;
    }

    private static async Task<JsonObject> SyncAsync(HttpClient http, Device d, string? since, int timeoutMs)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/_matrix/client/v3/sync?timeout={timeoutMs}" + (since is null ? "" : "&since=" + Uri.EscapeDataString(since)));
        request.Headers.Authorization = new("Bearer", d.Token);
        using var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }

    private static Task<JsonObject> PostAsync(HttpClient http, string path, JsonObject body, string? token) => SendAsync(http, HttpMethod.Post, path, body, token);

    private static Task<JsonObject> PutAsync(HttpClient http, string path, JsonObject body, string? token) => SendAsync(http, HttpMethod.Put, path, body, token);

    private static async Task<JsonObject> SendAsync(HttpClient http, HttpMethod method, string path, JsonObject body, string? token)
    {
        using var request = new HttpRequestMessage(method, path) { Content = JsonContent.Create(body) };
        if (token is not null)
        {
            request.Headers.Authorization = new("Bearer", token);
        }

        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return response.IsSuccessStatusCode ? JsonNode.Parse(text)!.AsObject() : throw new InvalidOperationException($"{method} {path}: {(int)response.StatusCode} {text}");
    }
}
