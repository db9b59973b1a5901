using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;

namespace Lethe.Protocol.State;

/// <summary>The iterative auth checks of state resolution v2: apply each event in order if the auth rules allow it against the state so far.</summary>
internal sealed class IterativeAuthChecks
{
    private static readonly StateKey CreateKey = new(EventTypes.Create, "");

    private readonly EventAuthorizer _authorizer;
    private readonly EventCache _cache;
    private readonly Pdu? _roomCreate;

    /// <summary>Creates the checks; <paramref name="roomCreate"/> is the v12 create event named by the room ID.</summary>
    public IterativeAuthChecks(EventAuthorizer authorizer, EventCache cache, Pdu? roomCreate)
    {
        _authorizer = authorizer;
        _cache = cache;
        _roomCreate = roomCreate;
    }

    /// <summary>Runs the checks for <paramref name="order"/>, updating <paramref name="state"/> in place.</summary>
    public void Apply(AuthGraph graph, List<int> order, Dictionary<StateKey, string> state)
    {
        var authState = new Dictionary<StateKey, Pdu>();
        foreach (var node in order)
        {
            var pdu = graph.EventAt(node);
            if (!pdu.IsState)
            {
                continue;
            }

            // Rejected auth events never count; keys the state lacks fall back to the event's own auth events.
            authState.Clear();
            foreach (var id in pdu.AuthEvents)
            {
                if (_cache.GetAccepted(id) is { IsState: true } auth)
                {
                    authState[auth.StateMapKey] = auth;
                }
            }

            foreach (var key in AuthEventSelection.Select(pdu))
            {
                if (state.TryGetValue(key, out var id) && _cache.GetAccepted(id) is { } current)
                {
                    authState[key] = current;
                }
            }

            // v12 events do not cite the create event, but the rules still read it.
            if (pdu.RoomVersion.RoomIdIsCreateEventHash && _roomCreate is not null)
            {
                authState[CreateKey] = _roomCreate;
            }

            if (_authorizer.CheckWithState(pdu, authState).IsAllowed)
            {
                state[pdu.StateMapKey] = pdu.EventId;
            }
        }
    }
}
