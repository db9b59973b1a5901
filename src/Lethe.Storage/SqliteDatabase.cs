using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Lethe.Storage;

/// <summary>SQLite in WAL mode: many concurrent readers, one writer at a time (serialised in-process, so writers queue instead of failing with SQLITE_BUSY).</summary>
/// <remarks>
/// Writes go through one long-lived connection, so a write pays neither a pool checkout nor the per-connection
/// pragmas. That connection never checkpoints the WAL itself (a checkpoint inside a commit would stall the request that
/// happens to trigger it); a background checkpointer folds the WAL into the database instead.
/// </remarks>
public sealed class SqliteDatabase : Database
{
    /// <summary>Commits after which the background checkpointer runs; a few pages each, near SQLite's own 1000-page threshold.</summary>
    private const int CheckpointAfterCommits = 200;

    /// <summary>How many frames a checkpoint leaves for its pass with writes held back: 512 KiB, a few ms to copy and fsync.</summary>
    private const long LockedCheckpointFrames = 128;

    /// <summary>Passes alongside the writer before the one under the lock, however far the writer keeps ahead.</summary>
    private const int CatchUpPasses = 5;

    private static readonly object Configured = new();

    private readonly string _connectionString;

    /// <summary>Native connections whose pragmas are set; entries go when the pool closes the connection.</summary>
    private readonly ConditionalWeakTable<sqlite3, object> _configured = new();
    /// <summary>Most writes committed together; bounds a batch's transaction and the wait of its first write.</summary>
    private const int MaxBatch = 64;

    private readonly ConcurrentQueue<PendingWrite> _pending = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SemaphoreSlim _checkpointing = new(1, 1);
    private TaskCompletionSource _checkpointDone = Completed();
    private SqliteConnection? _writer;
    private int _commitsSinceCheckpoint;
    private int _truncateRetrying;
    private int _disposed;

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
        // Both persist in the file. auto_vacuum must precede the first table to take effect; a database made with
        // INCREMENTAL (before FULL was chosen) switches without a VACUUM, returning its free pages on the way.
        // FULL returns the pages a commit frees to the file system as part of that commit (secure_delete has zeroed
        // them), so nothing deleted waits in free pages for a vacuum. An incremental vacuum after a purge instead took
        // 17.6 s of a 29.8 s purge of 1,000,000 events: SQLite looks each free page up in its free list before
        // dropping it, a cost that grows with the list, whereas FULL moves the free list out of the way in one go.
        cmd.CommandText = "PRAGMA auto_vacuum=FULL; PRAGMA journal_mode=WAL;";
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
        // Pragmas belong to the native connection, which the pool keeps open and hands out again: set them the first
        // time only (running them on every open cost three statements per read).
        if (!_configured.TryGetValue(conn.Handle!, out _))
        {
            await using var cmd = conn.CreateCommand();
            // secure_delete overwrites freed pages with zeros, so purged messages do not linger in the file.
            cmd.CommandText = "PRAGMA secure_delete=ON; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;";
            await cmd.ExecuteNonQueryAsync(ct);
            _configured.AddOrUpdate(conn.Handle!, Configured);
        }

        return conn;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Group commit: a write that finds the writer free runs at once, in a transaction of its own. Writes that arrive
    /// while it is busy queue, and whoever holds the writer next runs all of them (up to <see cref="MaxBatch"/>) in one
    /// transaction, each inside a savepoint of its own, so a write that fails rolls back alone and the others still
    /// commit. Nobody's write is visible, nor reported done, before its commit. Under 32 concurrent sends one commit
    /// (and one set of WAL pages) serves several events instead of one each (3.4 on average at 32 connections, docs/benchmarks.md).
    /// </remarks>
    public override async Task<T> WriteAsync<T>(Func<DbTransaction, Task<T>> work, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
        ct.ThrowIfCancellationRequested();
        var write = new PendingWrite(async tx => await work(tx), ct);
        Interlocked.Increment(ref Stats.WritesWaiting);
        _pending.Enqueue(write);
        if (_writeLock.Wait(0, CancellationToken.None))
        {
            await RunPendingAsync();
        }
        else if (Volatile.Read(ref _disposed) == 1)
        {
            FailPending();
        }

        // Otherwise the writer's holder runs it when it lets go (ReleaseWriter).
        return (T)(await write.Done.Task)!;
    }

