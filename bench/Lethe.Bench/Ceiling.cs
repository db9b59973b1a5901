using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Lethe.Bench;

/// <summary>
/// The ceiling: bare Kestrel on loopback plus SQLite (WAL, synchronous=NORMAL, as Lethe opens it) doing only what every
/// send and every sync must. A send parses the JSON body, inserts one row and answers; a sync reads the rows after its
/// token, and a long-poll with nothing new waits until a commit wakes it. It answers on the Matrix paths the load
/// generator uses (register, createRoom, join, send, sync, receipt; tokens, membership and receipts are ignored), so the scenarios in
/// <see cref="Scenarios"/> drive it unchanged, in the same run as the server under test. It runs as a child process
/// (<c>ceiling-serve</c>), like the server under test runs in its own.
/// <para>
/// One insert per request (the default) is one transaction per send on one writer, as Lethe does; with
/// <c>--group-commit</c> the writer takes every send waiting for it into one transaction (labelled as such: Lethe does
/// not group commits).
/// </para>
/// </summary>
public static class Ceiling
{
    /// <summary>The <c>ceiling-serve</c> scenario: serves until standard input closes; prints the URL first.</summary>
    public static async Task<int> ServeAsync(bool groupCommit)
    {
        var dir = Directory.CreateTempSubdirectory("lethe-ceiling");
        try
        {
            await using var store = new Store(Path.Combine(dir.FullName, "ceiling.db"), groupCommit);
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            await using var app = builder.Build();
            Map(app, store);
            await app.StartAsync();
            Console.WriteLine(app.Urls.First());
            await Console.In.ReadToEndAsync();
            await app.StopAsync();
            return 0;
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static void Map(WebApplication app, Store store)
    {
        var rooms = 0L;
        app.MapPost("/_matrix/client/v3/register", async ctx =>
        {
            using var body = await JsonDocument.ParseAsync(ctx.Request.Body);
            var name = body.RootElement.TryGetProperty("username", out var u) ? u.GetString() : "user";
            await Json(ctx, w =>
            {
                w.WriteString("user_id", $"@{name}:ceiling");
                w.WriteString("access_token", Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)));
            });
        });
        app.MapPost("/_matrix/client/v3/createRoom", ctx =>
            Json(ctx, w => w.WriteString("room_id", $"!r{Interlocked.Increment(ref rooms)}:ceiling")));
        app.MapPost("/_matrix/client/v3/join/{room}", ctx =>
            Json(ctx, w => w.WriteString("room_id", (string)ctx.Request.RouteValues["room"]!)));
        // A read receipt: nothing a send or a sync must do (the scenarios send them untimed).
        app.MapPost("/_matrix/client/v3/rooms/{room}/receipt/{type}/{eventId}", ctx => Json(ctx, _ => { }));
        app.MapPut("/_matrix/client/v3/rooms/{room}/send/{type}/{txn}", async ctx =>
        {
            using var buffer = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(buffer);
            var body = buffer.ToArray();
            try
            {
                using var parsed = JsonDocument.Parse(body);
                if (parsed.RootElement.ValueKind != JsonValueKind.Object)
                {
                    throw new JsonException();
                }
            }
            catch (JsonException)
            {
                ctx.Response.StatusCode = 400;
                await Json(ctx, w => w.WriteString("errcode", "M_NOT_JSON"));
                return;
            }

            var id = await store.InsertAsync((string)ctx.Request.RouteValues["room"]!, body);
            await Json(ctx, w => w.WriteString("event_id", "$" + id.ToString(CultureInfo.InvariantCulture)));
        });
        app.MapGet("/_matrix/client/v3/sync", async ctx =>
        {
            var query = ctx.Request.Query;
            if (!long.TryParse(query["since"], CultureInfo.InvariantCulture, out var since))
            {
                // An initial sync: only the token (the scenarios send nothing before it they need to see).
                var head = store.Head;
                await Json(ctx, w => w.WriteString("next_batch", head.ToString(CultureInfo.InvariantCulture)));
                return;
            }

            var timeout = int.TryParse(query["timeout"], CultureInfo.InvariantCulture, out var t) ? t : 0;
            if (timeout > 0)
            {
                await store.WaitForCommitAfterAsync(since, TimeSpan.FromMilliseconds(timeout), ctx.RequestAborted);
            }

            var rows = store.ReadAfter(since);
            await Json(ctx, w =>
            {
                w.WriteString("next_batch", (rows.Count > 0 ? rows[^1].Id : since).ToString(CultureInfo.InvariantCulture));
                w.WriteStartObject("rooms");
                w.WriteStartObject("join");
                foreach (var room in rows.GroupBy(r => r.Room))
                {
                    w.WriteStartObject(room.Key);
                    w.WriteStartObject("timeline");
                    w.WriteStartArray("events");
                    foreach (var row in room)
                    {
                        w.WriteStartObject();
                        w.WriteString("type", "m.room.message");
                        w.WriteString("event_id", "$" + row.Id.ToString(CultureInfo.InvariantCulture));
                        w.WritePropertyName("content");
                        w.WriteRawValue(row.Body, skipInputValidation: true);
                        w.WriteEndObject();
                    }

                    w.WriteEndArray();
                    w.WriteEndObject();
                    w.WriteEndObject();
                }

                w.WriteEndObject();
                w.WriteEndObject();
            });
        });
    }

