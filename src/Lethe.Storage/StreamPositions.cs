using System.Data.Common;
using Dapper;

namespace Lethe.Storage;

/// <summary>Monotonic, gap-free positions per stream, allocated inside the writer's transaction.</summary>
/// <remarks>
/// Allocation updates the stream's row, which locks it until the transaction ends. A second writer on the same stream waits,
/// so positions are committed in the order they are allocated: a reader that sees position N has already seen every
/// position below N. That is the property sync tokens need.
/// </remarks>
public static class StreamPositions
{
    /// <summary>Allocates the next position of <paramref name="stream"/> in the caller's transaction.</summary>
    public static async Task<long> NextAsync(DbTransaction tx, string stream, int count = 1)
    {
        var conn = tx.Connection!;
        var next = await conn.ExecuteScalarAsync<long?>(
            "UPDATE stream_positions SET position = position + @count WHERE stream = @stream RETURNING position",
            new { stream, count }, tx);
        if (next is { } n)
        {
            return n - count + 1;
        }

        await conn.ExecuteAsync(
            "INSERT INTO stream_positions (stream, position) VALUES (@stream, 0) ON CONFLICT (stream) DO NOTHING",
            new { stream }, tx);
        next = await conn.ExecuteScalarAsync<long>(
            "UPDATE stream_positions SET position = position + @count WHERE stream = @stream RETURNING position",
            new { stream, count }, tx);
        return next.Value - count + 1;
    }

    /// <summary>The newest committed position of <paramref name="stream"/> (0 when nothing was ever allocated).</summary>
    public static Task<long> CurrentAsync(Database db, string stream, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long>(
            "SELECT COALESCE((SELECT position FROM stream_positions WHERE stream = @stream), 0)", new { stream }), ct);
}
