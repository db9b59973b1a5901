using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Text.Json.Nodes;
using Lethe.Storage;
using Microsoft.Extensions.Caching.Memory;

namespace Lethe.Homeserver.Push;

/// <summary>Notification and highlight counts of one room or thread.</summary>
public record struct UnreadCount(int Notifications, int Highlights)
{
    /// <summary>As /sync shows it.</summary>
    public readonly JsonObject ToJson() => new() { ["notification_count"] = Notifications, ["highlight_count"] = Highlights };
}

/// <summary>A room's counts: the main timeline (everything, when threads are not counted apart) and each thread.</summary>
public sealed record RoomUnreadCounts(UnreadCount Main, IReadOnlyDictionary<string, UnreadCount> Threads);

/// <summary>
/// Unread counts from the push outcomes stored with each event: events after the user's read receipts whose rules
/// said notify (and highlight). An unthreaded receipt covers everything, a "main" receipt the main timeline, a
/// thread's receipt that thread. Redacted and expired events are left out by the query, purged ones are gone.
/// </summary>
/// <remarks>
/// A count is kept per (user, room) with what it was computed from, so the next sync of the room reads only the push
/// outcomes stored since: the cost no longer grows with what the user has not read. It is read whole again when
/// what it was computed from changed (read receipts, the user's join, ignored users, an expiry cutoff that passes
/// an event it read or moves back) or when events it may have read left the count (<see cref="RecountRoom"/>: a
/// redaction, a purge, a room deletion). What it adds up is always what one whole read would give at that moment.
/// </remarks>
public sealed class NotificationCounts(HomeserverServices hs) : IDisposable
{
    /// <summary>
    /// Most events counted per room; beyond that clients show "99+" anyway. It bounds what one whole count reads
    /// (after a receipt, a redaction or a purge in the room): 10,000 made such a count in a room with 10,000 unread
    /// messages take ~30 ms, 1,000 keeps it near 4 ms (docs/benchmarks.md, scaling run). Other syncs read only the
    /// events since the last count.
    /// </summary>
    public const int MaxCounted = 1_000;

    /// <summary>Counts kept, in (user, room) pairs, a thread counting as one more; the least recently used go first.</summary>
    private const int MaxKept = 20_000;

    /// <summary>Rooms whose last recount time is remembered; past that, every kept count is dropped at once.</summary>
    private const int MaxRecountedRooms = 10_000;

    private static readonly IReadOnlyDictionary<string, UnreadCount> NoThreads = FrozenDictionary<string, UnreadCount>.Empty;

    private readonly MemoryCache _kept = new(new MemoryCacheOptions { SizeLimit = MaxKept });

    // A kept count is good only if it was computed after every recount of its room: each recount takes the next
    // epoch, a count remembers the epoch it was read whole in. Kept counts older than _floor are all stale.
    private readonly ConcurrentDictionary<string, long> _recountedAt = new(StringComparer.Ordinal);
    private readonly Lock _recounting = new();
    private long _epoch;
    private long _floor;

    /// <summary>
    /// Counts a room for a user. <paramref name="joinedAt"/> gives the stream position to count from when the user has
    /// no unthreaded receipt (their join). With <paramref name="separateThreads"/>, thread events count per thread.
    /// </summary>
    public async Task<RoomUnreadCounts> CountAsync(string userId, string roomId, IReadOnlySet<string> ignored, bool separateThreads, Func<Task<long>> joinedAt, CancellationToken ct)
    {
        // Taken before anything is read: a recount committed after this point makes what is read now stale.
        var epoch = Volatile.Read(ref _epoch);
        var read = await hs.Receipts.ReadPositionsAsync(userId, roomId, ct);
        var unthreaded = read.TryGetValue("", out var u) ? u : await joinedAt();
        var expiredBefore = (await hs.RetentionPolicies.ForRoomAsync(roomId, ct)).ExpiryCutoff(hs.NowMs) ?? long.MinValue;
        var key = (userId, roomId);
        Tally tally;
        if (_kept.TryGetValue(key, out Tally? kept) && kept is not null && Holds(kept, roomId, unthreaded, read, ignored, expiredBefore))
        {
            tally = kept;
            if (tally.Rows < MaxCounted)
            {
                var rows = await hs.Push.Store.CandidatesAsync(roomId, tally.Position, userId, ignored.ToList(), expiredBefore, MaxCounted - tally.Rows, ct);
                if (rows.Count > 0)
                {
                    tally = tally.Add(rows, userId, expiredBefore);
                    Keep(key, tally);
                }
            }
        }
        else
        {
            var rows = await hs.Push.Store.CandidatesAsync(roomId, unthreaded, userId, ignored.ToList(), expiredBefore, MaxCounted, ct);
            tally = new Tally(epoch, unthreaded, read, ignored, expiredBefore, unthreaded, 0, long.MaxValue, default, NoThreads).Add(rows, userId, expiredBefore);
            if (tally.Rows > 0)
            {
                Keep(key, tally);
            }
            else
            {
                // Nothing unread: reading it whole costs what reading on from a kept count would.
                _kept.Remove(key);
            }
        }

        return tally.Counts(separateThreads);
    }

    /// <summary>
    /// Makes the room's next counts read it whole. Call it after committing a change that takes counted events out
    /// of the count (a redaction, a purge, a room deletion) and before waking anyone who would count.
    /// </summary>
    public void RecountRoom(string roomId)
    {
        lock (_recounting)
        {
            var now = Interlocked.Increment(ref _epoch);
            if (_recountedAt.Count >= MaxRecountedRooms)
            {
                // The floor is set before the rooms are forgotten, so no stale count is taken for good in between.
                Volatile.Write(ref _floor, now);
                _recountedAt.Clear();
            }

            _recountedAt[roomId] = now;
        }
    }

