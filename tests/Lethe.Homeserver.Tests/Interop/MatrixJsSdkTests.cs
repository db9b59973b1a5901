using System.Diagnostics;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;

namespace Lethe.Homeserver.Tests.Interop;

/// <summary>
/// Real end-to-end encryption against the real server: matrix-js-sdk with the Rust crypto stack (WASM) in Node runs
/// <c>tests/interop/js-sdk/e2ee.mjs</c> — cross-signing bootstrap, an encrypted room where two users decrypt each other,
/// key backup, and a later second device that gets old keys from the backup and new ones by key sharing.
/// </summary>
public sealed class MatrixJsSdkTests
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(4);

    private static string Folder => Path.Combine(LetheProcess.RepoRoot, "tests", "interop", "js-sdk");

    [Theory]
    [InlineData(DatabaseEngine.Sqlite)]
    [InlineData(DatabaseEngine.Postgres)]
    public async Task TwoJsSdkClientsWithRustCryptoTalkInAnEncryptedRoom(DatabaseEngine engine)
    {
        Assert.True(Directory.Exists(Path.Combine(Folder, "node_modules", "matrix-js-sdk")),
            $"the npm packages are not installed: run `npm ci` in {Folder} (./test.sh does)");
        await using var server = await TestHomeserver.StartAsync(engine, serverName: "interop.test", extraYaml: TestHomeserver.OpenRegistration);

        var (code, output) = await RunAsync(server.BaseAddress.ToString().TrimEnd('/'));

        Assert.True(code == 0, $"the js-sdk E2EE run failed (exit {code}) against Lethe on {engine}:\n{output}\n--- server log ---\n{server.Log.Text}");
        Assert.Contains("js-sdk e2ee interop: all steps passed", output, StringComparison.Ordinal);
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string baseUrl)
    {
        var psi = new ProcessStartInfo("node", ["e2ee.mjs", baseUrl])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Folder,
        };
        using var node = Process.Start(psi)!;
        var stdout = node.StandardOutput.ReadToEndAsync();
        var stderr = node.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(RunTimeout);
        try
        {
            await node.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            node.Kill(entireProcessTree: true);
            await node.WaitForExitAsync();
            Assert.Fail($"the js-sdk run did not finish within {RunTimeout.TotalMinutes} min:\n{await stdout}\n{await stderr}");
        }

        // The SDK logs its own warnings to stderr; the step lines on stdout say what happened.
        var err = await stderr;
        return (node.ExitCode, await stdout + (err.Length > 20_000 ? err[..20_000] + "…" : err));
    }
}
