using System.Diagnostics;
using System.Text;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;
using Lethe.Tests.Shared;

namespace Lethe.Homeserver.Tests.Interop;

/// <summary>
/// A real Matrix client library against the real server: Debian's matrix-nio walks two users through the client API
/// (<c>tests/interop/nio/walkthrough.py</c>) against <c>./lethe serve</c> running as its own process, on both engines.
/// </summary>
public sealed class MatrixNioTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    // The script stops starting steps after its own budget (120 s, plus at most 40 s for a step under way) and prints its summary; this is the hard limit.
    private static readonly TimeSpan WalkTimeout = TimeSpan.FromMinutes(3);

    private static readonly TimeSpan StopBudget = TimeSpan.FromSeconds(10);

    private static string Script => Path.Combine(LetheProcess.RepoRoot, "tests", "interop", "nio", "walkthrough.py");

    [Theory]
    [InlineData(DatabaseEngine.Sqlite)]
    [InlineData(DatabaseEngine.Postgres)]
    public async Task TwoUsersWalkThroughTheClientApiWithMatrixNio(DatabaseEngine engine)
    {
        var dir = TestHomeserver.NewTempDir();
        try
        {
            var configPath = Path.Combine(dir, "homeserver.yaml");
            await File.WriteAllTextAsync(configPath, Config(dir, engine));
            await using var lethe = LetheProcess.Start(dir, "serve", "--config", configPath);
            var url = await lethe.WaitForUrlAsync(StartTimeout);

            var (code, output) = await RunWalkthroughAsync(url);

            lethe.Terminate();
            var stopped = await lethe.WaitForExitAsync(StopBudget);
            Assert.True(code == 0, $"the matrix-nio walkthrough failed (exit {code}) against Lethe on {engine}:\n{output}\n--- server stderr ---\n{lethe.Stderr}");
            Assert.True(stopped == 0, $"lethe exited with {stopped} after SIGTERM.\nstderr:\n{lethe.Stderr}");
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: the OS cleans temp folders eventually.
            }
        }
    }

    /// <summary>Open registration (the m.login.dummy flow nio uses), a free port, and rate limits that do not throttle one client on 127.0.0.1.</summary>
    private static string Config(string dir, DatabaseEngine engine)
    {
        var yaml = new StringBuilder($"""
            server_name: interop.test
            listeners:
              - port: 0
                bind_addresses: ['127.0.0.1']
                type: http
                resources:
                  - names: [client, federation]
            signing_key_path: {dir}/interop.test.signing.key
            media_store_path: {dir}/media
            enable_registration: true
            enable_registration_without_verification: true
            # matrix-nio 0.20 knows only the legacy unauthenticated media endpoints.
            enable_authenticated_media: false

            """);
        foreach (var bucket in new[] { "rc_message", "rc_registration", "rc_room_creation", "rc_joins_per_room", "rc_third_party_invite", "rc_reports" })
        {
            yaml.Append($"{bucket}: {{per_second: 1000, burst_count: 1000}}\n");
        }

        yaml.Append("rc_login: {address: {per_second: 1000, burst_count: 1000}, account: {per_second: 1000, burst_count: 1000}, failed_attempts: {per_second: 1000, burst_count: 1000}}\n");
        yaml.Append("rc_joins: {local: {per_second: 1000, burst_count: 1000}, remote: {per_second: 1000, burst_count: 1000}}\n");
        yaml.Append("rc_invites: {per_room: {per_second: 1000, burst_count: 1000}, per_user: {per_second: 1000, burst_count: 1000}, per_issuer: {per_second: 1000, burst_count: 1000}}\n");
        yaml.Append(engine == DatabaseEngine.Postgres ? TestDatabases.NewPostgresYaml() : $"database: {{name: sqlite3, args: {{database: {dir}/homeserver.db}}}}\n");
        return yaml.ToString();
    }

    /// <summary>Runs the walkthrough with Debian's Python (where python3-matrix-nio lives) and returns its exit code and combined output.</summary>
    private static async Task<(int ExitCode, string Output)> RunWalkthroughAsync(Uri url)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3", [Script, url.ToString().TrimEnd('/'), "--require-bundled-aggregations"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = LetheProcess.RepoRoot,
        };
        psi.Environment["PYTHONUNBUFFERED"] = "1";
        psi.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        using var python = Process.Start(psi)!;
        var stdout = python.StandardOutput.ReadToEndAsync();
        var stderr = python.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(WalkTimeout);
        try
        {
            await python.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            python.Kill(entireProcessTree: true);
            await python.WaitForExitAsync();
            Assert.Fail($"the walkthrough did not finish within {WalkTimeout.TotalSeconds}s:\n{await stdout}\n{await stderr}");
        }

        var output = await stdout + await stderr;
        if (output.Contains("No module named 'nio'", StringComparison.Ordinal))
        {
            output += "\n(install Debian's python3-matrix-nio; ./test.sh does)";
        }

        return (python.ExitCode, output);
    }
}
