using System.Collections.Concurrent;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Events;
using Lethe.Storage;

namespace Lethe.Homeserver.Rooms;

/// <summary>The rooms this server knows and their versions (which never change), cached.</summary>
public sealed class RoomDirectory(RoomStore rooms)
{
    private readonly ConcurrentDictionary<string, RoomVersion> _versions = new(StringComparer.Ordinal);

    /// <summary>The room's version; 404 M_NOT_FOUND for an unknown room.</summary>
    public async Task<RoomVersion> VersionOfAsync(string roomId, CancellationToken ct = default) =>
        await TryVersionOfAsync(roomId, ct) ?? throw MatrixException.NotFound("Unknown room");

    /// <summary>The room's version, or null for an unknown room.</summary>
    public async Task<RoomVersion?> TryVersionOfAsync(string roomId, CancellationToken ct = default)
    {
        if (_versions.TryGetValue(roomId, out var v))
        {
            return v;
        }

        var room = await rooms.GetAsync(roomId, ct);
        if (room is null || !RoomVersion.TryGet(room.RoomVersion, out v))
        {
            return null;
        }

        _versions[roomId] = v;
        return v;
    }

    /// <summary>Remembers a newly created room's version.</summary>
    public void Add(string roomId, RoomVersion version) => _versions[roomId] = version;

    /// <summary>Forgets a room that has been deleted from this server.</summary>
    public void Remove(string roomId) => _versions.TryRemove(roomId, out _);
}
