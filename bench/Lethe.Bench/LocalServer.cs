using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using Dapper;
using Lethe.Storage;
using Npgsql;

namespace Lethe.Bench;

/// <summary>
/// A Lethe server the benchmark runs itself: a temporary folder with a generated config (free loopback port, shared
/// registration secret, rate limits raised so the client is never throttled), SQLite in that folder or a fresh schema
/// in the given PostgreSQL database. Disposing kills the process and deletes the folder and the schema.
/// </summary>
public sealed class LocalServer : IAsyncDisposable
{
    private readonly string _lethe;
    private readonly string _dir;
    private readonly string _config;
    private readonly string? _postgres;

    private LocalServer(string lethe, string dir, string? postgres, DatabaseOptions database, int port, string secret)
    {
        _lethe = lethe;
        _dir = dir;
        _postgres = postgres;
        _config = Path.Combine(dir, "homeserver.yaml");
        Database = database;
        Url = new Uri($"http://127.0.0.1:{port}");
        Secret = secret;
    }

    /// <summary>The server's data folder (deleted on dispose).</summary>
    public string Dir => _dir;

    /// <summary>The server's base URL.</summary>
    public Uri Url { get; }

    /// <summary>The registration shared secret.</summary>
    public string Secret { get; }

    /// <summary>How to open the server's database directly (only while the server is stopped, for SQLite).</summary>
    public DatabaseOptions Database { get; }

    /// <summary>The running process, or null.</summary>
    public Process? Process { get; private set; }

    /// <summary>"sqlite" or "postgres".</summary>
    public string Engine => _postgres is null ? "sqlite" : "postgres";

    /// <summary>Writes the config (<paramref name="extraYaml"/> appended) and prepares the database; does not start the server.</summary>
    public static async Task<LocalServer> CreateAsync(string lethe, string? postgres, string extraYaml = "")
    {
        var dir = Path.Combine(Path.GetTempPath(), "lethe-bench-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        Directory.CreateDirectory(dir);
        var port = FreePort();
        var secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var (databaseYaml, options) = postgres is null ? SqliteDatabase(dir) : PostgresDatabase(postgres);
        var server = new LocalServer(lethe, dir, postgres, options, port, secret);
        await File.WriteAllTextAsync(server._config, $"""
            server_name: "bench.local"
            listeners:
              - port: {port}
                bind_addresses: ["127.0.0.1"]
                type: http
                resources:
                  - names: [client]
            {databaseYaml}
            media_store_path: "{dir}/media_store"
            signing_key_path: "{dir}/bench.signing.key"
            registration_shared_secret: "{secret}"
            rc_message:
              per_second: 100000
              burst_count: 100000
            rc_room_creation:
              per_second: 100000
              burst_count: 100000
            rc_joins:
              local:
                per_second: 100000
                burst_count: 100000
            rc_login:
              address:
                per_second: 100000
                burst_count: 100000
              account:
                per_second: 100000
                burst_count: 100000
            rc_joins_per_room:
              per_second: 100000
              burst_count: 100000
            rc_registration:
              per_second: 100000
              burst_count: 100000
            {extraYaml}
            """);
        return server;
    }

    /// <summary>Starts the server and waits until it answers <c>/health</c>.</summary>
    public async Task<Process> StartAsync(HttpClient http)
    {
        var process = Process.Start(new ProcessStartInfo(_lethe, ["serve", "--config", _config]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Process = process;
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(120))
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException("the server exited with code " + process.ExitCode.ToString(CultureInfo.InvariantCulture));
            }

            try
            {
                using var response = await http.GetAsync(new Uri("/health", UriKind.Relative));
                if (response.IsSuccessStatusCode)
                {
                    return process;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("the server did not start within 120 s");
    }

    /// <summary>Stops the server with SIGTERM (a clean shutdown, so its database may be edited afterwards).</summary>
    public async Task StopAsync()
    {
        if (Process is null)
        {
            return;
        }

        Process.Start("kill", ["-TERM", Process.Id.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await Process.WaitForExitAsync(timeout.Token);
        Process = null;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Process is { HasExited: false })
        {
            Process.Kill();
            await Process.WaitForExitAsync();
        }

        Directory.Delete(_dir, recursive: true);
        if (_postgres is not null)
        {
            await using var conn = new NpgsqlConnection(_postgres);
            await conn.ExecuteAsync($"DROP SCHEMA {new NpgsqlConnectionStringBuilder(Database.PostgresConnectionString).SearchPath} CASCADE");
        }
    }

    private static (string Yaml, DatabaseOptions Options) SqliteDatabase(string dir)
    {
        var path = Path.Combine(dir, "homeserver.db");
        return ($"""
            database:
              name: sqlite3
              args:
                database: "{path}"
            """, new DatabaseOptions { SqlitePath = path });
    }

    private static (string Yaml, DatabaseOptions Options) PostgresDatabase(string connectionString)
    {
        var schema = "bench_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        using (var conn = new NpgsqlConnection(connectionString))
        {
            conn.Open();
            conn.Execute($"CREATE SCHEMA {schema}");
        }

        var b = new NpgsqlConnectionStringBuilder(connectionString) { SearchPath = schema };
        return ($"""
            database:
              name: psycopg2
              args:
                user: "{b.Username}"
                password: "{b.Password}"
                dbname: "{b.Database}"
                host: "{b.Host}"
                port: {b.Port}
                options: "-c search_path={schema}"
            """, new DatabaseOptions { Engine = DatabaseEngine.Postgres, PostgresConnectionString = b.ToString() });
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
