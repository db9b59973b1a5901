using Dapper;
using Lethe.Homeserver.Sync;
using Lethe.Protocol.Events;
using Lethe.Storage;

namespace Lethe.Homeserver.Keys;

/// <summary>
/// Device list tracking: records that a user's devices or keys changed, wakes the syncs that must hear of it, and works
/// out for one user which others changed or stopped sharing an encrypted room between two sync positions.
/// </summary>
public sealed class DeviceLists(HomeserverServices hs)
{
    /// <summary>After a change committed at <paramref name="stream"/>: advances the stream and wakes the user and everyone sharing a room with them.</summary>
    public async Task PublishAsync(string userId, long stream, CancellationToken ct)
    {
        hs.Streams.Advance(StreamTracker.DeviceLists, stream);
        hs.Notifier.Notify(userId);
        foreach (var (roomId, membership) in await hs.Notifier.RoomsOfAsync(userId, ct))
        {
            if (membership != Membership.Join || await hs.Snapshots.GetAsync(roomId, ct) is not { } snap)
            {
                continue;
            }

            foreach (var (member, m) in snap.Memberships)
            {
                if (m is Membership.Join or Membership.Invite)
                {
                    hs.Notifier.Notify(member);
                }
            }
        }
    }

    /// <summary>Records a change for <paramref name="userId"/> in its own transaction and publishes it.</summary>
    public async Task ChangedAsync(string userId, CancellationToken ct)
    {
        var stream = await hs.Database.WriteAsync(tx => E2eKeyStore.RecordChangeAsync(tx, userId), ct);
        await PublishAsync(userId, stream, ct);
    }

    /// <summary>
    /// For <paramref name="userId"/>, between two positions: <c>changed</c> holds users sharing an encrypted room with
    /// them (and themselves) whose devices or keys changed, and users who began to share one; <c>left</c> holds users
    /// who no longer share any encrypted room with them.
    /// </summary>
    public async Task<(SortedSet<string> Changed, SortedSet<string> Left)> ChangesAsync(string userId, SyncToken since, SyncToken upTo, CancellationToken ct)
    {
        var changed = new SortedSet<string>(StringComparer.Ordinal);
        var left = new SortedSet<string>(StringComparer.Ordinal);
        var rooms = await hs.Notifier.RoomsOfAsync(userId, ct);

        // Everyone the user shares an encrypted room with now (joined or invited: clients encrypt for invitees too).
        // Worked out only when something needs it: going through every room's members on every sync made an
        // incremental sync of a user in 1,000 rooms spend 15 % of its time here with nothing to report.
        HashSet<string>? partnersOnce = null;
        async Task<HashSet<string>> PartnersAsync()
        {
            if (partnersOnce is null)
            {
                partnersOnce = new HashSet<string>(StringComparer.Ordinal) { userId };
                foreach (var (roomId, _) in rooms)
                {
                    if (await hs.Snapshots.GetAsync(roomId, ct) is { } snap && snap.StateEventId(EventTypes.Encryption) is not null
                        && snap.MembershipOf(userId) == Membership.Join)
                    {
                        foreach (var (member, m) in snap.Memberships)
                        {
                            if (m is Membership.Join or Membership.Invite)
                            {
                                partnersOnce.Add(member);
                            }
                        }
                    }
                }
            }

            return partnersOnce;
        }

        if (upTo.DeviceLists > since.DeviceLists)
        {
            foreach (var user in await hs.Keys.ChangedUsersAsync(since.DeviceLists, upTo.DeviceLists, ct))
            {
                if ((await PartnersAsync()).Contains(user))
                {
                    changed.Add(user);
                }
            }
        }

        if (upTo.Events > since.Events)
        {
            foreach (var (roomId, _) in rooms)
            {
                // Rooms with no event since the token first: that needs no snapshot.
                if (await hs.Notifier.RoomPositionAsync(roomId, ct) <= since.Events
                    || await hs.Snapshots.GetAsync(roomId, ct) is not { } snap || snap.StateEventId(EventTypes.Encryption) is null)
                {
                    continue;
                }

                var ids = await hs.Database.ReadAsync(async c => (await c.QueryAsync<string>(
                    "SELECT event_id FROM events WHERE room_id = @roomId AND stream_ordering > @after AND stream_ordering <= @upTo AND type IN ('m.room.member', 'm.room.encryption') ORDER BY stream_ordering",
                    new { roomId, after = since.Events, upTo = upTo.Events })).ToList(), ct);
                if (ids.Count == 0)
                {
                    continue;
                }

                var iAmIn = snap.MembershipOf(userId) == Membership.Join;
                var iLeft = snap.MembershipOf(userId) is Membership.Leave or Membership.Ban;
                foreach (var e in (await hs.Events.GetManyAsync(ids, ct)).Values)
                {
                    var target = e.Pdu.Type == EventTypes.Encryption ? userId : e.Pdu.StateKey;
                    if (target is null)
                    {
                        continue;
                    }

                    if (target == userId)
                    {
                        // The user joined (or the room became encrypted): everyone in it is new to them. The user left:
                        // those they no longer share any encrypted room with are gone.
                        foreach (var (member, m) in snap.Memberships)
                        {
                            if (iAmIn && m is Membership.Join or Membership.Invite)
                            {
                                changed.Add(member);
                            }
                            else if (iLeft && m is Membership.Join or Membership.Invite && !(await PartnersAsync()).Contains(member))
                            {
                                // Only a real departure: being invited to (or knocking on) a room shares nothing yet.
                                left.Add(member);
                            }
                        }
                    }
                    else if (iAmIn && (await PartnersAsync()).Contains(target))
                    {
                        changed.Add(target);
                    }
                    else if (iAmIn)
                    {
                        left.Add(target);
                    }
                }
            }
        }

        left.Remove(userId);
        left.ExceptWith(changed);
        return (changed, left);
    }
}
