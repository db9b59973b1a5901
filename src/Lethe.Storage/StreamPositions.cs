using System.Data.Common;
using System.Globalization;
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
        const string Allocate = "UPDATE stream_positions SET position = position + @count WHERE stream = @stream RETURNING position";
        if (await WriteCommands.ScalarAsync(tx, Allocate, ("count", count), ("stream", stream)) is { } n)
        {
            return Convert.ToInt64(n, CultureInfo.InvariantCulture) - count + 1;
        }

        await WriteCommands.ExecuteAsync(tx, "INSERT INTO stream_positions (stream, position) VALUES (@stream, 0) ON CONFLICT (stream) DO NOTHING", ("stream", stream));
        var next = await WriteCommands.ScalarAsync(tx, Allocate, ("count", count), ("stream", stream));
        return Convert.ToInt64(next, CultureInfo.InvariantCulture) - count + 1;
    }

    /// <summary>The newest committed position of <paramref name="stream"/> (0 when nothing was ever allocated).</summary>
    public static Task<long> CurrentAsync(Database db, string stream, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<long>(
            "SELECT COALESCE((SELECT position FROM stream_positions WHERE stream = @stream), 0)", new { stream }), ct);
}
