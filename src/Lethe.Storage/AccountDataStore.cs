using Dapper;

namespace Lethe.Storage;

/// <summary>One account data entry: global when <paramref name="RoomId"/> is empty.</summary>
public sealed record AccountDataRow(string RoomId, string Type, byte[] Content, long StreamOrdering);

/// <summary>Account data per user, global and per room, positioned in the account_data stream.</summary>
public sealed class AccountDataStore(Database db)
{
    /// <summary>Stores an entry and returns its new stream position.</summary>
    public Task<long> SetAsync(string userId, string roomId, string type, byte[] content, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var stream = await StreamPositions.NextAsync(tx, "account_data");
            await tx.Connection!.ExecuteAsync(
                """
                INSERT INTO account_data (user_id, room_id, type, content, stream_ordering) VALUES (@userId, @roomId, @type, @content, @stream)
                ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = @content, stream_ordering = @stream
                """, new { userId, roomId, type, content = (object)content, stream }, tx);
            return stream;
        }, ct);

    /// <summary>One entry's content, or null.</summary>
    public Task<byte[]?> GetAsync(string userId, string roomId, string type, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<byte[]?>(
            "SELECT content FROM account_data WHERE user_id = @userId AND room_id = @roomId AND type = @type", new { userId, roomId, type }), ct);

    /// <summary>Entries changed after <paramref name="since"/> (all entries when 0), up to <paramref name="upTo"/>.</summary>
    public Task<List<AccountDataRow>> ChangedAsync(string userId, long since, long upTo, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<AccountDataRow>(
            "SELECT room_id, type, content, stream_ordering FROM account_data WHERE user_id = @userId AND stream_ordering > @since AND stream_ordering <= @upTo",
            new { userId, since, upTo })).ToList(), ct);
}