    /// <summary>Runs queued writes, a batch per transaction, until none is left; the caller holds the write lock, which this releases.</summary>
    private async Task RunPendingAsync()
    {
        try
        {
            var batch = new List<PendingWrite>();
            while (true)
            {
                batch.Clear();
                while (batch.Count < MaxBatch && _pending.TryDequeue(out var next))
                {
                    Interlocked.Decrement(ref Stats.WritesWaiting);
                    Interlocked.Add(ref Stats.WriteWaitTicks, Stopwatch.GetTimestamp() - next.Queued);
                    if (next.Cancel.IsCancellationRequested)
                    {
                        next.Done.TrySetCanceled(next.Cancel);
                    }
                    else
                    {
                        batch.Add(next);
                    }
                }

                if (batch.Count == 0)
                {
                    break;
                }

                await RunBatchAsync(batch);
            }
        }
        finally
        {
            ReleaseWriter();
        }
    }

    private async Task RunBatchAsync(List<PendingWrite> batch)
    {
        var started = Stopwatch.GetTimestamp();
        var results = new object?[batch.Count];
        var failed = new Exception?[batch.Count];
        try
        {
            _writer ??= await OpenWriterAsync(CancellationToken.None);
            await using var tx = await _writer.BeginTransactionAsync();
            if (batch.Count == 1)
            {
                results[0] = await batch[0].Work(tx);
            }
            else
            {
                for (var i = 0; i < batch.Count; i++)
                {
                    await WriteCommands.ExecuteAsync(tx, "SAVEPOINT lethe_write");
                    try
                    {
                        results[i] = await batch[i].Work(tx);
                    }
                    catch (Exception e)
                    {
                        failed[i] = e;
                        await WriteCommands.ExecuteAsync(tx, "ROLLBACK TO lethe_write");
                    }

                    await WriteCommands.ExecuteAsync(tx, "RELEASE lethe_write");
                }
            }

            await tx.CommitAsync();
        }
        catch (Exception e)
        {
            // The transaction itself failed (the commit, or a work of a batch of one): nothing of it was written.
            for (var i = 0; i < batch.Count; i++)
            {
                failed[i] ??= e;
            }
        }
        finally
        {
            Interlocked.Add(ref Stats.WriteTicks, Stopwatch.GetTimestamp() - started);
            Interlocked.Add(ref Stats.Writes, batch.Count);
            Interlocked.Increment(ref Stats.Transactions);
        }

        for (var i = 0; i < batch.Count; i++)
        {
            if (failed[i] is { } e)
            {
                batch[i].Done.TrySetException(e);
            }
            else
            {
                batch[i].Done.TrySetResult(results[i]);
            }
        }

        if (Interlocked.Add(ref _commitsSinceCheckpoint, batch.Count) >= CheckpointAfterCommits && _checkpointing.Wait(0, CancellationToken.None))
        {
            Volatile.Write(ref _checkpointDone, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            Interlocked.Exchange(ref _commitsSinceCheckpoint, 0);
            _ = Task.Run(CheckpointAsync, CancellationToken.None);
        }
    }

    /// <summary>
    /// Lets go of the writer; writes queued meanwhile are then run by whoever takes it next. A write queues before it
    /// tries the lock and every holder looks at the queue after letting go, so no write is left waiting unseen.
    /// </summary>
    private void ReleaseWriter()
    {
        _writeLock.Release();
        if (!_pending.IsEmpty && Volatile.Read(ref _disposed) == 0 && _writeLock.Wait(0, CancellationToken.None))
        {
            _ = Task.Run(RunPendingAsync, CancellationToken.None);
        }
    }

    private void FailPending()
    {
        while (_pending.TryDequeue(out var write))
        {
            Interlocked.Decrement(ref Stats.WritesWaiting);
            write.Done.TrySetException(new ObjectDisposedException(nameof(SqliteDatabase)));
        }
    }

    private async Task<SqliteConnection> OpenWriterAsync(CancellationToken ct)
    {
        var conn = (SqliteConnection)await OpenConnectionAsync(ct);
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = "PRAGMA wal_autocheckpoint=0;";
        await cmd.ExecuteNonQueryAsync(ct);
        return conn;
    }

    /// <summary>
    /// Copies committed WAL frames into the database file: first alongside the writer (a PASSIVE checkpoint), then
    /// the few frames committed meanwhile with writes held back for that short moment.
    /// </summary>
    /// <remarks>
    /// SQLite rewinds the WAL to its start only when a write begins after a checkpoint has copied every frame. Under a
    /// steady stream of sends a concurrent checkpoint never catches up, and the WAL grew without bound (490 MB after
    /// 10,000 sends in bench/, for a 12 MB database); every commit then appended to an ever larger file. The second,
    /// brief pass lets the checkpoint complete, so the WAL stays at a few hundred commits' worth of pages.
    /// </remarks>
    private async Task CheckpointAsync()
    {
        try
        {
            await using var conn = await OpenConnectionAsync();
            await using var cmd = conn.CreateCommand();
            await CatchUpAsync(cmd, CancellationToken.None);
            // Shutting down (DisposeAsync holds the write lock for good), or writes are stuck: the next round catches up.
            if (Volatile.Read(ref _disposed) == 1 || !await _writeLock.WaitAsync(TimeSpan.FromSeconds(1)))
            {
                return;
            }

            try
            {
                await cmd.ExecuteNonQueryAsync();
            }
            finally
            {
                ReleaseWriter();
            }
        }
        catch (SqliteException)
        {
            // Busy or shutting down: the next round, or the TRUNCATE at shutdown, catches up.
        }
        finally
        {
            Volatile.Read(ref _checkpointDone).TrySetResult();
            _checkpointing.Release();
        }
    }

    /// <summary>
    /// secure_delete has already overwritten the deleted rows in the pages they lived in, and FULL auto-vacuum has
    /// returned the pages that emptied to the file system at each commit; this truncates the WAL, whose older frames
    /// still hold the deleted content until the WAL is reset. The WAL is copied alongside writers first (PASSIVE) and
    /// only the remainder with writes held back (TRUNCATE, which also waits for readers, so it is retried a few times).
    /// </summary>
    public override async Task CompactAfterDeleteAsync(CancellationToken ct = default)
    {
        for (var attempt = 0; attempt < 20; attempt++)
        {
            if (await TryTruncateWalAsync(ct))
            {
                return;
            }

            await Task.Delay(50, ct);
        }

        // Readers kept the WAL alive for a second: its old frames still hold what was deleted, so keep trying in the
        // background instead of waiting for the next deletion to come along.
        if (Interlocked.CompareExchange(ref _truncateRetrying, 1, 0) == 0)
        {
            _ = Task.Run(RetryTruncateAsync, CancellationToken.None);
        }
    }

    /// <inheritdoc />
    public override Task UpkeepIdleAsync() => Volatile.Read(ref _checkpointDone).Task;

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource();
        done.SetResult();
        return done;
    }

