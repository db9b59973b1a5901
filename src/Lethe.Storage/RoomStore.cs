using System.Data.Common;
using Dapper;

namespace Lethe.Storage;

/// <summary>A room known to this server.</summary>
public sealed record RoomRecord
{
    /// <summary>Room ID.</summary>
    public required string RoomId { get; init; }

    /// <summary>Room version identifier.</summary>
    public required string RoomVersion { get; init; }

    /// <summary>Creator.</summary>
    public required string Creator { get; init; }

    /// <summary>Published in this server's room directory.</summary>
    public bool IsPublic { get; init; }

    /// <summary>Creation time (ms).</summary>
    public long CreatedTs { get; init; }

    /// <summary>The state group of the room's current state.</summary>
    public long? CurrentStateGroup { get; init; }
}

/// <summary>Rooms, aliases, transaction IDs and forgotten rooms.</summary>
public sealed class RoomStore(Database db)
{
    /// <summary>Inserts a room in the caller's transaction.</summary>
    public static Task InsertAsync(DbTransaction tx, RoomRecord room) =>
        tx.Connection!.ExecuteAsync(
            "INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts) VALUES (@RoomId, @RoomVersion, @Creator, @IsPublic, @CreatedTs)", room, tx);

    /// <summary>The room, or null.</summary>
    public Task<RoomRecord?> GetAsync(string roomId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.QuerySingleOrDefaultAsync<RoomRecord>(
            "SELECT room_id, room_version, creator, is_public, created_ts, current_state_group FROM rooms WHERE room_id = @roomId", new { roomId }), ct);

    /// <summary>Records the room's current state group in the caller's transaction.</summary>
    public static Task SetCurrentStateGroupAsync(DbTransaction tx, string roomId, long group) =>
        WriteCommands.ExecuteAsync(tx, "UPDATE rooms SET current_state_group = @group WHERE room_id = @roomId", ("group", group), ("roomId", roomId));

    /// <summary>Publishes or unpublishes a room in the directory.</summary>
    public Task SetPublicAsync(string roomId, bool isPublic, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync("UPDATE rooms SET is_public = @isPublic WHERE room_id = @roomId", new { roomId, isPublic }, tx), ct);

    /// <summary>Published rooms.</summary>
    public Task<List<string>> PublicRoomsAsync(CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>("SELECT room_id FROM rooms WHERE is_public ORDER BY room_id")).ToList(), ct);

    /// <summary>The event a transaction ID produced, or null.</summary>
    public Task<string?> GetTxnAsync(string userId, string deviceId, string scope, string txnId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<string?>(
            "SELECT event_id FROM event_txns WHERE user_id = @userId AND device_id = @deviceId AND scope = @scope AND txn_id = @txnId",
            new { userId, deviceId, scope, txnId }), ct);

    /// <summary>The event a transaction ID produced, or null, read in the caller's (write) transaction.</summary>
    public static async Task<string?> GetTxnAsync(DbTransaction tx, string userId, string deviceId, string scope, string txnId) =>
        (string?)await WriteCommands.ScalarAsync(
            tx,
            "SELECT event_id FROM event_txns WHERE user_id = @userId AND device_id = @deviceId AND scope = @scope AND txn_id = @txnId",
            ("userId", userId), ("deviceId", deviceId), ("scope", scope), ("txnId", txnId));

    /// <summary>
    /// Records a transaction ID in the caller's transaction (with the event, so both commit or neither); false, and
    /// nothing written, when the ID is taken already. Claiming the ID first spares every send a separate lookup.
    /// </summary>
    public static async Task<bool> TryInsertTxnAsync(DbTransaction tx, string userId, string deviceId, string scope, string txnId, string eventId, long now) =>
        await WriteCommands.ExecuteAsync(
            tx,
            "INSERT INTO event_txns (user_id, device_id, scope, txn_id, event_id, created_ts) VALUES (@userId, @deviceId, @scope, @txnId, @eventId, @now) ON CONFLICT DO NOTHING",
            ("userId", userId), ("deviceId", deviceId), ("scope", scope), ("txnId", txnId), ("eventId", eventId), ("now", now)) == 1;

    /// <summary>Marks a room forgotten (or not) by a user.</summary>
    public Task SetForgottenAsync(string userId, string roomId, bool forgotten, long now, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            forgotten
                ? "INSERT INTO room_forgotten (user_id, room_id, forgotten_ts) VALUES (@userId, @roomId, @now) ON CONFLICT DO NOTHING"
                : "DELETE FROM room_forgotten WHERE user_id = @userId AND room_id = @roomId",
            new { userId, roomId, now }, tx), ct);

    /// <summary>Rooms the user has forgotten.</summary>
    public Task<HashSet<string>> ForgottenAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>("SELECT room_id FROM room_forgotten WHERE user_id = @userId", new { userId })).ToHashSet(StringComparer.Ordinal), ct);

    /// <summary>Creates an alias; false when it exists.</summary>
    public static async Task<bool> TryCreateAliasAsync(DbTransaction tx, string alias, string roomId, string creator) =>
        await tx.Connection!.ExecuteAsync(
            "INSERT INTO room_aliases (room_alias, room_id, creator) VALUES (@alias, @roomId, @creator) ON CONFLICT DO NOTHING",
            new { alias, roomId, creator }, tx) == 1;

    /// <summary>Creates an alias; false when it exists.</summary>
    public Task<bool> TryCreateAliasAsync(string alias, string roomId, string creator, CancellationToken ct = default) =>
        db.WriteAsync(tx => TryCreateAliasAsync(tx, alias, roomId, creator), ct);

    /// <summary>The room and creator of an alias, or null.</summary>
    public Task<(string RoomId, string Creator)?> GetAliasAsync(string alias, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<AliasRow>(
            "SELECT room_id, creator FROM room_aliases WHERE room_alias = @alias", new { alias })).Select(r => ((string, string)?)(r.RoomId, r.Creator)).FirstOrDefault(), ct);

    /// <summary>Deletes an alias; false when it did not exist.</summary>
    public Task<bool> DeleteAliasAsync(string alias, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync("DELETE FROM room_aliases WHERE room_alias = @alias", new { alias }, tx) == 1, ct);

    /// <summary>Local aliases of a room.</summary>
    public Task<List<string>> AliasesAsync(string roomId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>("SELECT room_alias FROM room_aliases WHERE room_id = @roomId ORDER BY room_alias", new { roomId })).ToList(), ct);
}

internal readonly record struct AliasRow(string RoomId, string Creator);