    private static async Task Json(HttpContext ctx, Action<Utf8JsonWriter> write)
    {
        ctx.Response.ContentType = "application/json";
        await using (var w = new Utf8JsonWriter(ctx.Response.BodyWriter))
        {
            w.WriteStartObject();
            write(w);
            w.WriteEndObject();
        }

        await ctx.Response.BodyWriter.FlushAsync();
    }

    /// <summary>The ceiling's database: one writer connection with a prepared insert; reads on pooled connections.</summary>
    private sealed class Store : IAsyncDisposable
    {
        private const int MaxBatch = 256;

        private readonly string _readConnectionString;
        private readonly SqliteConnection _writer;
        private readonly SqliteCommand _insert;
        private readonly SemaphoreSlim _gate = new(1, 1);
        private readonly Channel<Pending>? _queue;
        private readonly Task _groupCommitter = Task.CompletedTask;
        private long _head;
        private TaskCompletionSource _commit = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Store(string path, bool groupCommit)
        {
            _readConnectionString = $"Data Source={path};Mode=ReadOnly";
            _writer = new SqliteConnection($"Data Source={path}");
            _writer.Open();
            using (var setup = _writer.CreateCommand())
            {
                setup.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE events (id INTEGER PRIMARY KEY, room TEXT NOT NULL, body BLOB NOT NULL)";
                setup.ExecuteNonQuery();
            }

            _insert = _writer.CreateCommand();
            _insert.CommandText = "INSERT INTO events (room, body) VALUES ($r, $b) RETURNING id";
            _insert.Parameters.Add("$r", SqliteType.Text);
            _insert.Parameters.Add("$b", SqliteType.Blob);
            _insert.Prepare();
            if (groupCommit)
            {
                _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
                _groupCommitter = Task.Run(GroupCommitAsync);
            }
        }

        public long Head => Volatile.Read(ref _head);

        public async Task<long> InsertAsync(string room, byte[] body)
        {
            if (_queue is not null)
            {
                var pending = new Pending(room, body);
                await _queue.Writer.WriteAsync(pending);
                return await pending.Done.Task;
            }

            long id;
            await _gate.WaitAsync();
            try
            {
                id = Insert(room, body);
            }
            finally
            {
                _gate.Release();
            }

            Committed(id);
            return id;
        }

