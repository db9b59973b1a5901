using System.Collections.Concurrent;
using System.Collections.Immutable;
using Dapper;
using Lethe.Protocol.Events;
using Lethe.Storage;

namespace Lethe.Homeserver.Rooms;

/// <summary>A room's current state as the write path needs it: state map, state group, forward extremities, depth and memberships.</summary>
public sealed record RoomSnapshot(
    string RoomId,
    RoomVersion Version,
    ImmutableDictionary<StateKey, string> State,
    long StateGroup,
    IReadOnlyList<string> ForwardExtremities,
    long Depth,
    ImmutableDictionary<string, string> Memberships)
{
    /// <summary>A user's current membership, or null.</summary>
    public string? MembershipOf(string userId) => Memberships.TryGetValue(userId, out var m) ? m : null;

    /// <summary>The event ID at a state key, or null.</summary>
    public string? StateEventId(string type, string stateKey = "") => State.TryGetValue(new StateKey(type, stateKey), out var id) ? id : null;
}

/// <summary>Current room snapshots, loaded on first use and replaced by the write path after each persisted event.</summary>
public sealed class RoomSnapshots(Database db, StateStore state, RoomStore rooms, RoomDirectory directory)
{
    private readonly ConcurrentDictionary<string, RoomSnapshot> _snapshots = new(StringComparer.Ordinal);

    /// <summary>The room's snapshot, or null for a room this server does not have.</summary>
    public async Task<RoomSnapshot?> GetAsync(string roomId, CancellationToken ct = default)
    {
        if (_snapshots.TryGetValue(roomId, out var snapshot))
        {
            return snapshot;
        }

        var room = await rooms.GetAsync(roomId, ct);
        var version = await directory.TryVersionOfAsync(roomId, ct);
        if (room?.CurrentStateGroup is not { } group || version is null)
        {
            return null;
        }

        var current = (await state.CurrentAsync(roomId, ct)).ToImmutableDictionary();
        var memberships = (await state.MembersAsync(roomId, [Membership.Join, Membership.Invite, Membership.Leave, Membership.Ban, Membership.Knock], ct))
            .ToImmutableDictionary(m => m.UserId, m => m.Membership, StringComparer.Ordinal);
        var (extremities, depth) = await db.ReadAsync(async c =>
        {
            var ids = (await c.QueryAsync<string>("SELECT event_id FROM room_forward_extremities WHERE room_id = @roomId", new { roomId })).ToList();
            var d = await c.ExecuteScalarAsync<long?>("SELECT MAX(depth) FROM events WHERE room_id = @roomId", new { roomId }) ?? 0;
            return (ids, d);
        }, ct);
        snapshot = new RoomSnapshot(roomId, version, current, group, extremities, depth, memberships);
        return _snapshots.GetOrAdd(roomId, snapshot);
    }

    /// <summary>Installs the snapshot after an event was persisted (called under the room's write lock).</summary>
    public void Set(RoomSnapshot snapshot) => _snapshots[snapshot.RoomId] = snapshot;

    /// <summary>Forgets a room that has been deleted from this server.</summary>
    public void Remove(string roomId) => _snapshots.TryRemove(roomId, out _);
}