    /// <summary>
    /// PASSIVE checkpoints alongside the writer until one finds at most <see cref="LockedCheckpointFrames"/> frames
    /// committed since the pass before (at most <see cref="CatchUpPasses"/> passes), and leaves the command set to PASSIVE.
    /// </summary>
    /// <remarks>
    /// What the pass under the write lock has to copy and fsync is what was committed while the last pass ran. During a
    /// retention purge one pass copied ~13,000 frames in 130–160 ms while the purge committed ~1,000 more, and copying
    /// those under the lock held every send back for 55–90 ms; each further pass copies only what arrived during the
    /// one before, so the remainder shrinks to a few commits' worth.
    /// </remarks>
    private static async Task CatchUpAsync(DbCommand cmd, CancellationToken ct)
    {
        cmd.CommandText = "PRAGMA wal_checkpoint(PASSIVE);";
        long previous = -1;
        for (var pass = 0; pass < CatchUpPasses; pass++)
        {
            long frames;
            await using (var reader = await cmd.ExecuteReaderAsync(ct))
            {
                // (busy, frames in the WAL, frames checkpointed); -1 when the database is not in WAL mode.
                frames = await reader.ReadAsync(ct) ? reader.GetInt64(1) : -1;
            }

            // A WAL that rewound meanwhile holds fewer frames than before: only new ones, so little to copy.
            if (previous >= 0 && frames - previous <= LockedCheckpointFrames)
            {
                return;
            }

            previous = frames;
        }
    }

