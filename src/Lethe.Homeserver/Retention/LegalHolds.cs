namespace Lethe.Homeserver.Retention;

/// <summary>
/// min_lifetime as a legal hold on the deletion paths that remove whole rooms or a user's uploads. A room deletion (admin
/// API, forgotten-room collection) or an erasure deletes what no hold protects at once and leaves the rest to a one-off
/// background job (<c>held:…</c> in the jobs table, due when the next hold ends); <see cref="RunDueAsync"/>, called by
/// the purger's timer and by the admin API's "run now", finishes them. Retention purges, redaction GC and
/// self-destruction ask the same policy themselves.
/// </summary>
public sealed class LegalHolds(HomeserverServices hs)
{
    /// <summary>Job name prefix of every put-off deletion.</summary>
    public const string JobPrefix = "held:";

    /// <summary>Job name prefix of a room deletion put off by min_lifetime; the room ID follows.</summary>
    public const string RoomJobPrefix = JobPrefix + "room_deletion:";

    /// <summary>Job name prefix of an erased user's uploads put off by min_lifetime; the user ID follows.</summary>
    public const string UploadsJobPrefix = JobPrefix + "erased_uploads:";

    private const int BatchSize = 100;

    /// <summary>
    /// Deletes the user's uploads (erasure), except those a message still held by its room's min_lifetime names: they
    /// stay downloadable until the hold ends, and a held-deletion job deletes them then.
    /// </summary>
    public async Task DeleteUploadsAsync(string userId, CancellationToken ct)
    {
        var now = hs.NowMs;
        var held = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (mediaId, roomId, newestTs) in await hs.Retention.UploadsNamedByMessagesAsync(userId, ct))
        {
            var policy = await hs.RetentionPolicies.ForRoomAsync(roomId, ct);
            if (!policy.AllowsDeletion(newestTs, now))
            {
                var until = newestTs + policy.MinLifetime!.Value;
                held[mediaId] = Math.Max(held.GetValueOrDefault(mediaId), until);
            }
        }

        var free = (await hs.Media.Store.IdsByUserAsync(userId, ct)).Where(id => !held.ContainsKey(id)).ToList();
        await hs.Media.DeleteManyAsync(free, ct);
        var job = UploadsJobPrefix + userId;
        if (held.Count > 0)
        {
            await hs.Jobs.ScheduleAsync(job, held.Values.Min(), ct);
        }
        else
        {
            await hs.Jobs.DeleteAsync(job, ct);
        }
    }

    /// <summary>Finishes the put-off deletions whose hold has ended (each deletes what is free now and reschedules what is still held); returns how many ran.</summary>
    public async Task<int> RunDueAsync(CancellationToken ct)
    {
        var due = await hs.Jobs.DueAsync(JobPrefix, hs.NowMs, BatchSize, ct);
        foreach (var job in due)
        {
            if (job.StartsWith(RoomJobPrefix, StringComparison.Ordinal))
            {
                await hs.RoomPurge.PurgeAsync(job[RoomJobPrefix.Length..], force: false, ct);
            }
            else if (job.StartsWith(UploadsJobPrefix, StringComparison.Ordinal))
            {
                await DeleteUploadsAsync(job[UploadsJobPrefix.Length..], ct);
                await hs.Database.CompactAfterDeleteAsync(ct);
            }
            else
            {
                await hs.Jobs.DeleteAsync(job, ct);
            }
        }

        return due.Count;
    }
}
