using System.Collections.Concurrent;
using Lethe.Homeserver.Accounts;

namespace Lethe.Homeserver.Privacy;

/// <summary>
/// GDPR erasure at deactivation (<c>erase: true</c>, MSC4025 semantics, the "email model"): the account is deactivated
/// and its profile, account data, filters, presence, receipts, the reports they made and uploaded media deleted; from
/// then on every event the user sent is served redacted to anyone who was not in the room when it was sent, while
/// those who were keep what they received.
/// The check lives in <see cref="Rooms.EventVisibility"/>, so it holds on every read path.
/// </summary>
public sealed class Erasure(HomeserverServices hs)
{
    private readonly ConcurrentDictionary<string, bool> _erased = new(StringComparer.Ordinal);

    /// <summary>Loads the erased users (at start-up).</summary>
    public async Task LoadAsync(CancellationToken ct)
    {
        foreach (var userId in await hs.Privacy.ErasedUsersAsync(ct))
        {
            _erased[userId] = true;
        }
    }

    /// <summary>True when the user has been erased.</summary>
    public bool IsErased(string userId) => !_erased.IsEmpty && _erased.ContainsKey(userId);

    /// <summary>
    /// Deactivates and erases the account. Readers see the erasure at once. The user's data (profile, account data,
    /// filters, presence, receipts, reports made, uploads) is deleted now, or after <c>erase_delay</c> when that grace
    /// period is configured (an admin can cancel within it). The profile goes before the user leaves their rooms, so
    /// the leave events carry no name or avatar.
    /// </summary>
    public async Task EraseAsync(string userId, CancellationToken ct)
    {
        var delay = hs.Config.EraseDelay;
        await hs.Privacy.MarkErasedAsync(userId, hs.NowMs, delay is { } d ? hs.NowMs + d : null, ct);
        _erased[userId] = true;
        if (delay is null)
        {
            await hs.Privacy.PurgeErasedDataAsync(userId, ct);
        }

        await AccountEndpoints.DeactivateAsync(hs, userId, ct);
        if (delay is null)
        {
            await PurgeMediaAsync(userId, ct);
        }
    }

    /// <summary>Completes erasures whose grace period has ended (privacy GC); returns how many.</summary>
    public async Task<long> PurgeDueAsync(CancellationToken ct)
    {
        long done = 0;
        foreach (var userId in await hs.Privacy.ErasuresDueAsync(hs.NowMs, ct))
        {
            await hs.Privacy.PurgeErasedDataAsync(userId, ct);
            await PurgeMediaAsync(userId, ct);
            done++;
        }

        return done;
    }

    /// <summary>Cancels an erasure in its grace period: the user's events are served as before. False when there was none to cancel.</summary>
    public async Task<bool> CancelAsync(string userId, CancellationToken ct)
    {
        if (!await hs.Privacy.CancelErasureAsync(userId, ct))
        {
            return false;
        }

        _erased.TryRemove(userId, out _);
        return true;
    }

    private async Task PurgeMediaAsync(string userId, CancellationToken ct)
    {
        // Uploads a message held by its room's min_lifetime still names go when the hold ends.
        await hs.LegalHolds.DeleteUploadsAsync(userId, force: false, ct);
        await hs.Database.CompactAfterDeleteAsync(ct);
    }
}
