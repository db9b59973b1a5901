using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using Dapper;
using Lethe.Protocol.Events;

namespace Lethe.Storage;

/// <summary>Room state: snapshots stored as chains of deltas (state groups), and each room's current state.</summary>
public sealed class StateStore(Database db)
{
    /// <summary>Deltas allowed before a full snapshot is written, bounding lookups.</summary>
    public const int MaxChainLength = 50;

    // Full state maps of recently used groups. Groups are immutable, so entries never go stale.
    private readonly ConcurrentDictionary<long, IReadOnlyDictionary<StateKey, string>> _groups = new();

    /// <summary>
    /// Stores a new state group in the caller's transaction: <paramref name="delta"/> (the entries that differ from
    /// <paramref name="prevGroup"/>), or the whole of <paramref name="full"/> as a snapshot when there is no previous
    /// group or the chain of deltas has grown long.
    /// </summary>
    public async Task<long> CreateGroupAsync(DbTransaction tx, string roomId, long? prevGroup, IReadOnlyDictionary<StateKey, string> delta, IReadOnlyDictionary<StateKey, string> full)
    {
        var id = await StreamPositions.NextAsync(tx, "state_groups");
        var chain = 0;
        if (prevGroup is { } p)
        {
            chain = Convert.ToInt32(await WriteCommands.ScalarAsync(tx, "SELECT chain_length FROM state_groups WHERE id = @p", ("p", p)) ?? 0, CultureInfo.InvariantCulture) + 1;
        }

        var entries = delta;
        if (prevGroup is null || chain > MaxChainLength)
        {
            prevGroup = null;
            chain = 0;
            entries = full;
        }

        await WriteCommands.ExecuteAsync(
            tx, "INSERT INTO state_groups (id, room_id, prev_group, chain_length) VALUES (@id, @roomId, @prevGroup, @chain)",
            ("id", id), ("roomId", roomId), ("prevGroup", prevGroup), ("chain", chain));
        foreach (var (key, eventId) in entries)
        {
            await WriteCommands.ExecuteAsync(
                tx, "INSERT INTO state_group_entries (state_group, type, state_key, event_id) VALUES (@id, @Type, @Key, @EventId)",
                ("id", id), ("Type", key.Type), ("Key", key.Key), ("EventId", eventId));
        }
        _groups[id] = full;
        return id;
    }

    /// <summary>The full state of a group.</summary>
    public async Task<IReadOnlyDictionary<StateKey, string>> GetGroupAsync(long group, CancellationToken ct = default)
    {
        if (_groups.TryGetValue(group, out var cached))
        {
            return cached;
        }

        var chain = new List<long>();
        var result = new Dictionary<StateKey, string>();
        await db.ReadAsync(async c =>
        {
            long? current = group;
            IReadOnlyDictionary<StateKey, string>? baseState = null;
            while (current is { } g)
            {
                if (_groups.TryGetValue(g, out var known))
                {
                    baseState = known;
                    break;
                }

                chain.Add(g);
                current = await c.ExecuteScalarAsync<long?>("SELECT prev_group FROM state_groups WHERE id = @g", new { g });
            }

            if (baseState is not null)
            {
                foreach (var kv in baseState)
                {
                    result[kv.Key] = kv.Value;
                }
            }

            // Apply deltas oldest first.
            for (var i = chain.Count - 1; i >= 0; i--)
            {
                var rows = await c.QueryAsync<StateEntryRow>(
                    "SELECT type, state_key, event_id FROM state_group_entries WHERE state_group = @g", new { g = chain[i] });
                foreach (var (type, key, eventId) in rows)
                {
                    result[new StateKey(type, key)] = eventId;
                }
            }

            return 0;
        }, ct);

        if (_groups.Count > 5000)
        {
            _groups.Clear();
        }

        _groups[group] = result;
        return result;
    }

    /// <summary>Sets one entry of a room's current state in the caller's transaction.</summary>
    public static Task SetCurrentAsync(DbTransaction tx, string roomId, StateKey key, string eventId, string? membership) =>
        WriteCommands.ExecuteAsync(
            tx,
            """
            INSERT INTO current_state (room_id, type, state_key, event_id, membership) VALUES (@roomId, @Type, @Key, @eventId, @membership)
            ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = @eventId, membership = @membership
            """,
            ("roomId", roomId), ("Type", key.Type), ("Key", key.Key), ("eventId", eventId), ("membership", membership));

    /// <summary>A room's current state (key → event ID).</summary>
    public Task<Dictionary<StateKey, string>> CurrentAsync(string roomId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<StateEntryRow>(
            "SELECT type, state_key, event_id FROM current_state WHERE room_id = @roomId", new { roomId }))
            .ToDictionary(r => new StateKey(r.Type, r.StateKey), r => r.EventId), ct);

    /// <summary>Rooms where the user's current membership is one of <paramref name="memberships"/>, with that membership.</summary>
    public Task<List<(string RoomId, string Membership)>> RoomsForUserAsync(string userId, string[] memberships, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<RoomMembershipRow>(
            $"SELECT room_id, membership FROM current_state WHERE type = 'm.room.member' AND state_key = @userId AND {db.In("membership", "memberships")}",
            new { userId, memberships = db.List(memberships) })).Select(r => (r.RoomId, r.Membership)).ToList(), ct);

    /// <summary>Members of a room with the given current memberships.</summary>
    public Task<List<(string UserId, string Membership)>> MembersAsync(string roomId, string[] memberships, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<MemberRow>(
            $"SELECT state_key AS user_id, membership FROM current_state WHERE room_id = @roomId AND type = 'm.room.member' AND {db.In("membership", "memberships")}",
            new { roomId, memberships = db.List(memberships) })).Select(r => (r.UserId, r.Membership)).ToList(), ct);
}

/// <summary>One state entry as read from a state table.</summary>
internal readonly record struct StateEntryRow(string Type, string StateKey, string EventId);

internal readonly record struct RoomMembershipRow(string RoomId, string Membership);

internal readonly record struct MemberRow(string UserId, string Membership);
