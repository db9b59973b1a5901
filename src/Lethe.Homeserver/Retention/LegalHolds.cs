namespace Lethe.Homeserver.Retention;

/// <summary>
/// min_lifetime as a legal hold on the deletion paths that remove whole rooms or media. A room deletion (admin API,
/// forgotten-room collection), an erasure or an admin's media deletion deletes what no hold protects at once and leaves
/// the rest to one-off background jobs (<c>held:…</c> in the jobs table, due when the hold ends); <see cref="RunDueAsync"/>,
/// called by the purger's timer and by the admin API's "run now", finishes them. Retention purges, redaction GC,
/// self-destruction and the media expiry job ask the same policy themselves.
/// </summary>
public sealed class LegalHolds(HomeserverServices hs)
{
    /// <summary>Job name prefix of every put-off deletion.</summary>
    public const string JobPrefix = "held:";

    /// <summary>Job name prefix of a room deletion put off by min_lifetime; the room ID follows.</summary>
    public const string RoomJobPrefix = JobPrefix + "room_deletion:";

    /// <summary>Job name prefix of a media item's deletion put off by min_lifetime; the media ID follows.</summary>
    public const string MediaJobPrefix = JobPrefix + "media:";

    private const int BatchSize = 100;

    /// <summary>What a media deletion did: the IDs deleted, and the IDs min_lifetime kept with when each hold ends.</summary>
    public sealed record MediaDeletion(List<string> Deleted, Dictionary<string, long> Held);

    /// <summary>
    /// The items of <paramref name="mediaIds"/> that a message still under its room's effective min_lifetime names
    /// (measured from the message's origin_server_ts), each with when its last such hold ends.
    /// </summary>
    public async Task<Dictionary<string, long>> HeldMediaAsync(IReadOnlyList<string> mediaIds, CancellationToken ct)
    {
        var now = hs.NowMs;
        var held = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (mediaId, roomId, newestTs) in await hs.Retention.MessagesNamingAsync(mediaIds, ct))
        {
            var policy = await hs.RetentionPolicies.ForRoomAsync(roomId, ct);
            if (!policy.AllowsDeletion(newestTs, now))
            {
                var until = newestTs + policy.MinLifetime!.Value;
                held[mediaId] = Math.Max(held.GetValueOrDefault(mediaId), until);
            }
        }

        return held;
    }

    /// <summary>
    /// Deletes media, bytes included. Unless <paramref name="force"/>, items a held message names stay downloadable;
    /// with <paramref name="deferHeld"/> each gets a held-deletion job that deletes it when its hold ends (callers that
    /// run periodically anyway, like the media expiry job, pass false and find it again).
    /// </summary>
    public async Task<MediaDeletion> DeleteMediaAsync(IReadOnlyList<string> mediaIds, bool force, bool deferHeld, CancellationToken ct)
    {
        var held = force ? new Dictionary<string, long>(StringComparer.Ordinal) : await HeldMediaAsync(mediaIds, ct);
        var deleted = await hs.Media.DeleteManyAsync(held.Count == 0 ? mediaIds : mediaIds.Where(id => !held.ContainsKey(id)), ct);
        if (deferHeld)
        {
            foreach (var (mediaId, until) in held)
            {
                await hs.Jobs.ScheduleAsync(MediaJobPrefix + mediaId, until, ct);
            }
        }

        return new MediaDeletion(deleted, held);
    }

    /// <summary>Deletes everything a user uploaded (erasure, admin API), except what a held message names: that goes when the hold ends.</summary>
    public async Task<MediaDeletion> DeleteUploadsAsync(string userId, bool force, CancellationToken ct) =>
        await DeleteMediaAsync(await hs.Media.Store.IdsByUserAsync(userId, ct), force, deferHeld: true, ct);

    /// <summary>
    /// Finishes the put-off deletions whose hold has ended (each deletes what is free now and reschedules what is still
    /// held, say because a newer message names the item); returns how many ran.
    /// </summary>
    public async Task<int> RunDueAsync(CancellationToken ct)
    {
        var ran = 0;
        var mediaDeleted = false;
        while (true)
        {
            var due = await hs.Jobs.DueAsync(JobPrefix, hs.NowMs, BatchSize, ct);
            foreach (var job in due)
            {
                if (job.StartsWith(RoomJobPrefix, StringComparison.Ordinal))
                {
                    await hs.RoomPurge.PurgeAsync(job[RoomJobPrefix.Length..], force: false, ct);
                }
                else if (job.StartsWith(MediaJobPrefix, StringComparison.Ordinal))
                {
                    var mediaId = job[MediaJobPrefix.Length..];
                    var outcome = await DeleteMediaAsync([mediaId], force: false, deferHeld: true, ct);
                    mediaDeleted |= outcome.Deleted.Count > 0;
                    if (!outcome.Held.ContainsKey(mediaId))
                    {
                        await hs.Jobs.DeleteAsync(job, ct);
                    }
                }
                else
                {
                    await hs.Jobs.DeleteAsync(job, ct);
                }
            }

            ran += due.Count;

            // Every job ran either finished or was rescheduled past now, so this ends.
            if (due.Count < BatchSize)
            {
                break;
            }
        }

        if (mediaDeleted)
        {
            await hs.Database.CompactAfterDeleteAsync(ct);
        }

        return ran;
    }
}
