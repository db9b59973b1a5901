using System.CommandLine;
using Lethe.Homeserver.Configuration;
using Lethe.Protocol.Identifiers;

namespace Lethe.Cli;

/// <summary><c>lethe generate-config --server-name NAME --data-dir DIR [--port N]</c>: prints a starter config.</summary>
internal static class GenerateConfigCommand
{
    public static Command Create()
    {
        var serverName = new Option<string>("--server-name") { Description = "The server name (the part after ':' in user IDs)", Required = true };
        var dataDir = new Option<string>("--data-dir") { Description = "Folder for the database, signing key and media", Required = true };
        var port = new Option<int>("--port") { Description = "HTTP port on 127.0.0.1", DefaultValueFactory = _ => 8008 };
        var command = new Command("generate-config", "Print a homeserver.yaml for a new server") { serverName, dataDir, port };
        command.SetAction(parse =>
        {
            var name = parse.GetValue(serverName)!;
            if (!ServerName.IsValid(name))
            {
                Console.Error.WriteLine($"lethe: '{name}' is not a valid server name");
                return 2;
            }

            var p = parse.GetValue(port);
            if (p is < 1 or > 65535)
            {
                Console.Error.WriteLine($"lethe: --port must be between 1 and 65535");
                return 2;
            }

            Console.Write(ConfigTemplate.Generate(name, parse.GetValue(dataDir)!, p));
            return 0;
        });
        return command;
    }
}
