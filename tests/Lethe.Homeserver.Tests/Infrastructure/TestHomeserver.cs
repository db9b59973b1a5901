using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Lethe.Homeserver;
using Lethe.Homeserver.Configuration;
using Lethe.Storage;
using Lethe.Tests.Shared;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver.Tests.Infrastructure;

/// <summary>A real Lethe server in this process: a config file in a temp folder, real Kestrel on 127.0.0.1 with a free port, a real database.</summary>
public sealed class TestHomeserver : IAsyncDisposable
{
    private readonly List<HttpClient> _extraClients = [];

    private TestHomeserver(LetheHost host, string dir, HttpClient client, CapturingLoggerProvider log)
    {
        Host = host;
        Dir = dir;
        Client = client;
        Log = log;
    }

    /// <summary>What the server logged at warning level and above.</summary>
    public CapturingLoggerProvider Log { get; }

    /// <summary>The running host.</summary>
    public LetheHost Host { get; }

    /// <summary>The temp folder holding config, key, database and media.</summary>
    public string Dir { get; }

    /// <summary>A client with the server's base address.</summary>
    public HttpClient Client { get; }

    /// <summary>The server's base URL.</summary>
    public Uri BaseAddress => Client.BaseAddress!;

    /// <summary>
    /// Writes a homeserver.yaml (plus <paramref name="extraYaml"/>), loads it as the CLI would, and starts the server
    /// with one listener serving <paramref name="resources"/>.
    /// </summary>
    public static async Task<TestHomeserver> StartAsync(
        DatabaseEngine engine = DatabaseEngine.Sqlite,
        string serverName = "test.local",
        string extraYaml = "",
        Action<IEndpointRouteBuilder>? probes = null,
        TimeProvider? clock = null,
        string resources = "client, federation")
    {
        var dir = NewTempDir();
        var yaml = new StringBuilder();
        yaml.Append($"""
            server_name: "{serverName}"
            public_baseurl: "http://127.0.0.1/"
            listeners:
              - port: 0
                bind_addresses: ["127.0.0.1"]
                type: http
                resources:
                  - names: [{resources}]
            signing_key_path: "{dir}/signing.key"
            media_store_path: "{dir}/media"

            """);
        if (!extraYaml.Contains("rc_", StringComparison.Ordinal))
        {
            // Every test client comes from 127.0.0.1; production limits would throttle the suite, not test anything.
            foreach (var bucket in new[] { "rc_message", "rc_registration", "rc_room_creation", "rc_joins_per_room", "rc_third_party_invite", "rc_media_create", "rc_reports" })
            {
                yaml.Append($"{bucket}: {{per_second: 1000, burst_count: 1000}}\n");
            }

            yaml.Append("rc_login: {address: {per_second: 1000, burst_count: 1000}, account: {per_second: 1000, burst_count: 1000}, failed_attempts: {per_second: 1000, burst_count: 1000}}\n");
            yaml.Append("rc_joins: {local: {per_second: 1000, burst_count: 1000}, remote: {per_second: 1000, burst_count: 1000}}\n");
            yaml.Append("rc_invites: {per_room: {per_second: 1000, burst_count: 1000}, per_user: {per_second: 1000, burst_count: 1000}, per_issuer: {per_second: 1000, burst_count: 1000}}\n");
            yaml.Append("rc_presence: {per_user: {per_second: 1000, burst_count: 1000}}\n");
        }

        yaml.Append(engine == DatabaseEngine.Postgres ? TestDatabases.NewPostgresYaml() : $"database:\n  name: sqlite3\n  args:\n    database: \"{dir}/homeserver.db\"\n");
        yaml.Append(extraYaml);
        var path = Path.Combine(dir, "homeserver.yaml");
        await File.WriteAllTextAsync(path, yaml.ToString());
        var config = ConfigLoader.LoadFile(path);
        var log = new CapturingLoggerProvider();
        var host = await LetheHost.StartAsync(config, logging => logging.AddProvider(log).SetMinimumLevel(LogLevel.Warning), probes, clock ?? TimeProvider.System, CancellationToken.None);
        var client = new HttpClient { BaseAddress = new Uri(host.Addresses[0].Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal) + "/"), Timeout = TimeSpan.FromSeconds(30) };
        return new TestHomeserver(host, dir, client, log);
    }

    /// <summary>A fresh empty temp folder.</summary>
    public static string NewTempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "lethe-hs-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>An unauthenticated client.</summary>
    public MatrixClient NewClient() => new(Client) { ServerLog = () => Log.Text };

    /// <summary>Registers a user through open registration (the server must allow it) and returns their client.</summary>
    public Task<MatrixClient> RegisterAsync(string username, string password = "correct horse battery") => NewClient().RegisterAsync(username, password);

    /// <summary>Config lines that open registration without verification, for tests that register users through the API.</summary>
    public const string OpenRegistration = "enable_registration: true\nenable_registration_without_verification: true\n";

    /// <summary>
    /// True when any file in the data folder (the SQLite database, its WAL, media, config) holds <paramref name="text"/>
    /// as UTF-8 bytes: the "deleted means gone from disk" check.
    /// </summary>
    public async Task<bool> FilesContainAsync(string text)
    {
        var needle = Encoding.UTF8.GetBytes(text);
        foreach (var file in Directory.GetFiles(Dir, "*", SearchOption.AllDirectories))
        {
            if ((await File.ReadAllBytesAsync(file)).AsSpan().IndexOf(needle) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A client whose requests carry <paramref name="userAgent"/> (the HTTP client is disposed with the server's).</summary>
    public MatrixClient NewClient(string userAgent)
    {
        var http = new HttpClient { BaseAddress = BaseAddress, Timeout = Client.Timeout };
        http.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", userAgent);
        _extraClients.Add(http);
        return new MatrixClient(http) { ServerLog = () => Log.Text };
    }

    /// <summary>GETs a path and parses the JSON body, asserting the status.</summary>
    public async Task<JsonObject> GetJsonAsync(string path, int expectedStatus = 200)
    {
        using var response = await Client.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == expectedStatus, $"GET {path}: expected {expectedStatus}, got {(int)response.StatusCode}: {body}");
        return JsonNode.Parse(body)!.AsObject();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        _extraClients.ForEach(c => c.Dispose());
        await Host.DisposeAsync();
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
            // A file still open by a background thread; the temp folder is cleaned by the OS eventually.
        }
    }
}
