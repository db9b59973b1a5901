using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Lethe.Storage;
using Lethe.Tests.Shared;

namespace Lethe.Homeserver.Tests.Infrastructure;

/// <summary>The real <c>./lethe</c> script run as a child process, as an operator or test harness would run it.</summary>
public sealed partial class LetheProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource<string> _url = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private LetheProcess(Process process)
    {
        _process = process;
    }

    /// <summary>The repository root (where the <c>lethe</c> script lives).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The OS process ID (the server's own, since the script execs it).</summary>
    public int Pid => _process.Id;

    /// <summary>Everything written to stdout so far.</summary>
    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    /// <summary>Everything written to stderr so far.</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>
    /// Writes <c>hs.yaml</c> in <paramref name="dir"/> for a server on a free loopback port (client API), with open
    /// registration and its database, key and media in that folder (or a fresh PostgreSQL database); returns its path.
    /// </summary>
    public static async Task<string> WriteServeConfigAsync(string dir, string serverName, DatabaseEngine engine = DatabaseEngine.Sqlite)
    {
        var database = engine == DatabaseEngine.Postgres ? TestDatabases.NewPostgresYaml() : $"database: {{name: sqlite3, args: {{database: {dir}/hs.db}}}}\n";
        var path = Path.Combine(dir, "hs.yaml");
        await File.WriteAllTextAsync(path, $"""
            server_name: {serverName}
            listeners: [{"{"}port: 0, bind_addresses: ['127.0.0.1'], resources: [{"{"}names: [client]{"}"}]{"}"}]
            signing_key_path: {dir}/key
            media_store_path: {dir}/media
            enable_registration: true
            enable_registration_without_verification: true
            {database}
            """);
        return path;
    }

    /// <summary>Starts <c>./lethe</c> with arguments in the working directory, logging warnings and errors.</summary>
    public static LetheProcess Start(string workingDirectory, params string[] args) => StartLogging("Warning", workingDirectory, args);

    /// <summary>Starts <c>./lethe</c> with arguments in the working directory, logging from <paramref name="logLevel"/> up (LETHE_LOG_LEVEL).</summary>
    public static LetheProcess StartLogging(string logLevel, string workingDirectory, params string[] args) => StartBuild(native: true, logLevel, workingDirectory, args);

    /// <summary>Whether <c>./lethe</c> runs the native build here: it does where gcc or clang is on the PATH.</summary>
    public static bool NativeBuild { get; } = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Any(d => File.Exists(Path.Combine(d, "gcc")) || File.Exists(Path.Combine(d, "clang")));

    /// <summary>
    /// Starts <c>./lethe</c> as <see cref="StartLogging"/> does; <paramref name="native"/> false runs the JIT build
    /// (<c>LETHE_JIT=1</c>) instead of the native one the script runs by default where a C compiler is installed.
    /// </summary>
    public static LetheProcess StartBuild(bool native, string logLevel, string workingDirectory, params string[] args)
    {
        var psi = new ProcessStartInfo(Path.Combine(RepoRoot, "lethe"))
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["LETHE_LOG_LEVEL"] = logLevel;
        if (!native)
        {
            psi.Environment["LETHE_JIT"] = "1";
        }

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var result = new LetheProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (result._stdout)
            {
                result._stdout.AppendLine(e.Data);
            }

            var m = ServingLine().Match(e.Data);
            if (m.Success)
            {
                result._url.TrySetResult(m.Groups[1].Value.Split(',')[0].Trim());
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (result._stderr)
                {
                    result._stderr.AppendLine(e.Data);
                }
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        return result;
    }

    /// <summary>Runs <c>./lethe</c> to completion and returns (exit code, stdout, stderr).</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string workingDirectory, params string[] args)
    {
        await using var p = Start(workingDirectory, args);
        var code = await p.WaitForExitAsync(TimeSpan.FromSeconds(120));
        return (code, p.Stdout, p.Stderr);
    }

    /// <summary>Waits for the "serving … at URL" line and returns the first URL.</summary>
    public async Task<Uri> WaitForUrlAsync(TimeSpan timeout)
    {
        var exited = _process.WaitForExitAsync();
        var done = await Task.WhenAny(_url.Task, exited, Task.Delay(timeout));
        if (done != _url.Task)
        {
            throw new TimeoutException($"lethe did not report its URL (exited: {_process.HasExited}).\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        }

        return new Uri(await _url.Task + "/");
    }

    /// <summary>Sends SIGTERM.</summary>
    public void Terminate() => Assert.Equal(0, Kill(_process.Id, 15));

    /// <summary>Waits for exit and returns the exit code; kills the process and fails when it takes longer than <paramref name="timeout"/>.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"lethe did not exit within {timeout.TotalSeconds}s.\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        }

        // Let the asynchronous readers drain.
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
        return ValueTask.CompletedTask;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [GeneratedRegex(@"serving \S+ at (.+)$")]
    private static partial Regex ServingLine();

    private static string FindRepoRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Lethe.slnx")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return dir ?? throw new InvalidOperationException("Cannot find the repository root above " + AppContext.BaseDirectory);
    }
}
