using System.CommandLine;
using Lethe.Homeserver;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Privacy;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Identifiers;
using Lethe.Storage;

namespace Lethe.Cli;

/// <summary><c>lethe export-user @alice:example.org --config FILE --out DIR</c>: writes everything the server holds about a user into a folder (docs/export.md).</summary>
internal static class ExportUserCommand
{
    public static Command Create()
    {
        var user = new Argument<string>("user") { Description = "Full user ID, e.g. @alice:example.org" };
        var config = new Option<string>("--config", "-c") { Description = "Path to homeserver.yaml", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Folder to write the export into (must not exist yet, or be empty)", Required = true };
        var command = new Command("export-user", "Export everything the server holds about a user (data portability)") { user, config, output };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(user)!, parse.GetValue(config)!, parse.GetValue(output)!, ct));
        return command;
    }

    private static async Task<int> RunAsync(string user, string configPath, string output, CancellationToken ct)
    {
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

        if (!UserId.TryParse(user, out var parsed) || parsed.Server.Value != config.ServerName)
        {
            await Console.Error.WriteLineAsync($"lethe: {user} is not a user ID on {config.ServerName}");
            return 2;
        }

        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
        {
            await Console.Error.WriteLineAsync($"lethe: {output} is not empty; choose a new folder");
            return 2;
        }

        await using var database = await Database.OpenAsync(config.Database, ct);
        // The export signs nothing: a throwaway key spares touching the server's key file.
        using var services = new HomeserverServices(config, database, SigningKey.Generate(), TimeProvider.System);
        await services.Streams.LoadAsync(database, ct);
        await services.Erasure.LoadAsync(ct);
        if (await services.Admin.UserAsync(user, ct) is null)
        {
            await Console.Error.WriteLineAsync($"lethe: no account {user} on this server");
            return 1;
        }

        Directory.CreateDirectory(output);
        var sent = await services.Export.WriteAsync(user, new UserExport.FolderSink(output), ct);
        Console.WriteLine($"Exported {user}: {sent} sent events, to {Path.GetFullPath(output)}");
        return 0;
    }
}