    /// <summary>A user's unread notifications over all joined rooms (the badge a push gateway shows).</summary>
    public async Task<int> TotalAsync(string userId, CancellationToken ct)
    {
        var rooms = await hs.Notifier.RoomsOfAsync(userId, ct);
        var ignored = await hs.IgnoredUsersAsync(userId, ct);
        var total = 0;
        foreach (var (roomId, membership) in rooms)
        {
            if (membership != Lethe.Protocol.Events.Membership.Join)
            {
                continue;
            }

            var counts = await CountAsync(userId, roomId, ignored, separateThreads: false, () => JoinedAtAsync(userId, roomId, ct), ct);
            total += counts.Main.Notifications;
        }

        return total;
    }

    /// <summary>The stream position of the user's latest membership event in the room.</summary>
    public async Task<long> JoinedAtAsync(string userId, string roomId, CancellationToken ct)
    {
        var history = await hs.EventStore.MembershipHistoryAsync(roomId, userId, ct);
        return history.Count == 0 ? 0 : history[^1].StreamOrdering;
    }

    /// <inheritdoc />
    public void Dispose() => _kept.Dispose();

    private bool Holds(Tally t, string roomId, long unthreaded, Dictionary<string, long> read, IReadOnlySet<string> ignored, long expiredBefore)
    {
        if (_recountedAt.TryGetValue(roomId, out var recounted) && recounted > t.Epoch)
        {
            return false;
        }

        // Read after the room's entry: a recount that forgot the entry has raised the floor first.
        if (t.Epoch < Volatile.Read(ref _floor))
        {
            return false;
        }

        // A cutoff that moved back brings expired events in again; one that passed an event read takes it out.
        if (t.From != unthreaded || expiredBefore < t.ExpiredBefore || expiredBefore >= t.OldestTs)
        {
            return false;
        }

        if (!ReferenceEquals(t.Ignored, ignored) && !t.Ignored.SetEquals(ignored))
        {
            return false;
        }

        if (t.Read.Count != read.Count)
        {
            return false;
        }

        foreach (var (thread, position) in read)
        {
            if (!t.Read.TryGetValue(thread, out var was) || was != position)
            {
                return false;
            }
        }

        return true;
    }

    private void Keep((string, string) key, Tally tally) =>
        _kept.Set(key, tally, new MemoryCacheEntryOptions { Size = 1 + tally.Threads.Count });

    /// <summary>
    /// A count and what it was computed from: the receipts and the position counting started at, the ignored users,
    /// the expiry cutoff; how far it has read (<see cref="Position"/>, <see cref="Rows"/> outcomes up to the cap) and
    /// the send time of the oldest event read, which an expiry cutoff must not pass. Never changed once kept: syncs of
    /// several devices share it.
    /// </summary>
    private sealed record Tally(
        long Epoch,
        long From,
        Dictionary<string, long> Read,
        IReadOnlySet<string> Ignored,
        long ExpiredBefore,
        long Position,
        int Rows,
        long OldestTs,
        UnreadCount Main,
        IReadOnlyDictionary<string, UnreadCount> Threads)
    {
        /// <summary>This count with the outcomes read after <see cref="Position"/> added (oldest first).</summary>
        public Tally Add(List<PushActionRow> rows, string userId, long expiredBefore)
        {
            if (rows.Count == 0)
            {
                return this;
            }

            var main = Math.Max(From, Read.GetValueOrDefault("main"));
            var mainCount = Main;
            Dictionary<string, UnreadCount>? threads = null;
            var oldest = OldestTs;
            foreach (var row in rows)
            {
                oldest = Math.Min(oldest, row.OriginServerTs);
                var outcome = row.OutcomeFor(userId);
                if ((outcome & 1) == 0)
                {
                    continue;
                }

                var highlight = (outcome & 2) != 0 ? 1 : 0;
                if (row.ThreadId is not { } thread)
                {
                    if (row.StreamOrdering > main)
                    {
                        mainCount = new UnreadCount(mainCount.Notifications + 1, mainCount.Highlights + highlight);
                    }
                }
                else if (row.StreamOrdering > Math.Max(From, Read.GetValueOrDefault(thread)))
                {
                    threads ??= new Dictionary<string, UnreadCount>(Threads, StringComparer.Ordinal);
                    var t = threads.GetValueOrDefault(thread);
                    threads[thread] = new UnreadCount(t.Notifications + 1, t.Highlights + highlight);
                }
            }

            return this with
            {
                ExpiredBefore = expiredBefore,
                Position = rows[^1].StreamOrdering,
                Rows = Rows + rows.Count,
                OldestTs = oldest,
                Main = mainCount,
                Threads = threads ?? Threads,
            };
        }

        /// <summary>As the caller asked: threads apart, or everything in the main count.</summary>
        public RoomUnreadCounts Counts(bool separateThreads)
        {
            if (separateThreads || Threads.Count == 0)
            {
                return new RoomUnreadCounts(Main, Threads);
            }

            var all = Main;
            foreach (var t in Threads.Values)
            {
                all = new UnreadCount(all.Notifications + t.Notifications, all.Highlights + t.Highlights);
            }

            return new RoomUnreadCounts(all, NoThreads);
        }
    }
}
