using Lethe.Protocol.Events;
using Lethe.Protocol.Json;

namespace Lethe.Homeserver.Rooms;

/// <summary>
/// The one gate every event served to a client passes: history visibility and the reader's membership at the event
/// (client-server API "Room History Visibility"), rejected events, ignored users, and retention expiry (an expired
/// message is never served again, even before a purge job deletes it), and erasure (an erased user's events are
/// redacted for anyone who was not in the room when they were sent), so these hold for every endpoint at once.
/// </summary>
public sealed class EventVisibility(HomeserverServices hs)
{
    private static readonly StateKey HistoryVisibilityKey = new(EventTypes.HistoryVisibility, "");

    /// <summary>The events of one room that <paramref name="userId"/> may see, in the order given.</summary>
    public async Task<List<StoredEvent>> FilterAsync(string userId, string roomId, IReadOnlyList<StoredEvent> events, IReadOnlySet<string>? ignoredUsers, CancellationToken ct)
    {
        var result = new List<StoredEvent>(events.Count);
        if (events.Count == 0)
        {
            return result;
        }

        // The user's membership events in the room, oldest first: enough for the common case and for rule 3.
        var history = await hs.EventStore.MembershipHistoryAsync(roomId, userId, ct);
        var lastJoinStream = long.MinValue;
        foreach (var m in history)
        {
            if (MembershipOf(m.Json) == Membership.Join)
            {
                lastJoinStream = m.StreamOrdering;
            }
        }

        // Joined continuously since this stream position: everything after it is visible (rule 2) without state lookups.
        var joinedSince = history.Count > 0 && MembershipOf(history[^1].Json) == Membership.Join ? history[^1].StreamOrdering : long.MaxValue;

        // Retention: the room's one effective policy, measured from origin_server_ts, exactly as the purge jobs measure it.
        var expiryCutoff = (await hs.RetentionPolicies.ForRoomAsync(roomId, ct)).ExpiryCutoff(hs.NowMs);
        IReadOnlyList<string>? extremities = null;

        foreach (var original in events)
        {
            var e = original;
            if (e.Row.RejectedReason is not null)
            {
                continue;
            }

            if (expiryCutoff is { } cutoff && !e.Pdu.IsState && e.Pdu.OriginServerTs <= cutoff)
            {
                // The room's newest events stay (later events must cite them) but their content goes; others vanish.
                extremities ??= (await hs.Snapshots.GetAsync(roomId, ct))?.ForwardExtremities ?? [];
                if (!extremities.Contains(e.EventId))
                {
                    continue;
                }

                e = e.AsRedacted();
            }

            if (ignoredUsers is not null && !e.Pdu.IsState && ignoredUsers.Contains(e.Pdu.Sender))
            {
                continue;
            }

            if (e.StreamOrdering > joinedSince || await IsVisibleSlowAsync(userId, e, lastJoinStream, ct))
            {
                // Erasure: only those who were in the room when an erased user's event was sent still see its content.
                if (hs.Erasure.IsErased(e.Pdu.Sender) && e.StreamOrdering <= joinedSince
                    && await MembershipAtAsync(await hs.StateStore.GetGroupAsync(e.Row.StateGroup, ct), userId, ct) != Membership.Join)
                {
                    e = e.AsRedacted();
                }

                result.Add(e);
            }
        }

        return result;
    }

    /// <summary>True when the user may see this one event.</summary>
    public async Task<bool> IsVisibleAsync(string userId, StoredEvent e, CancellationToken ct) =>
        (await FilterAsync(userId, e.Row.RoomId, [e], null, ct)).Count == 1;

    /// <summary>The event as this user may see it (possibly redacted, when expired), or null when they may not.</summary>
    public async Task<StoredEvent?> ViewAsync(string userId, StoredEvent e, CancellationToken ct) =>
        (await FilterAsync(userId, e.Row.RoomId, [e], null, ct)) is [var view] ? view : null;

    private async Task<bool> IsVisibleSlowAsync(string userId, StoredEvent e, long lastJoinStream, CancellationToken ct)
    {
        var before = await hs.StateStore.GetGroupAsync(e.Row.StateGroup, ct);
        var visibility = await HistoryVisibilityAsync(before, ct);
        var membership = await MembershipAtAsync(before, userId, ct);
        if (Allows(visibility, membership, e.StreamOrdering, lastJoinStream))
        {
            return true;
        }

        // A history visibility change is visible if the setting before or after it allows; likewise the user's own membership events.
        if (e.Pdu.Type == EventTypes.HistoryVisibility && e.Pdu.StateKey == "")
        {
            return Allows(e.Pdu.Content.GetString("history_visibility") ?? "shared", membership, e.StreamOrdering, lastJoinStream);
        }

        if (e.Pdu.Type == EventTypes.Member && e.Pdu.StateKey == userId)
        {
            return Allows(visibility, e.Pdu.Membership, e.StreamOrdering, lastJoinStream);
        }

        return false;
    }

    private static bool Allows(string visibility, string? membership, long eventStream, long lastJoinStream) =>
        visibility == "world_readable"
        || membership == Membership.Join
        || (visibility == "shared" && lastJoinStream > eventStream)
        || (visibility == "invited" && membership == Membership.Invite);

    private async Task<string> HistoryVisibilityAsync(IReadOnlyDictionary<StateKey, string> state, CancellationToken ct)
    {
        if (!state.TryGetValue(HistoryVisibilityKey, out var id) || await hs.Events.GetAsync(id, ct) is not { } e)
        {
            return "shared";
        }

        var value = e.Pdu.Content.GetString("history_visibility");
        return value is "world_readable" or "shared" or "invited" or "joined" ? value : "shared";
    }

    private async Task<string?> MembershipAtAsync(IReadOnlyDictionary<StateKey, string> state, string userId, CancellationToken ct) =>
        state.TryGetValue(new StateKey(EventTypes.Member, userId), out var id) && await hs.Events.GetAsync(id, ct) is { } e ? e.Pdu.Membership : null;

    private static string? MembershipOf(byte[] json) =>
        CanonicalJson.ParseObject(json)["content"] is System.Text.Json.Nodes.JsonObject content ? content.GetString("membership") : null;
}
