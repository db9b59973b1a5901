using System.Collections.Immutable;
using Lethe.Homeserver.Rooms;
using Lethe.Storage;

namespace Lethe.Homeserver.Push;

/// <summary>Push as one capability: rules, evaluation on the write path, counts, pushers and delivery to push gateways.</summary>
public sealed class PushService
{
    private readonly HomeserverServices _hs;
    private volatile ImmutableHashSet<string>? _pushUsers;

    /// <summary>Builds the push services over the server's stores.</summary>
    public PushService(HomeserverServices hs)
    {
        _hs = hs;
        Store = new PushStore(hs.Database);
        Rules = new PushRuleStore(hs);
        Evaluator = new PushEvaluator(hs);
        Counts = new NotificationCounts(hs);
    }

    /// <summary>Push outcomes and pushers.</summary>
    public PushStore Store { get; }

    /// <summary>Users' push rules.</summary>
    public PushRuleStore Rules { get; }

    /// <summary>Rule evaluation for the write path.</summary>
    public PushEvaluator Evaluator { get; }

    /// <summary>Unread counts.</summary>
    public NotificationCounts Counts { get; }

    /// <summary>Delivery to push gateways; null until the host starts it (and when push is disabled).</summary>
    public PushDelivery? Delivery { get; internal set; }

    /// <summary>Users who have at least one pusher (loaded once, kept up to date by the pusher endpoints).</summary>
    public async ValueTask<ImmutableHashSet<string>> UsersWithPushersAsync(CancellationToken ct)
    {
        if (_pushUsers is { } known)
        {
            return known;
        }

        await RefreshPushUsersAsync(ct);
        return _pushUsers!;
    }

    /// <summary>Re-reads who has pushers, after pushers were added or removed.</summary>
    public async Task RefreshPushUsersAsync(CancellationToken ct) =>
        _pushUsers = (await Store.UsersWithPushersAsync(ct)).ToImmutableHashSet(StringComparer.Ordinal);

    /// <summary>After an evaluated event was persisted: hands the notifications for users with pushers to delivery.</summary>
    public void Persisted(StoredEvent stored, RoomSnapshot before, PushEvaluation evaluation)
    {
        if (evaluation.ToPush.Count > 0 && Delivery is { } delivery)
        {
            delivery.Enqueue(stored, before, evaluation.ToPush);
        }
    }
}
