using System.CommandLine;
using Lethe.Homeserver.Configuration;
using Lethe.Protocol.Identifiers;
using Lethe.Storage;

namespace Lethe.Cli;

/// <summary><c>lethe room retention --config FILE ROOM [DURATION|off] [--min DURATION]</c>: a room's retention override, without devtools.</summary>
internal static class RoomCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config", "-c") { Description = "Path to homeserver.yaml", Required = true };
        var room = new Argument<string>("room") { Description = "Room ID (!…) or local alias (#…)" };
        var lifetime = new Argument<string?>("max-lifetime") { Description = "How long messages live (e.g. 1d, 12h, 30m), or 'off' to remove the override; omit to show it", Arity = ArgumentArity.ZeroOrOne };
        var min = new Option<string?>("--min") { Description = "Minimum lifetime: messages younger than this are never deleted (a legal hold)" };
        var retention = new Command("retention", "Show or set how long a room's messages are kept (a server-side override of its m.room.retention)") { config, room, lifetime, min };
        retention.SetAction((parse, ct) => RetentionAsync(parse.GetValue(config)!, parse.GetValue(room)!, parse.GetValue(lifetime), parse.GetValue(min), ct));
        return new Command("room", "Room administration") { retention };
    }

    private static async Task<int> RetentionAsync(string configPath, string room, string? lifetime, string? min, CancellationToken ct)
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

        await using var db = await Database.OpenAsync(config.Database, ct);
        var rooms = new RoomStore(db);
        string roomId;
        if (room.StartsWith('#') && RoomAlias.TryParse(room, out _))
        {
            var resolved = await rooms.GetAliasAsync(room, ct);
            if (resolved is null)
            {
                await Console.Error.WriteLineAsync($"lethe: no room has the alias {room} on this server");
                return 1;
            }

            roomId = resolved.Value.RoomId;
        }
        else if (RoomId.TryParse(room, out _))
        {
            roomId = room;
        }
        else
        {
            await Console.Error.WriteLineAsync($"lethe: '{room}' is neither a room ID nor a room alias");
            return 2;
        }

        if (await rooms.GetAsync(roomId, ct) is null)
        {
            await Console.Error.WriteLineAsync($"lethe: this server has no room {roomId}");
            return 1;
        }

        var store = new RetentionStore(db);
        if (lifetime is null)
        {
            var current = await store.GetOverrideAsync(roomId, ct);
            Console.WriteLine(current is null
                ? $"{roomId}: no override (the room's m.room.retention event or the server default applies)"
                : $"{roomId}: max_lifetime {Describe(current.MaxLifetime)}, min_lifetime {Describe(current.MinLifetime)}");
            return 0;
        }

        if (lifetime == "off")
        {
            var removed = await store.DeleteOverrideAsync(roomId, ct);
            Console.WriteLine(removed ? $"{roomId}: override removed" : $"{roomId}: had no override");
            return 0;
        }

        var max = ConfigUnits.ParseDuration(lifetime);
        long? minMs = min is null ? null : ConfigUnits.ParseDuration(min);
        if (max is null || (min is not null && minMs is null))
        {
            await Console.Error.WriteLineAsync("lethe: durations look like 30s, 10m, 12h, 1d, 2w or 1y (or milliseconds)");
            return 2;
        }

        await store.SetOverrideAsync(new RetentionOverride(roomId, minMs, max, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), ct);
        Console.WriteLine($"{roomId}: messages now expire after {Describe(max)}{(minMs is null ? "" : $" (never deleted before {Describe(minMs)})")}");
        if (!config.Retention.Enabled)
        {
            Console.WriteLine("Note: retention is disabled in this config (retention.enabled: false); the override takes effect once it is enabled.");
        }

        return 0;
    }

    private static string Describe(long? ms) => ms switch
    {
        null => "not set",
        { } v when v % 86_400_000 == 0 => $"{v / 86_400_000}d",
        { } v when v % 3_600_000 == 0 => $"{v / 3_600_000}h",
        { } v when v % 60_000 == 0 => $"{v / 60_000}m",
        { } v when v % 1000 == 0 => $"{v / 1000}s",
        { } v => $"{v}ms",
    };
}
