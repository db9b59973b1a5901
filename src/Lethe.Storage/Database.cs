using System.Data.Common;
using Dapper;

namespace Lethe.Storage;

/// <summary>The server's database: opens connections, runs reads and serialised-enough writes, applies migrations. One per process.</summary>
public abstract class Database : IAsyncDisposable
{
    static Database()
    {
        // Column names are snake_case; records use PascalCase.
        DefaultTypeMap.MatchNamesWithUnderscores = true;
    }

    /// <summary>The engine behind this instance.</summary>
    public abstract DatabaseEngine Engine { get; }

    /// <summary>Opens the database for the given options (creating the SQLite file if needed) and applies pending migrations.</summary>
    public static async Task<Database> OpenAsync(DatabaseOptions options, CancellationToken ct = default)
    {
        Database db = options.Engine switch
        {
            DatabaseEngine.Sqlite => new SqliteDatabase(options),
            DatabaseEngine.Postgres => new PostgresDatabase(options),
            _ => throw new ArgumentOutOfRangeException(nameof(options)),
        };
        try
        {
            await new Migrator(db).ApplyAsync(ct);
            return db;
        }
        catch
        {
            await db.DisposeAsync();
            throw;
        }
    }

    /// <summary>Counters for the metrics endpoint: how busy the connections and the writer are.</summary>
    public DatabaseStats Stats { get; } = new();

    /// <summary>Runs read-only work on a pooled connection.</summary>
    public async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> work, CancellationToken ct = default)
    {
        Interlocked.Increment(ref Stats.ReadsInProgress);
        try
        {
            await using var conn = await OpenConnectionAsync(ct);
            return await work(conn);
        }
        finally
        {
            Interlocked.Decrement(ref Stats.ReadsInProgress);
            Interlocked.Increment(ref Stats.Reads);
        }
    }

    /// <summary>Runs work in a transaction and commits it; on an exception it rolls back.</summary>
    public abstract Task<T> WriteAsync<T>(Func<DbTransaction, Task<T>> work, CancellationToken ct = default);

    /// <summary>Runs work in a transaction and commits it.</summary>
    public Task WriteAsync(Func<DbTransaction, Task> work, CancellationToken ct = default) =>
        WriteAsync<bool>(async tx =>
        {
            await work(tx);
            return true;
        }, ct);

    /// <summary>
    /// SQL testing <paramref name="column"/> against a list parameter bound with <see cref="List{T}"/>: an array on
    /// PostgreSQL (<c>= ANY(@list)</c>), a JSON array on SQLite read back with <c>json_each</c>. Either way one SQL text
    /// serves lists of any length, so statements stay cached and no list hits SQLite's parameter limit.
    /// </summary>
    public string In(string column, string parameter) =>
        Engine == DatabaseEngine.Postgres ? $"{column} = ANY(@{parameter})" : $"{column} IN (SELECT value FROM json_each(@{parameter}))";

    /// <summary>The negation of <see cref="In"/>.</summary>
    public string NotIn(string column, string parameter) =>
        Engine == DatabaseEngine.Postgres ? $"{column} <> ALL(@{parameter})" : $"{column} NOT IN (SELECT value FROM json_each(@{parameter}))";

    /// <summary>
    /// The value of a list parameter named in <see cref="In"/>, <see cref="NotIn"/> or a PostgreSQL <c>unnest</c>.
    /// Typed <c>object</c> on purpose, as is every <c>byte[]</c> argument: Dapper.AOT (which generates the data access at
    /// build time) binds <c>object</c> members as plain values, but would expand arrays (blobs included) into one
    /// parameter per element through Dapper's reflection path.
    /// </summary>
    public object List<T>(IEnumerable<T> values) =>
        Engine == DatabaseEngine.Postgres ? values.ToArray() : JsonArrayText(values.Select(v => (object?)v));

    /// <summary>
    /// A JSON array of strings and integers (or of such arrays), as SQLite's <c>json_each</c> reads it. Written by hand
    /// rather than by <c>JsonSerializer</c>, whose reflection-based path does not exist in the native (AOT) build.
    /// </summary>
    internal static string JsonArrayText(IEnumerable<object?> values)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            WriteArray(writer, values);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);

        static void WriteArray(System.Text.Json.Utf8JsonWriter writer, IEnumerable<object?> values)
        {
            writer.WriteStartArray();
            foreach (var value in values)
            {
                switch (value)
                {
                    case null: writer.WriteNullValue(); break;
                    case string s: writer.WriteStringValue(s); break;
                    case long l: writer.WriteNumberValue(l); break;
                    case int i: writer.WriteNumberValue(i); break;
                    case System.Collections.IEnumerable inner: WriteArray(writer, inner.Cast<object?>()); break;
                    default: throw new NotSupportedException("a SQL list holds strings, integers or lists of them, not " + value.GetType().Name);
                }
            }

            writer.WriteEndArray();
        }
    }

    /// <summary>Opens a connection configured for this engine.</summary>
    public abstract Task<DbConnection> OpenConnectionAsync(CancellationToken ct = default);

    /// <summary>
    /// After bulk deletion (purges, erasure), makes sure the deleted content is gone from disk as far as the engine
    /// allows, and returns freed space: see <see cref="SqliteDatabase"/> and <see cref="PostgresDatabase"/>.
    /// </summary>
    public abstract Task CompactAfterDeleteAsync(CancellationToken ct = default);

    /// <summary>
    /// Completes when the engine's own background upkeep (SQLite's WAL checkpoint) is not running: bulk background
    /// deletions wait on it between batches so that upkeep has the disk to itself and finishes quickly.
    /// </summary>
    public virtual Task UpkeepIdleAsync() => Task.CompletedTask;

    /// <summary>Serialises migrations across processes sharing the database, inside the given transaction.</summary>
    internal abstract Task LockForMigrationAsync(DbTransaction tx, CancellationToken ct);

    /// <summary>The folder of embedded migration scripts for this engine.</summary>
    internal abstract string MigrationFolder { get; }

    /// <inheritdoc />
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}

/// <summary>Database activity counters, updated with <see cref="Interlocked"/> by the engines and read by the metrics endpoint.</summary>
public sealed class DatabaseStats
{
    /// <summary>Read operations finished.</summary>
    public long Reads;

    /// <summary>Read operations holding a connection now.</summary>
    public long ReadsInProgress;

    /// <summary>Writes finished (committed or rolled back).</summary>
    public long Writes;

    /// <summary>Transactions committed or rolled back; with SQLite's group commit one transaction holds several writes.</summary>
    public long Transactions;

    /// <summary>Writes waiting for the writer now (SQLite has one writer; PostgreSQL writes do not queue here).</summary>
    public long WritesWaiting;

    /// <summary>Total <see cref="System.Diagnostics.Stopwatch"/> ticks writes spent waiting for the writer.</summary>
    public long WriteWaitTicks;

    /// <summary>Total <see cref="System.Diagnostics.Stopwatch"/> ticks spent inside write transactions.</summary>
    public long WriteTicks;
}
