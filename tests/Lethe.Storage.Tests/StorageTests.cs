using Dapper;
using Lethe.Storage;
using Lethe.Tests.Shared;
using Microsoft.Data.Sqlite;

namespace Lethe.Storage.Tests;

/// <summary>The storage behaviour every engine must have. Each test runs once per engine (see the subclasses below).</summary>
public abstract class StorageTests : IAsyncLifetime
{
    private Database? _db;

    protected abstract DatabaseEngine Engine { get; }

    protected DatabaseOptions Options { get; private set; } = null!;

    protected Database Db => _db!;

    public async ValueTask InitializeAsync()
    {
        Options = TestDatabases.New(Engine);
        _db = await Database.OpenAsync(Options);
    }

    public async ValueTask DisposeAsync()
    {
        if (_db is not null)
        {
            await _db.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task MigrationsAreAppliedOnceAndRecorded()
    {
        var scripts = new Migrator(Db).Scripts();
        var expected = scripts[^1].Version;
        Assert.Equal(expected, await Migrator.CurrentVersionAsync(Db));

        // Numbers may have gaps (branches reserve theirs); each script is recorded under its own number, in order.
        Assert.Equal(scripts.Select(s => (long)s.Version), scripts.Select(s => (long)s.Version).Order());
        Assert.Equal(scripts.Select(s => (long)s.Version), await Db.ReadAsync(async c => (await c.QueryAsync<long>("SELECT version FROM schema_migrations ORDER BY version")).ToList()));

        // Opening again applies nothing new and keeps data.
        await new UserStore(Db).TryCreateAsync(NewUser("@keep:hs"));
        await using var again = await Database.OpenAsync(Options);
        Assert.Equal(expected, await Migrator.CurrentVersionAsync(again));
        Assert.NotNull(await new UserStore(again).GetAsync("@keep:hs"));
    }

    [Fact]
    public async Task MigrationSixKeepsTransactionIdsAndForwardExtremities()
    {
        // A database as the previous release left it: migrations 1-5 and some rows in the tables 6 rebuilds.
        var options = TestDatabases.New(Engine);
        await using (var old = Engine == DatabaseEngine.Sqlite ? (Database)new SqliteDatabase(options) : new PostgresDatabase(options))
        {
            await old.WriteAsync(async tx =>
            {
                var c = tx.Connection!;
                await c.ExecuteAsync("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ts BIGINT NOT NULL)", transaction: tx);
                foreach (var script in new Migrator(old).Scripts().Where(s => s.Version < 6))
                {
                    await c.ExecuteAsync(script.Sql, transaction: tx);
                    await c.ExecuteAsync("INSERT INTO schema_migrations (version, name, applied_ts) VALUES (@Version, @Name, 0)", new { script.Version, script.Name }, tx);
                }

                await c.ExecuteAsync("INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts) VALUES ('!r:hs', '11', '@u:hs', FALSE, 0)", transaction: tx);
                await c.ExecuteAsync("INSERT INTO room_forward_extremities (room_id, event_id) VALUES ('!r:hs', '$tip')", transaction: tx);
                await c.ExecuteAsync("INSERT INTO event_txns (user_id, device_id, scope, txn_id, event_id, created_ts) VALUES ('@u:hs', 'D', 'send:!r:hs', 't1', '$sent', 5)", transaction: tx);
            });
        }

        await using var db = await Database.OpenAsync(options);
        Assert.Equal(new Migrator(db).Scripts()[^1].Version, await Migrator.CurrentVersionAsync(db));
        Assert.Equal(["$tip"], await new EventStore(db).ForwardExtremitiesAsync("!r:hs"));
        Assert.Equal("$sent", await new RoomStore(db).GetTxnAsync("@u:hs", "D", "send:!r:hs", "t1"));
        Assert.Equal("$sent", await db.WriteAsync(tx => RoomStore.GetTxnAsync(tx, "@u:hs", "D", "send:!r:hs", "t1")));
    }

    [Fact]
    public async Task ADatabaseFromANewerLetheIsRefused()
    {
        await Db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "INSERT INTO schema_migrations (version, name, applied_ts) VALUES (9999, 'future', 0)", transaction: tx));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => Database.OpenAsync(Options));
        Assert.Contains("newer than this Lethe build", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UsersAreCreatedOnceAndReadBack()
    {
        var users = new UserStore(Db);
        Assert.True(await users.TryCreateAsync(NewUser("@alice:hs", admin: true)));
        Assert.False(await users.TryCreateAsync(NewUser("@alice:hs")));
        var alice = await users.GetAsync("@alice:hs");
        Assert.NotNull(alice);
        Assert.True(alice.IsAdmin);
        Assert.False(alice.Deactivated);
        Assert.Equal("$argon2id$x", alice.PasswordHash);
        Assert.Null(await users.GetAsync("@bob:hs"));
        Assert.Equal(1, await users.CountAsync());

        await users.SetAdminAsync("@alice:hs", false);
        await users.SetPasswordHashAsync("@alice:hs", null);
        alice = await users.GetAsync("@alice:hs");
        Assert.False(alice!.IsAdmin);
        Assert.Null(alice.PasswordHash);
    }

    [Fact]
    public async Task StreamPositionsIncreaseWithoutGapsPerStream()
    {
        Assert.Equal(0, await StreamPositions.CurrentAsync(Db, "events"));
        var first = await Db.WriteAsync(tx => StreamPositions.NextAsync(tx, "events"));
        var second = await Db.WriteAsync(tx => StreamPositions.NextAsync(tx, "events"));
        var batch = await Db.WriteAsync(tx => StreamPositions.NextAsync(tx, "events", 5));
        var other = await Db.WriteAsync(tx => StreamPositions.NextAsync(tx, "receipts"));
        Assert.Equal([1L, 2L, 3L, 1L], [first, second, batch, other]);
        Assert.Equal(7, await StreamPositions.CurrentAsync(Db, "events"));
    }

    [Fact]
    public async Task RolledBackAllocationsAreReused()
    {
        await Db.WriteAsync(tx => StreamPositions.NextAsync(tx, "events"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => Db.WriteAsync<long>(async tx =>
        {
            await StreamPositions.NextAsync(tx, "events");
            throw new InvalidOperationException("abort");
        }));
        Assert.Equal(2, await Db.WriteAsync(tx => StreamPositions.NextAsync(tx, "events")));
    }

    [Fact]
    public async Task ConcurrentWritersGetDistinctPositionsCommittedInOrder()
    {
        // Each writer records its position in a table; when it commits, every smaller position must already be there.
        await Db.WriteAsync(tx => tx.Connection!.ExecuteAsync("CREATE TABLE probe (pos BIGINT PRIMARY KEY, seen_below BIGINT NOT NULL)", transaction: tx));
        var tasks = Enumerable.Range(0, 40).Select(_ => Task.Run(() => Db.WriteAsync(async tx =>
        {
            var pos = await StreamPositions.NextAsync(tx, "events");
            var below = await tx.Connection!.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM probe WHERE pos < @pos", new { pos }, tx);
            await tx.Connection!.ExecuteAsync("INSERT INTO probe (pos, seen_below) VALUES (@pos, @below)", new { pos, below }, tx);
            return pos;
        }))).ToArray();
        var positions = await Task.WhenAll(tasks);
        Assert.Equal(Enumerable.Range(1, 40).Select(i => (long)i), positions.Order());
        var rows = await Db.ReadAsync(c => c.QueryAsync<(long Pos, long SeenBelow)>("SELECT pos, seen_below FROM probe"));
        Assert.All(rows, r => Assert.Equal(r.Pos - 1, r.SeenBelow));
    }

    [Fact]
    public async Task AFailingWriteRollsBackAloneWhileTheWritesQueuedWithItCommit()
    {
        await Db.WriteAsync(tx => tx.Connection!.ExecuteAsync("CREATE TABLE probe (n INT PRIMARY KEY)", transaction: tx));
        static Task Insert(System.Data.Common.DbTransaction tx, int n) =>
            tx.Connection!.ExecuteAsync("INSERT INTO probe (n) VALUES (@n)", new { n }, tx);

        // The first write holds the writer until the others are queued behind it, so on SQLite they run as one
        // group commit; on PostgreSQL they run side by side. Either way each write's outcome must be its own.
        var gate = new TaskCompletionSource();
        var first = Db.WriteAsync(async tx =>
        {
            await gate.Task;
            await Insert(tx, -1);
            return -1;
        });
        var others = Enumerable.Range(0, 30).Select(i => Task.Run(async () =>
        {
            try
            {
                await Db.WriteAsync(async tx =>
                {
                    await Insert(tx, i);
                    return i % 3 == 0 ? throw new InvalidOperationException("fail " + i) : i;
                });
            }
            catch (InvalidOperationException e) when (e.Message == "fail " + i)
            {
                return (N: i, Committed: false, Visible: 0L);
            }

            // Reported done means committed: another connection sees the row straight away.
            var visible = await Db.ReadAsync(c => c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM probe WHERE n = @i", new { i }));
            return (N: i, Committed: true, Visible: visible);
        })).ToArray();
        if (Engine == DatabaseEngine.Sqlite)
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (Volatile.Read(ref Db.Stats.WritesWaiting) < 30)
            {
                Assert.True(DateTime.UtcNow < deadline, "the writes never queued behind the first");
                await Task.Delay(5);
            }
        }

        gate.SetResult();
        Assert.Equal(-1, await first);
        var outcomes = await Task.WhenAll(others);
        Assert.All(outcomes, o => Assert.Equal(o.N % 3 != 0, o.Committed));
        Assert.All(outcomes.Where(o => o.Committed), o => Assert.Equal(1, o.Visible));
        var rows = await Db.ReadAsync(c => c.QueryAsync<int>("SELECT n FROM probe ORDER BY n"));
        Assert.Equal(new[] { -1 }.Concat(Enumerable.Range(0, 30).Where(i => i % 3 != 0)), rows);
    }

    protected static UserRecord NewUser(string id, bool admin = false) =>
        new() { UserId = id, PasswordHash = "$argon2id$x", IsAdmin = admin, CreatedTs = 1700000000000 };
}

public sealed class SqliteStorageTests : StorageTests
{
    protected override DatabaseEngine Engine => DatabaseEngine.Sqlite;

    [Fact]
    public async Task SqliteRunsInWalModeWithSecureDeleteAndForeignKeys()
    {
        await using var conn = (SqliteConnection)await Db.OpenConnectionAsync();
        Assert.Equal("wal", await conn.ExecuteScalarAsync<string>("PRAGMA journal_mode"));
        Assert.Equal(1, await conn.ExecuteScalarAsync<long>("PRAGMA secure_delete"));
        Assert.Equal(1, await conn.ExecuteScalarAsync<long>("PRAGMA foreign_keys"));
    }

    [Fact]
    public async Task DeletedRowsGiveTheirPagesBackAtCommitEvenInADatabaseMadeWithIncrementalVacuum()
    {
        // A database as releases before FULL auto-vacuum made it, with a megabyte deleted and not yet vacuumed.
        var options = TestDatabases.New(DatabaseEngine.Sqlite);
        await using (var conn = new SqliteConnection($"Data Source={options.SqlitePath};Pooling=False"))
        {
            await conn.OpenAsync(TestContext.Current.CancellationToken);
            await conn.ExecuteAsync(
                """
                PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL;
                CREATE TABLE bulk (id INTEGER PRIMARY KEY, body BLOB);
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 256) INSERT INTO bulk (body) SELECT randomblob(4000) FROM n;
                DELETE FROM bulk;
                """);
            Assert.True(await conn.ExecuteScalarAsync<long>("PRAGMA freelist_count") > 200);
        }

        // Opening it switches it to FULL, which returns those pages; from then on a commit returns what it frees.
        await using var db = await Database.OpenAsync(options);
        async Task<(long Mode, long Free, long Pages)> PagesAsync() => await db.ReadAsync(async c =>
            (await c.ExecuteScalarAsync<long>("PRAGMA auto_vacuum"), await c.ExecuteScalarAsync<long>("PRAGMA freelist_count"), await c.ExecuteScalarAsync<long>("PRAGMA page_count")));
        var opened = await PagesAsync();
        Assert.Equal((1L, 0L), (opened.Mode, opened.Free));

        await db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 256) INSERT INTO bulk (body) SELECT randomblob(4000) FROM n", transaction: tx));
        var grown = await PagesAsync();
        Assert.True(grown.Pages >= opened.Pages + 256, $"{grown.Pages} pages after writing 256 of them to {opened.Pages}");
        await db.WriteAsync(tx => tx.Connection!.ExecuteAsync("DELETE FROM bulk", transaction: tx));
        var shrunk = await PagesAsync();
        Assert.Equal(0, shrunk.Free);
        Assert.True(shrunk.Pages <= opened.Pages, $"{shrunk.Pages} pages after deleting, {opened.Pages} before writing");
    }

    [Fact]
    public async Task DeletedRowsDoNotLingerInTheFile()
    {
        const string marker = "lethe-secret-marker-5f2c";
        await Db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES (@marker)", new { marker }, tx));
        await Db.WriteAsync(tx => tx.Connection!.ExecuteAsync("DELETE FROM notes", transaction: tx));
        await Db.DisposeAsync();
        SqliteConnection.ClearAllPools();
        foreach (var file in Directory.GetFiles(Path.GetDirectoryName(Options.SqlitePath)!))
        {
            var bytes = await File.ReadAllBytesAsync(file, TestContext.Current.CancellationToken);
            Assert.DoesNotContain(marker, System.Text.Encoding.UTF8.GetString(bytes), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task DeletedRowsLeaveTheWalOnceAReaderThatHeldItBackIsDone()
    {
        const string marker = "lethe-wal-marker-9a1e";
        await Db.WriteAsync(tx => tx.Connection!.ExecuteAsync("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", transaction: tx));
        await Db.WriteAsync(tx => tx.Connection!.ExecuteAsync("INSERT INTO notes (body) VALUES (@marker)", new { marker }, tx));
        var wal = Options.SqlitePath + "-wal";

        // A reader in the middle of a transaction keeps the WAL's frames alive, so compaction cannot reset it now.
        await using (var reader = new SqliteConnection($"Data Source={Options.SqlitePath}"))
        {
            await reader.OpenAsync(TestContext.Current.CancellationToken);
            await using var tx = reader.BeginTransaction(deferred: true);
            Assert.Equal(1, await reader.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM notes", transaction: tx));
            await Db.WriteAsync(t => t.Connection!.ExecuteAsync("DELETE FROM notes", transaction: t));
            await Db.CompactAfterDeleteAsync(TestContext.Current.CancellationToken);
            Assert.Contains(marker, await ReadSharedAsync(wal), StringComparison.Ordinal);
        }

        // The reader is gone: the compaction's background retry resets the WAL without another deletion.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while ((await ReadSharedAsync(wal)).Contains(marker, StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "the deleted row stayed in the WAL after the reader finished");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    private static async Task<string> ReadSharedAsync(string path)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var text = new StreamReader(stream, System.Text.Encoding.Latin1);
        return await text.ReadToEndAsync();
    }
}

public sealed class PostgresStorageTests : StorageTests
{
    protected override DatabaseEngine Engine => DatabaseEngine.Postgres;
}
