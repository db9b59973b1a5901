using System.Data.Common;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Events;
using Lethe.Storage;

namespace Lethe.Homeserver.Privacy;

/// <summary>
/// Deletes a whole room from this server: its events (in batches, so other writes interleave), state, aliases,
/// receipts, room account data and every in-memory trace, then compacts the database so nothing remains on disk.
/// Used by forgotten-room collection and by the admin API's room deletion. Messages the room's min_lifetime still
/// holds stay (with the room) until the hold ends, when <see cref="Retention.LegalHolds"/> finishes the deletion,
/// unless the admin forces it.
/// </summary>
public sealed class RoomPurge(HomeserverServices hs)
{
    /// <summary>What a room deletion did: events deleted, and when messages were held back, when the next of them is free.</summary>
    public readonly record struct Outcome(long Deleted, long? HeldUntilTs)
    {
        /// <summary>True when the room is gone.</summary>
        public bool Complete => HeldUntilTs is null;
    }

    /// <summary>Makes every local member leave (invites and knocks are withdrawn too), as each user, then deletes the room.</summary>
    public async Task<Outcome> ShutDownAndPurgeAsync(string roomId, bool force, CancellationToken ct)
    {
        await ShutDownAsync(roomId, ct);
        return await PurgeAsync(roomId, force, ct);
    }

    /// <summary>Makes every local member leave (invites and knocks are withdrawn too), as each user; the room stays stored.</summary>
    public async Task ShutDownAsync(string roomId, CancellationToken ct)
    {
        var snap = await hs.Snapshots.GetAsync(roomId, ct) ?? throw MatrixException.NotFound("Room not found");
        var local = ":" + hs.ServerName;
        foreach (var (userId, membership) in snap.Memberships)
        {
            if (userId.EndsWith(local, StringComparison.Ordinal) && membership is Membership.Join or Membership.Invite or Membership.Knock)
            {
                try
                {
                    await hs.Memberships.ChangeAsync(new Requester(userId, "", "", IsAdmin: false, IsGuest: false), roomId, userId, Membership.Leave, null, null, ct);
                }
                catch (MatrixException e) when (e.Status is 403 or 404)
                {
                    // Cannot leave (already gone): the purge removes the membership anyway.
                }
            }
        }

        await hs.RoomStore.SetPublicAsync(roomId, false, ct);
    }

    /// <summary>
    /// Deletes a batch of a room's events and every row derived from them in one transaction, then the media only they
    /// named, and forgets them from the event cache; returns how many were deleted. Room deletion, admin history
    /// purges and retention purges share it; <paramref name="alongside"/> runs in the same transaction with the
    /// number deleted (a purge job records its progress there).
    /// </summary>
    public async Task<int> DeleteEventsAsync(string roomId, IReadOnlyList<string> batch, CancellationToken ct, Func<DbTransaction, int, Task>? alongside = null)
    {
        // A checkpoint copying the WAL needs the disk for a moment with writes held back (SQLite); with batches being
        // deleted alongside, that moment stretched to 55–90 ms and every send waited it out (docs/benchmarks.md).
        await hs.Database.UpkeepIdleAsync().WaitAsync(ct);
        var (deleted, orphans) = await hs.Database.WriteAsync(async tx =>
        {
            var orphaned = await hs.Media.Store.ReleaseReferencesAsync(tx, batch);
            var n = await hs.Retention.PurgeAsync(tx, roomId, batch);
            if (alongside is not null)
            {
                await alongside(tx, n);
            }

            return (n, orphaned);
        }, ct);

        // Media only these events named goes with them (a crash here is caught up by the media expiry job).
        await hs.Media.DeleteOrphansAsync(orphans, ct);
        hs.Push.Counts.RecountRoom(roomId);
        foreach (var id in batch)
        {
            hs.Events.Forget(id);
        }

        return deleted;
    }

    /// <summary>
    /// Deletes the room and everything about it. Unless <paramref name="force"/>, messages younger than the room's
    /// effective min_lifetime are kept, and with them the room: only older messages go now, and the deletion is put off
    /// until the next held message is free (the held-deletion job then calls this again).
    /// </summary>
    public async Task<Outcome> PurgeAsync(string roomId, bool force, CancellationToken ct)
    {
        var job = Retention.LegalHolds.RoomJobPrefix + roomId;
        long deleted = 0;
        var policy = await hs.RetentionPolicies.ForRoomAsync(roomId, ct);
        var upTo = hs.NowMs - policy.MinLifetime;
        if (!force && upTo is { } sentBy && await hs.Retention.OldestMessageAfterAsync(roomId, sentBy, ct) is { } oldestHeld)
        {
            // The hold covers messages; the room's state (and its newest events) go with the room once nothing is held.
            while (await hs.Retention.ExpiredBatchAsync(roomId, sentBy, hs.Config.Retention.PurgeBatchSize, ct) is { Count: > 0 } batch)
            {
                deleted += await DeleteEventsAsync(roomId, batch, ct);
            }

            var heldUntil = oldestHeld + policy.MinLifetime!.Value;
            await hs.Jobs.ScheduleAsync(job, heldUntil, ct);
            if (deleted > 0)
            {
                await hs.Database.CompactAfterDeleteAsync(ct);
            }

            return new Outcome(deleted, heldUntil);
        }

        while (true)
        {
            var batch = await hs.Privacy.RoomEventBatchAsync(roomId, hs.Config.Retention.PurgeBatchSize, ct);
            if (batch.Count == 0)
            {
                break;
            }

            deleted += await DeleteEventsAsync(roomId, batch, ct);
        }

        using (await hs.Pipeline.LockAsync(roomId, ct))
        {
            var stateEvents = await hs.StateStore.CurrentAsync(roomId, ct);
            var (n, orphans) = await hs.Database.WriteAsync(async tx =>
            {
                // The room's avatar, say, goes with the room when nothing else names it.
                var orphaned = await hs.Media.Store.ReleaseReferencesAsync(tx, stateEvents.Values.ToList());
                return (await PrivacyStore.DeleteRoomAsync(tx, roomId), orphaned);
            }, ct);
            deleted += n;
            await hs.Media.DeleteOrphansAsync(orphans, ct);
            foreach (var id in stateEvents.Values)
            {
                hs.Events.Forget(id);
            }

            hs.Push.Counts.RecountRoom(roomId);
            hs.Snapshots.Remove(roomId);
            hs.RoomDirectory.Remove(roomId);
            hs.Notifier.ForgetRoom(roomId);
        }

        await hs.Jobs.DeleteAsync(job, ct);
        await hs.Database.CompactAfterDeleteAsync(ct);
        return new Outcome(deleted, null);
    }
}
