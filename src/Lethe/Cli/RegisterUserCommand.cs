using System.CommandLine;
using Lethe.Homeserver.Configuration;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Identifiers;
using Lethe.Storage;

namespace Lethe.Cli;

/// <summary><c>lethe register-user --config FILE --user NAME [--password P] [--admin]</c>: creates an account directly in the database.</summary>
internal static class RegisterUserCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config", "-c") { Description = "Path to homeserver.yaml", Required = true };
        var user = new Option<string>("--user", "-u") { Description = "Localpart (alice) or full user ID (@alice:example.org)", Required = true };
        var password = new Option<string?>("--password", "-p") { Description = "Password (prompted for, or generated and printed, when omitted)" };
        var admin = new Option<bool>("--admin") { Description = "Make the user a server admin" };
        var command = new Command("register-user", "Create an account directly in the database") { config, user, password, admin };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(config)!, parse.GetValue(user)!, parse.GetValue(password), parse.GetValue(admin), ct));
        return command;
    }

    private static async Task<int> RunAsync(string configPath, string user, string? password, bool admin, CancellationToken ct)
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

        var server = ServerName.Parse(config.ServerName);
        string localpart;
        if (user.StartsWith('@'))
        {
            if (!UserId.TryParse(user, out var full) || full.Server != server)
            {
                await Console.Error.WriteLineAsync($"lethe: {user} is not a user ID on {config.ServerName}");
                return 2;
            }

            localpart = full.Localpart;
        }
        else
        {
            localpart = user;
        }

        if (!UserId.IsValidLocalpart(localpart))
        {
            await Console.Error.WriteLineAsync($"lethe: '{localpart}' is not a valid user name: use only a-z, 0-9 and . _ = - / +");
            return 2;
        }

        var userId = UserId.Create(localpart, server);
        var generated = false;
        if (password is null)
        {
            if (!Console.IsInputRedirected)
            {
                password = ReadPasswordTwice();
                if (password is null)
                {
                    await Console.Error.WriteLineAsync("lethe: passwords do not match");
                    return 2;
                }
            }
            else
            {
                password = Base64Unpadded.EncodeUrlSafe(SecureRandom.Bytes(18));
                generated = true;
            }
        }

        if (password.Length == 0)
        {
            await Console.Error.WriteLineAsync("lethe: the password must not be empty");
            return 2;
        }

        await using var db = await Database.OpenAsync(config.Database, ct);
        var created = await new UserStore(db).TryCreateAsync(new UserRecord
        {
            UserId = userId.Value,
            PasswordHash = PasswordHash.Hash(password),
            IsAdmin = admin,
            CreatedTs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        }, ct);
        if (!created)
        {
            await Console.Error.WriteLineAsync($"lethe: {userId} already exists");
            return 1;
        }

        Console.WriteLine($"Created {(admin ? "admin " : "")}user {userId}");
        if (generated)
        {
            Console.WriteLine($"Password: {password}");
        }

        return 0;
    }

    private static string? ReadPasswordTwice()
    {
        var first = ReadHidden("Password: ");
        var second = ReadHidden("Confirm password: ");
        return first == second ? first : null;
    }

    private static string ReadHidden(string prompt)
    {
        Console.Write(prompt);
        var chars = new List<char>();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
            {
                Console.WriteLine();
                return new string(chars.ToArray());
            }

            if (key.Key == ConsoleKey.Backspace)
            {
                if (chars.Count > 0)
                {
                    chars.RemoveAt(chars.Count - 1);
                }
            }
            else if (!char.IsControl(key.KeyChar))
            {
                chars.Add(key.KeyChar);
            }
        }
    }
}
