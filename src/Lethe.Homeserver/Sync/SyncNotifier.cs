using System.Collections.Concurrent;
using System.Collections.Immutable;
using Dapper;
using Lethe.Protocol.Events;
using Lethe.Storage;

namespace Lethe.Homeserver.Sync;

/// <summary>
/// The notify step of the write path and the index /sync reads first: which rooms each local user is in, the stream
/// position of each room's newest event, and a signal per user that completes the moment something for them commits.
/// With it an incremental sync finds the rooms that changed without a query per room.
/// </summary>
public sealed class SyncNotifier(Database db, string serverName)
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _signals = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ImmutableDictionary<string, string>> _userRooms = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _roomPositions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _membershipGenerations = new(StringComparer.Ordinal);
    private readonly string _suffix = ":" + serverName;

    /// <summary>
    /// The user's current signal. Take it <em>before</em> looking for new data, then wait on it: anything committed after
    /// the look completes it, so nothing slips between the look and the wait.
    /// </summary>
    public Task SignalFor(string userId) =>
        _signals.GetOrAdd(userId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    /// <summary>Wakes the given users.</summary>
    public void Notify(IEnumerable<string> userIds)
    {
        foreach (var userId in userIds)
        {
            Notify(userId);
        }
    }

    /// <summary>Wakes one user.</summary>
    public void Notify(string userId)
    {
        if (_signals.TryRemove(userId, out var signal))
        {
            signal.TrySetResult();
        }
    }

    /// <summary>Records a committed room event and wakes the local users it concerns (joined members and the subject of a membership change).</summary>
    public void EventPersisted(Pdu pdu, long stream, ImmutableDictionary<string, string> memberships)
    {
        _roomPositions.AddOrUpdate(pdu.RoomId, stream, (_, old) => Math.Max(old, stream));
        if (pdu.Membership is { } membership && pdu.StateKey!.EndsWith(_suffix, StringComparison.Ordinal))
        {
            var user = pdu.StateKey;
            _membershipGenerations.AddOrUpdate(user, 1, (_, g) => g + 1);
            while (_userRooms.TryGetValue(user, out var rooms) && !_userRooms.TryUpdate(user, rooms.SetItem(pdu.RoomId, membership), rooms))
            {
            }

            Notify(user);
        }

        foreach (var (user, m) in memberships)
        {
            if (m == Membership.Join && user.EndsWith(_suffix, StringComparison.Ordinal))
            {
                Notify(user);
            }
        }
    }

    /// <summary>Forgets a room that has been deleted from this server: no user is in it any more, in any way.</summary>
    public void ForgetRoom(string roomId)
    {
        _roomPositions.TryRemove(roomId, out _);
        foreach (var (user, rooms) in _userRooms)
        {
            if (rooms.ContainsKey(roomId))
            {
                _membershipGenerations.AddOrUpdate(user, 1, (_, g) => g + 1);
                _userRooms.TryRemove(user, out _);
            }
        }
    }

    /// <summary>The rooms a local user has any membership in, with that membership.</summary>
    public async Task<ImmutableDictionary<string, string>> RoomsOfAsync(string userId, CancellationToken ct)
    {
        if (_userRooms.TryGetValue(userId, out var rooms))
        {
            return rooms;
        }

        var generation = _membershipGenerations.GetValueOrDefault(userId);
        var loaded = await db.ReadAsync(async c => (await c.QueryAsync<MembershipRow>(
            "SELECT room_id, membership FROM current_state WHERE type = 'm.room.member' AND state_key = @userId", new { userId }))
            .ToImmutableDictionary(r => r.RoomId, r => r.Membership, StringComparer.Ordinal), ct);

        // A membership change that committed while loading may be missing from what was read: cache only an unchanged view.
        return _membershipGenerations.GetValueOrDefault(userId) == generation ? _userRooms.GetOrAdd(userId, loaded) : loaded;
    }

    /// <summary>The stream position of the room's newest event.</summary>
    public async Task<long> RoomPositionAsync(string roomId, CancellationToken ct)
    {
        if (_roomPositions.TryGetValue(roomId, out var p))
        {
            return p;
        }

        var loaded = await db.ReadAsync(c => c.ExecuteScalarAsync<long?>("SELECT MAX(stream_ordering) FROM events WHERE room_id = @roomId", new { roomId }), ct) ?? 0;
        return _roomPositions.AddOrUpdate(roomId, loaded, (_, old) => Math.Max(old, loaded));
    }
}

internal readonly record struct MembershipRow(string RoomId, string Membership);
