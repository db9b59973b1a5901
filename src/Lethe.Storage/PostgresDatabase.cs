using System.Data.Common;
using System.Data;
using System.Diagnostics;
using Npgsql;

namespace Lethe.Storage;

/// <summary>PostgreSQL through Npgsql's pooled data source.</summary>
public sealed class PostgresDatabase : Database
{
    // Any constant: identifies Lethe's migration lock among advisory locks.
    private const long MigrationLockKey = 0x4c65746865;

    private readonly NpgsqlDataSource _dataSource;

    internal PostgresDatabase(DatabaseOptions options)
    {
        var builder = new NpgsqlConnectionStringBuilder(options.PostgresConnectionString)
        {
            MinPoolSize = options.MinPoolSize,
            MaxPoolSize = options.MaxPoolSize,
        };
        _dataSource = NpgsqlDataSource.Create(builder);
    }

    /// <inheritdoc />
    public override DatabaseEngine Engine => DatabaseEngine.Postgres;

    internal override string MigrationFolder => "Postgres";

    /// <inheritdoc />
    public override async Task<DbConnection> OpenConnectionAsync(CancellationToken ct = default) =>
        await _dataSource.OpenConnectionAsync(ct);

    /// <inheritdoc />
    public override async Task<T> WriteAsync<T>(Func<DbTransaction, Task<T>> work, CancellationToken ct = default)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            await using var tx = await conn.BeginTransactionAsync(IsolationLevel.ReadCommitted, ct);
            var result = await work(tx);
            await tx.CommitAsync(ct);
            return result;
        }
        finally
        {
            Interlocked.Add(ref Stats.WriteTicks, Stopwatch.GetTimestamp() - started);
            Interlocked.Increment(ref Stats.Writes);
            Interlocked.Increment(ref Stats.Transactions);
        }
    }

    /// <summary>
    /// Every table that retention purges, room deletion, redaction GC, erasure and IP expiry delete or overwrite rows in:
    /// what <see cref="CompactAfterDeleteAsync"/> vacuums. A new table that holds a copy of message content or personal
    /// data belongs here too.
    /// </summary>
    internal static readonly string[] PurgedTables =
    [
        // Events and everything derived from them (retention purge, room deletion, redaction GC, self-destruct).
        "events", "event_relations", "event_txns", "event_expiries", "redaction_gc_queue", "event_push_actions", "receipts",
        // Media named only by deleted events, and erased users' uploads.
        "media", "media_references", "media_thumbnails",
        // The rest of a deleted room.
        "rooms", "current_state", "state_groups", "state_group_entries", "room_forward_extremities", "room_aliases",
        "room_forgotten", "room_retention_overrides", "account_data",
        // An erased user's profile, filters and presence; devices' expired IP addresses and user agents.
        "profiles", "filters", "presence", "devices",
    ];

    /// <summary>
    /// Deleted rows stay in PostgreSQL's heap (and index) pages until VACUUM removes them; plain VACUUM (run here, on
    /// every table in <see cref="PurgedTables"/>) drops the dead tuples and makes the space reusable, but bytes can
    /// survive in free space, in WAL segments until they are recycled, and in backups. docs/retention.md (PostgreSQL)
    /// says what an operator must add for stronger erasure.
    /// </summary>
    public override async Task CompactAfterDeleteAsync(CancellationToken ct = default)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = "VACUUM (ANALYZE) " + string.Join(", ", PurgedTables) + ";";
        await cmd.ExecuteNonQueryAsync(ct);
    }

    internal override async Task LockForMigrationAsync(DbTransaction tx, CancellationToken ct)
    {
        await using var cmd = tx.Connection!.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = $"SELECT pg_advisory_xact_lock({MigrationLockKey})";
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        await _dataSource.DisposeAsync();
        await base.DisposeAsync();
    }
}