    /// <summary>Copies the WAL into the database alongside writers, then resets it with writes held back; false when a reader kept it alive.</summary>
    private async Task<bool> TryTruncateWalAsync(CancellationToken ct)
    {
        await using var conn = await OpenConnectionAsync(ct);
        await using var cmd = conn.CreateCommand();
        await CatchUpAsync(cmd, ct);

        // Bounded, so a retry running into shutdown (which holds the writer for good) ends.
        if (!await _writeLock.WaitAsync(TimeSpan.FromSeconds(5), ct))
        {
            return false;
        }

        try
        {
            // TRUNCATE waits for readers through the busy handler, with writes held back: at the connection's 30 s
            // timeout one long read (an export, say) stalled every send for that long. Wait 100 ms at most and try
            // again later instead.
            cmd.CommandText = "PRAGMA busy_timeout=100;";
            await cmd.ExecuteNonQueryAsync(ct);
            try
            {
                // Returns (busy, log frames, checkpointed frames); busy = 1 means a reader kept the WAL alive.
                cmd.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
                await using var reader = await cmd.ExecuteReaderAsync(ct);
                return await reader.ReadAsync(ct) && reader.GetInt64(0) == 0;
            }
            finally
            {
                cmd.CommandText = "PRAGMA busy_timeout=30000;";
                await cmd.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }
        finally
        {
            ReleaseWriter();
        }
    }

    /// <summary>Retries the WAL reset every 200 ms for up to two minutes (shutdown resets it anyway).</summary>
    private async Task RetryTruncateAsync()
    {
        try
        {
            for (var attempt = 0; attempt < 600 && Volatile.Read(ref _disposed) == 0; attempt++)
            {
                await Task.Delay(200);
                if (Volatile.Read(ref _disposed) == 0 && await TryTruncateWalAsync(CancellationToken.None))
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is SqliteException or ObjectDisposedException)
        {
            // Shutting down: DisposeAsync resets the WAL itself.
        }
        finally
        {
            Volatile.Write(ref _truncateRetrying, 0);
        }
    }

    internal override Task LockForMigrationAsync(DbTransaction tx, CancellationToken ct) => Task.CompletedTask;

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        // No more writes or background checkpoints from here on; both semaphores stay taken, and writes still queued fail.
        await _writeLock.WaitAsync();
        await _checkpointing.WaitAsync();
        FailPending();
        if (_writer is not null)
        {
            await _writer.DisposeAsync();
            _writer = null;
        }

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
        await base.DisposeAsync();
    }
}

/// <summary>A write waiting for the SQLite writer: its work, and where its outcome goes once its transaction commits.</summary>
internal sealed class PendingWrite(Func<DbTransaction, Task<object?>> work, CancellationToken cancel)
{
    public Func<DbTransaction, Task<object?>> Work { get; } = work;

    public CancellationToken Cancel { get; } = cancel;

    public long Queued { get; } = Stopwatch.GetTimestamp();

    /// <summary>Completed off the writer's thread, so the writer goes on to the next write instead of running the caller's continuation.</summary>
    public TaskCompletionSource<object?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
