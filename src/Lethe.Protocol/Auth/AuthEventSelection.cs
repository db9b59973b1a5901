using System.Text.Json.Nodes;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Auth;

/// <summary>The server-server API's "auth events selection": which state an event's <c>auth_events</c> must be drawn from.</summary>
public static class AuthEventSelection
{
    private static readonly StateKey CreateKey = new(EventTypes.Create, "");
    private static readonly StateKey PowerLevelsKey = new(EventTypes.PowerLevels, "");
    private static readonly StateKey JoinRulesKey = new(EventTypes.JoinRules, "");

    /// <summary>The state keys whose current events belong in the <c>auth_events</c> of an event with these fields. Empty for <c>m.room.create</c>.</summary>
    public static IReadOnlyList<StateKey> Select(RoomVersion version, string type, string sender, string? stateKey, JsonObject content)
    {
        if (type == EventTypes.Create)
        {
            return [];
        }

        var keys = new List<StateKey>(6);

        // v12 derives the create event from the room ID instead of citing it.
        if (!version.RoomIdIsCreateEventHash)
        {
            keys.Add(CreateKey);
        }

        keys.Add(PowerLevelsKey);
        keys.Add(new StateKey(EventTypes.Member, sender));
        if (type != EventTypes.Member || stateKey is null)
        {
            return keys;
        }

        AddOnce(keys, new StateKey(EventTypes.Member, stateKey));
        var membership = content.GetString("membership");
        if (membership is Membership.Join or Membership.Invite or Membership.Knock)
        {
            keys.Add(JoinRulesKey);
        }

        if (membership == Membership.Invite && ThirdPartyInviteToken(content) is { } token)
        {
            keys.Add(new StateKey(EventTypes.ThirdPartyInvite, token));
        }

        if (membership == Membership.Join && version.RestrictedJoins && content.GetString("join_authorised_via_users_server") is { } authoriser)
        {
            AddOnce(keys, new StateKey(EventTypes.Member, authoriser));
        }

        return keys;
    }

    /// <summary>The state keys whose current events belong in <paramref name="pdu"/>'s <c>auth_events</c>.</summary>
    public static IReadOnlyList<StateKey> Select(Pdu pdu) => Select(pdu.RoomVersion, pdu.Type, pdu.Sender, pdu.StateKey, pdu.Content);

    /// <summary>The IDs to put in a new event's <c>auth_events</c>: the selected keys that <paramref name="currentState"/> holds, in selection order.</summary>
    public static IReadOnlyList<string> SelectEventIds(RoomVersion version, string type, string sender, string? stateKey, JsonObject content, IReadOnlyDictionary<StateKey, string> currentState)
    {
        var keys = Select(version, type, sender, stateKey, content);
        var ids = new List<string>(keys.Count);
        foreach (var key in keys)
        {
            if (currentState.TryGetValue(key, out var id))
            {
                ids.Add(id);
            }
        }

        return ids;
    }

    /// <summary><c>content.third_party_invite.signed.token</c> when it is a string.</summary>
    internal static string? ThirdPartyInviteToken(JsonObject content) =>
        content["third_party_invite"] is JsonObject invite && invite["signed"] is JsonObject signed ? signed.GetString("token") : null;

    private static void AddOnce(List<StateKey> keys, StateKey key)
    {
        if (!keys.Contains(key))
        {
            keys.Add(key);
        }
    }
}
