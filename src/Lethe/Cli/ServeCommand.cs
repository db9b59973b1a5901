using System.CommandLine;
using System.Net.Sockets;
using Lethe.Homeserver;
using Lethe.Homeserver.Configuration;

namespace Lethe.Cli;

/// <summary><c>lethe serve [--config FILE]</c>: runs the server; with no config anywhere, creates ./data/homeserver.yaml first.</summary>
internal static class ServeCommand
{
    /// <summary>Where <c>serve</c> looks for (and creates) a config when none is given.</summary>
    public const string DefaultConfigPath = "data/homeserver.yaml";

    public static Command Create()
    {
        var config = new Option<string?>("--config", "-c") { Description = "Path to homeserver.yaml (default: ./data/homeserver.yaml, created if missing)" };
        var command = new Command("serve", "Run the homeserver") { config };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(config)));
        return command;
    }

    private static async Task<int> RunAsync(string? configPath)
    {
        var created = false;
        if (configPath is null)
        {
            configPath = DefaultConfigPath;
            if (!File.Exists(configPath))
            {
                Directory.CreateDirectory(Path.GetDirectoryName(configPath)!);
                await File.WriteAllTextAsync(configPath, ConfigTemplate.Generate("localhost", Path.GetDirectoryName(configPath)!));
                created = true;
            }
        }

        HomeserverConfig config;
        try
        {
            config = ConfigLoader.LoadFile(configPath);
        }
        catch (ConfigException e)
        {
            await Console.Error.WriteLineAsync($"lethe: configuration error in {configPath}: {e.Message}");
            return 2;
        }

        foreach (var warning in config.Warnings)
        {
            await Console.Error.WriteLineAsync($"lethe: warning: {warning}");
        }

        if (!Lethe.Homeserver.Media.Thumbnailer.Installed)
        {
            await Console.Error.WriteLineAsync("lethe: warning: libvips (bundled by NetVips.Native for linux-x64) is not there for this platform: media thumbnails will answer 503");
        }

        LetheHost host;
        try
        {
            host = await LetheHost.StartAsync(config);
        }
        catch (ConfigException e)
        {
            await Console.Error.WriteLineAsync($"lethe: configuration error in {configPath}: {e.Message}");
            return 2;
        }
        catch (IOException e) when (e.InnerException is SocketException || e.Message.Contains("address", StringComparison.OrdinalIgnoreCase))
        {
            await Console.Error.WriteLineAsync($"lethe: cannot listen: {e.Message}");
            return 1;
        }
        catch (System.Data.Common.DbException e)
        {
            // Any engine's (a PostgreSQL that refuses the login, an unreadable SQLite file); naming Npgsql's exception
            // here would load Npgsql into every server.
            await Console.Error.WriteLineAsync($"lethe: cannot use the database: {e.Message}");
            return 1;
        }

        if (created)
        {
            Console.WriteLine($"Created {configPath} (server_name localhost, data in {Path.GetFullPath(Path.GetDirectoryName(configPath)!)}).");
        }

        Console.WriteLine($"Lethe {LetheVersion.Current} serving {config.ServerName} at {string.Join(", ", host.Addresses)}");
        Console.WriteLine($"Register the first admin with:  ./lethe register-user --config {configPath} --user admin --admin");
        await host.WaitForShutdownAsync();
        await host.StopAsync();
        return 0;
    }
}