        /// <summary>Returns once a row after <paramref name="since"/> is committed, or the timeout passes.</summary>
        public async Task WaitForCommitAfterAsync(long since, TimeSpan timeout, CancellationToken ct)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(timeout);
            try
            {
                while (true)
                {
                    // Take the signal before reading the head: a commit in between completes the signal taken.
                    var signal = Volatile.Read(ref _commit);
                    if (Head > since)
                    {
                        return;
                    }

                    await signal.Task.WaitAsync(deadline.Token);
                }
            }
            catch (OperationCanceledException)
            {
                // Timed out (or the client went away): answer with what there is.
            }
        }

        public List<(long Id, string Room, byte[] Body)> ReadAfter(long since)
        {
            using var conn = new SqliteConnection(_readConnectionString);
            conn.Open();
            using var cmd = conn.CreateCommand();
            cmd.CommandText = "SELECT id, room, body FROM events WHERE id > $s ORDER BY id LIMIT 50";
            cmd.Parameters.AddWithValue("$s", since);
            using var reader = cmd.ExecuteReader();
            var rows = new List<(long, string, byte[])>();
            while (reader.Read())
            {
                rows.Add((reader.GetInt64(0), reader.GetString(1), (byte[])reader[2]));
            }

            return rows;
        }

        private long Insert(string room, byte[] body)
        {
            _insert.Parameters[0].Value = room;
            _insert.Parameters[1].Value = body;
            return (long)_insert.ExecuteScalar()!;
        }

        private void Committed(long id)
        {
            long seen;
            do
            {
                seen = Volatile.Read(ref _head);
            }
            while (id > seen && Interlocked.CompareExchange(ref _head, id, seen) != seen);

            Interlocked.Exchange(ref _commit, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).SetResult();
        }

        private async Task GroupCommitAsync()
        {
            var batch = new List<Pending>(MaxBatch);
            var ids = new List<long>(MaxBatch);
            while (await _queue!.Reader.WaitToReadAsync())
            {
                batch.Clear();
                ids.Clear();
                while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var pending))
                {
                    batch.Add(pending);
                }

                try
                {
                    using (var tx = _writer.BeginTransaction())
                    {
                        _insert.Transaction = tx;
                        foreach (var pending in batch)
                        {
                            ids.Add(Insert(pending.Room, pending.Body));
                        }

                        tx.Commit();
                    }

                    _insert.Transaction = null;
                    Committed(ids[^1]);
                    for (var i = 0; i < batch.Count; i++)
                    {
                        batch[i].Done.SetResult(ids[i]);
                    }
                }
                catch (SqliteException e)
                {
                    foreach (var pending in batch)
                    {
                        pending.Done.TrySetException(e);
                    }
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            _queue?.Writer.Complete();
            await _groupCommitter;
            _insert.Dispose();
            await _writer.DisposeAsync();
            SqliteConnection.ClearAllPools();
        }

        private sealed record Pending(string Room, byte[] Body)
        {
            public TaskCompletionSource<long> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>A ceiling running as a child process of the benchmark; disposing closes its standard input, which ends it.</summary>
    public sealed class Child : IAsyncDisposable
    {
        private readonly Process _process;

        private Child(Process process, Uri url)
        {
            _process = process;
            Url = url;
        }

        /// <summary>Its base URL.</summary>
        public Uri Url { get; }

        /// <summary>Its process ID (for RSS).</summary>
        public int Pid => _process.Id;

        /// <summary>Starts <c>Lethe.Bench ceiling-serve</c> (this same program) and waits for its URL.</summary>
        public static async Task<Child> StartAsync(bool groupCommit)
        {
            var self = Environment.ProcessPath!;
            var info = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true };
            if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            {
                info.ArgumentList.Add(typeof(Ceiling).Assembly.Location);
            }

            info.ArgumentList.Add("ceiling-serve");
            if (groupCommit)
            {
                info.ArgumentList.Add("--group-commit");
            }

            var process = Process.Start(info)!;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var line = await process.StandardOutput.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException("the ceiling exited before it listened");
            return new Child(process, new Uri(line));
        }

        /// <inheritdoc />
        public async ValueTask DisposeAsync()
        {
            _process.StandardInput.Close();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
            }

            _process.Dispose();
        }
    }
}
