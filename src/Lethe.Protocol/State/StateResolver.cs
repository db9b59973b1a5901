using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;

namespace Lethe.Protocol.State;

/// <summary>Resolves a room's diverging state sets into one, with the algorithm the room version prescribes (v1, v2 or v2.1).</summary>
public sealed class StateResolver
{
    private readonly StateResolutionV1 _v1;
    private readonly StateResolutionV2 _v2;

    /// <summary>Creates a resolver whose auth checks use <paramref name="authorizer"/>.</summary>
    public StateResolver(EventAuthorizer authorizer)
    {
        _v1 = new StateResolutionV1(authorizer);
        _v2 = new StateResolutionV2(authorizer);
    }

    /// <summary>A resolver using <see cref="EventAuthorizer.Default"/>.</summary>
    public static StateResolver Default { get; } = new(EventAuthorizer.Default);

    /// <summary>Resolves <paramref name="stateSets"/> (e.g. the states after each of an event's <c>prev_events</c>) into the room state.</summary>
    /// <param name="version">The room version.</param>
    /// <param name="roomId">The room; events of other rooms are treated as unknown.</param>
    /// <param name="stateSets">The state maps to resolve. One set comes back unchanged (as a copy); none gives an empty map.</param>
    /// <param name="events">Where the events named by the state sets and their auth chains are loaded from. Unknown events take no part.</param>
    /// <param name="cancellationToken">Cancels loading.</param>
    public async ValueTask<Dictionary<StateKey, string>> ResolveAsync(
        RoomVersion version,
        string roomId,
        IReadOnlyList<IReadOnlyDictionary<StateKey, string>> stateSets,
        IStateEventSource events,
        CancellationToken cancellationToken = default)
    {
        if (stateSets.Count == 0)
        {
            return [];
        }

        if (stateSets.Count == 1)
        {
            return new Dictionary<StateKey, string>(stateSets[0]);
        }

        return version.StateResolution == StateResolutionAlgorithm.V1
            ? await _v1.ResolveAsync(roomId, stateSets, events, cancellationToken)
            : await _v2.ResolveAsync(version, roomId, stateSets, events, cancellationToken);
    }
}
