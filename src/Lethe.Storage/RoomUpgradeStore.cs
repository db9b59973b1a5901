using Dapper;

namespace Lethe.Storage;

/// <summary>The database side of room upgrades.</summary>
public sealed class RoomUpgradeStore(Database db)
{
    /// <summary>Points every local alias of <paramref name="oldRoomId"/> at <paramref name="newRoomId"/> in one transaction and returns them.</summary>
    public Task<List<string>> MoveAliasesAsync(string oldRoomId, string newRoomId, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var aliases = (await tx.Connection!.QueryAsync<string>(
                "SELECT room_alias FROM room_aliases WHERE room_id = @oldRoomId ORDER BY room_alias", new { oldRoomId }, tx)).ToList();
            await tx.Connection!.ExecuteAsync("UPDATE room_aliases SET room_id = @newRoomId WHERE room_id = @oldRoomId", new { oldRoomId, newRoomId }, tx);
            return aliases;
        }, ct);
}
