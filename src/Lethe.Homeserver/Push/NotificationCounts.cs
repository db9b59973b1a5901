using System.Text.Json.Nodes;

namespace Lethe.Homeserver.Push;

/// <summary>Notification and highlight counts of one room or thread.</summary>
public record struct UnreadCount(int Notifications, int Highlights)
{
    /// <summary>As /sync shows it.</summary>
    public readonly JsonObject ToJson() => new() { ["notification_count"] = Notifications, ["highlight_count"] = Highlights };
}

/// <summary>A room's counts: the main timeline (everything, when threads are not counted apart) and each thread.</summary>
public sealed record RoomUnreadCounts(UnreadCount Main, Dictionary<string, UnreadCount> Threads);

/// <summary>
/// Unread counts from the push outcomes stored with each event: events after the user's read receipts whose rules
/// said notify (and highlight). An unthreaded receipt covers everything, a "main" receipt the main timeline, a
/// thread's receipt that thread. Redacted and expired events are left out by the query, purged ones are gone.
/// </summary>
public sealed class NotificationCounts(HomeserverServices hs)
{
    /// <summary>
    /// Most events counted per room; beyond that clients show "99+" anyway. Counting reads one row per unread event on
    /// every sync of the room, so the cap bounds that cost: 10,000 made a wake-up in a room with 10,000 unread
    /// messages take 32 ms, 1,000 keeps it near 4 ms (docs/benchmarks.md, scaling run).
    /// </summary>
    public const int MaxCounted = 1_000;

    /// <summary>
    /// Counts a room for a user. <paramref name="joinedAt"/> gives the stream position to count from when the user has
    /// no unthreaded receipt (their join). With <paramref name="separateThreads"/>, thread events count per thread.
    /// </summary>
    public async Task<RoomUnreadCounts> CountAsync(string userId, string roomId, IReadOnlySet<string> ignored, bool separateThreads, Func<Task<long>> joinedAt, CancellationToken ct)
    {
        var read = await hs.Receipts.ReadPositionsAsync(userId, roomId, ct);
        var unthreaded = read.TryGetValue("", out var u) ? u : await joinedAt();
        var main = Math.Max(unthreaded, read.GetValueOrDefault("main"));
        var expiredBefore = (await hs.RetentionPolicies.ForRoomAsync(roomId, ct)).ExpiryCutoff(hs.NowMs) ?? long.MinValue;
        var rows = await hs.Push.Store.CandidatesAsync(roomId, unthreaded, userId, ignored.ToList(), expiredBefore, MaxCounted, ct);
        var mainCount = default(UnreadCount);
        var threads = new Dictionary<string, UnreadCount>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
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
            else if (row.StreamOrdering > Math.Max(unthreaded, read.GetValueOrDefault(thread)))
            {
                if (separateThreads)
                {
                    var t = threads.GetValueOrDefault(thread);
                    threads[thread] = new UnreadCount(t.Notifications + 1, t.Highlights + highlight);
                }
                else
                {
                    mainCount = new UnreadCount(mainCount.Notifications + 1, mainCount.Highlights + highlight);
                }
            }
        }

        return new RoomUnreadCounts(mainCount, threads);
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

            var counts = await CountAsync(userId, roomId, ignored, separateThreads: true, () => JoinedAtAsync(userId, roomId, ct), ct);
            total += counts.Main.Notifications;
            foreach (var t in counts.Threads.Values)
            {
                total += t.Notifications;
            }
        }

        return total;
    }

    /// <summary>The stream position of the user's latest membership event in the room.</summary>
    public async Task<long> JoinedAtAsync(string userId, string roomId, CancellationToken ct)
    {
        var history = await hs.EventStore.MembershipHistoryAsync(roomId, userId, ct);
        return history.Count == 0 ? 0 : history[^1].StreamOrdering;
    }
}
