using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Lethe.Storage;

/// <summary>SQLite in WAL mode: many concurrent readers, one writer at a time (serialised in-process, so writers queue instead of failing with SQLITE_BUSY).</summary>
public sealed class SqliteDatabase : Database
{
    private readonly string _connectionString;
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    internal SqliteDatabase(DatabaseOptions options)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(options.SqlitePath));
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = options.SqlitePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            ForeignKeys = true,
            DefaultTimeout = 30,
        }.ToString();

        using var conn = new SqliteConnection(_connectionString);
        conn.Open();
        using var cmd = conn.CreateCommand();
        // WAL persists in the file; set it once. auto_vacuum must precede the first table to take effect.
        cmd.CommandText = "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL;";
        cmd.ExecuteNonQuery();
    }

    /// <inheritdoc />
    public override DatabaseEngine Engine => DatabaseEngine.Sqlite;

    internal override string MigrationFolder => "Sqlite";

    /// <inheritdoc />
    public override async Task<DbConnection> OpenConnectionAsync(CancellationToken ct = default)
    {
        var conn = new SqliteConnection(_connectionString);
        await conn.OpenAsync(ct);
        await using var cmd = conn.CreateCommand();
        // secure_delete overwrites freed pages with zeros, so purged messages do not linger in the file.
        cmd.CommandText = "PRAGMA secure_delete=ON; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;";
        await cmd.ExecuteNonQueryAsync(ct);
        return conn;
    }

    /// <inheritdoc />
    public override async Task<T> WriteAsync<T>(Func<DbTransaction, Task<T>> work, CancellationToken ct = default)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            await using var conn = await OpenConnectionAsync(ct);
            await using var tx = await conn.BeginTransactionAsync(ct);
            var result = await work(tx);
            await tx.CommitAsync(ct);
            return result;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    internal override Task LockForMigrationAsync(DbTransaction tx, CancellationToken ct) => Task.CompletedTask;

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        // Checkpoint so the WAL is folded into the main file and the -wal file does not keep deleted content.
        try
        {
            await using var conn = await OpenConnectionAsync();
            await using var cmd = conn.CreateCommand();
            cmd.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
            await cmd.ExecuteNonQueryAsync();
        }
        catch (SqliteException)
        {
            // Best effort on shutdown.
        }

        SqliteConnection.ClearAllPools();
        _writeLock.Dispose();
        await base.DisposeAsync();
    }
}
