using Lethe.Homeserver.Http;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;

namespace Lethe.Homeserver.Rooms;

/// <summary>Who may read a room's state: members see the current state, former members the state when they left, anyone a world-readable room's.</summary>
public sealed class RoomAccess(HomeserverServices hs)
{
    /// <summary>The snapshot of a room the user is joined to; 403 otherwise (also for unknown rooms, so existence does not leak).</summary>
    public async Task<RoomSnapshot> RequireJoinedAsync(string userId, string roomId, CancellationToken ct)
    {
        var snap = await hs.Snapshots.GetAsync(roomId, ct);
        return snap?.MembershipOf(userId) == Membership.Join ? snap : throw MatrixException.Forbidden("You are not in this room");
    }

    /// <summary>The room state the user may read; 403 when they may read none of it.</summary>
    public async Task<IReadOnlyDictionary<StateKey, string>> VisibleStateAsync(string userId, string roomId, CancellationToken ct)
    {
        var snap = await hs.Snapshots.GetAsync(roomId, ct) ?? throw MatrixException.Forbidden("You are not in this room");
        var membership = snap.MembershipOf(userId);
        if (membership == Membership.Join || await IsWorldReadableAsync(snap, ct))
        {
            return snap.State;
        }

        if (membership is Membership.Leave or Membership.Ban && snap.StateEventId(EventTypes.Member, userId) is { } leaveId
            && await hs.Events.GetAsync(leaveId, ct) is { } leave)
        {
            // A former member sees the state as it was when they left: their leave event on top of the state before it.
            var before = await hs.StateStore.GetGroupAsync(leave.Row.StateGroup, ct);
            var wasMember = before.TryGetValue(new StateKey(EventTypes.Member, userId), out var priorId)
                && await hs.Events.GetAsync(priorId, ct) is { Pdu.Membership: Membership.Join };
            if (wasMember)
            {
                return new Dictionary<StateKey, string>(before) { [leave.Pdu.StateMapKey] = leaveId };
            }
        }

        throw MatrixException.Forbidden("You are not in this room");
    }

    /// <summary>True when the room's current history visibility is world_readable.</summary>
    public async Task<bool> IsWorldReadableAsync(RoomSnapshot snap, CancellationToken ct) =>
        snap.StateEventId(EventTypes.HistoryVisibility) is { } id
        && await hs.Events.GetAsync(id, ct) is { } e
        && e.Pdu.Content.GetString("history_visibility") == "world_readable";

    /// <summary>The state events of a state map, loaded.</summary>
    public async Task<List<StoredEvent>> LoadAsync(IReadOnlyDictionary<StateKey, string> state, CancellationToken ct) =>
        (await hs.Events.GetManyAsync(state.Values, ct)).Values.OrderBy(e => e.StreamOrdering).ToList();

    /// <summary>Parses a user-supplied event type or state key path segment.</summary>
    public static string Segment(string value, string name) =>
        System.Text.Encoding.UTF8.GetByteCount(value) <= 255 ? value : throw MatrixException.Of(400, ErrCode.TooLarge, $"{name} is longer than 255 bytes");
}
