using Dapper;

namespace Lethe.Storage;

/// <summary>Sync filters uploaded by clients.</summary>
public sealed class FilterStore(Database db)
{
    /// <summary>Stores a filter and returns its ID (counting from 0 per user).</summary>
    public Task<long> AddAsync(string userId, byte[] json, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var id = await tx.Connection!.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(filter_id) + 1, 0) FROM filters WHERE user_id = @userId", new { userId }, tx);
            await tx.Connection!.ExecuteAsync("INSERT INTO filters (user_id, filter_id, json) VALUES (@userId, @id, @json)", new { userId, id, json = (object)json }, tx);
            return id;
        }, ct);

    /// <summary>A stored filter, or null.</summary>
    public Task<byte[]?> GetAsync(string userId, long filterId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<byte[]?>("SELECT json FROM filters WHERE user_id = @userId AND filter_id = @filterId", new { userId, filterId }), ct);
}
