using System.Collections.Concurrent;
using Lethe.Homeserver.Accounts;

namespace Lethe.Homeserver.Privacy;

/// <summary>
/// GDPR erasure at deactivation (<c>erase: true</c>, MSC4025 semantics, the "email model"): the account is deactivated
/// and its profile, account data, filters, presence, receipts and uploaded media deleted; from then on every event the user sent is
/// served redacted to anyone who was not in the room when it was sent, while those who were keep what they received.
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

    /// <summary>Deactivates and erases the account. The profile goes first, so the leave events carry no name or avatar.</summary>
    public async Task EraseAsync(string userId, CancellationToken ct)
    {
        await hs.Privacy.EraseAsync(userId, hs.NowMs, ct);
        _erased[userId] = true;
        await AccountEndpoints.DeactivateAsync(hs, userId, ct);
        await hs.Media.DeleteManyAsync(await hs.Media.Store.IdsByUserAsync(userId, ct), ct);
        await hs.Database.CompactAfterDeleteAsync(ct);
    }
}
