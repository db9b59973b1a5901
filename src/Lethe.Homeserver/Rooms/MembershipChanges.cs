using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;

namespace Lethe.Homeserver.Rooms;

/// <summary>Joins, invites, leaves, kicks, bans, unbans and knocks: the checks clients expect before the auth rules, then one member event.</summary>
public sealed class MembershipChanges(HomeserverServices hs)
{
    /// <summary>
    /// Changes <paramref name="target"/>'s membership in <paramref name="roomId"/> as <paramref name="requester"/>.
    /// <paramref name="extra"/> adds content keys (e.g. <c>is_direct</c>).
    /// </summary>
    public async Task<StoredEvent> ChangeAsync(Requester requester, string roomId, string target, string membership, string? reason, JsonObject? extra, CancellationToken ct)
    {
        if (!UserId.TryParse(target, out var targetId))
        {
            throw MatrixException.InvalidParam($"'{target}' is not a user ID");
        }

        var snap = await hs.Snapshots.GetAsync(roomId, ct);
        if (snap is null)
        {
            // Rooms on other servers need federation, which this server does not speak yet.
            throw MatrixException.NotFound("Unknown room: this server has no copy of it");
        }

        var current = snap.MembershipOf(target);
        var isLocalTarget = targetId.Server.Value == hs.ServerName;
        switch (membership)
        {
            case Membership.Join:
                if (current == Membership.Ban)
                {
                    throw MatrixException.Forbidden("You are banned from this room");
                }

                break;
            case Membership.Invite:
                if (current is Membership.Join)
                {
                    throw MatrixException.Forbidden($"{target} is already in the room");
                }

                if (current is Membership.Ban)
                {
                    throw MatrixException.Forbidden($"{target} is banned from the room");
                }

                if (isLocalTarget && await hs.Users.GetAsync(target, ct) is not { Deactivated: false })
                {
                    throw MatrixException.NotFound($"Unknown user {target}");
                }

                if (!isLocalTarget)
                {
                    throw MatrixException.Forbidden("Inviting users on other servers needs federation, which is not available yet");
                }

                break;
            case Membership.Leave when target != requester.UserId:
                if (current is not (Membership.Join or Membership.Invite or Membership.Knock or Membership.Ban))
                {
                    throw MatrixException.Forbidden($"{target} is not in the room");
                }

                break;
            case Membership.Knock:
                if (!snap.Version.Knocking)
                {
                    throw MatrixException.Forbidden("This room version does not support knocking");
                }

                break;
        }

        var content = new JsonObject { ["membership"] = membership };
        if (reason is not null)
        {
            content["reason"] = reason;
        }

        foreach (var kv in extra ?? [])
        {
            content[kv.Key] = kv.Value?.DeepClone();
        }

        // Joins and invites carry the member's profile, as clients display it from the member event.
        if (membership is Membership.Join or Membership.Invite or Membership.Knock && isLocalTarget
            && await hs.Profiles.GetAsync(target, ct) is { } profile)
        {
            if (profile.Displayname is not null)
            {
                content["displayname"] = profile.Displayname;
            }

            if (profile.AvatarUrl is not null)
            {
                content["avatar_url"] = profile.AvatarUrl;
            }
        }

        if (membership == Membership.Join && current is not (Membership.Join or Membership.Invite))
        {
            await AddRestrictedJoinAuthoriserAsync(snap, target, content, ct);
        }

        return await hs.Pipeline.SendAsync(new LocalEvent(roomId, requester.UserId, EventTypes.Member, target, content) { SenderDevice = requester.DeviceId }, ct);
    }

    /// <summary>
    /// After a profile change, re-sends the user's member event in every room they are joined to with the new display
    /// name and avatar, as clients show names from member events. Rooms where that is not allowed are skipped.
    /// </summary>
    public async Task PropagateProfileAsync(string userId, CancellationToken ct)
    {
        var profile = await hs.Profiles.GetAsync(userId, ct);
        foreach (var (roomId, _) in await hs.StateStore.RoomsForUserAsync(userId, [Membership.Join], ct))
        {
            var snap = await hs.Snapshots.GetAsync(roomId, ct);
            if (snap?.StateEventId(EventTypes.Member, userId) is not { } currentId || await hs.Events.GetAsync(currentId, ct) is not { } current)
            {
                continue;
            }

            var content = (JsonObject)current.Pdu.Content.DeepClone();
            SetOrRemove(content, "displayname", profile?.Displayname);
            SetOrRemove(content, "avatar_url", profile?.AvatarUrl);
            if (JsonNode.DeepEquals(content, current.Pdu.Content))
            {
                continue;
            }

            try
            {
                await hs.Pipeline.SendAsync(new LocalEvent(roomId, userId, EventTypes.Member, userId, content), ct);
            }
            catch (MatrixException e) when (e.Status == 403)
            {
                // The room's rules no longer let this user change their member event; their old name stays there.
            }
        }
    }

    private static void SetOrRemove(JsonObject content, string key, string? value)
    {
        if (value is null)
        {
            content.Remove(key);
        }
        else
        {
            content[key] = value;
        }
    }

    /// <summary>
    /// For a restricted room (v8+), a user who is a member of one of the allowed rooms may join without an invite; the
    /// join names a local member with invite power who vouches for it (<c>join_authorised_via_users_server</c>).
    /// </summary>
    private async Task AddRestrictedJoinAuthoriserAsync(RoomSnapshot snap, string joiner, JsonObject content, CancellationToken ct)
    {
        if (!snap.Version.RestrictedJoins || snap.StateEventId(EventTypes.JoinRules) is not { } rulesId
            || await hs.Events.GetAsync(rulesId, ct) is not { } rules
            || rules.Pdu.Content.GetString("join_rule") is not ("restricted" or "knock_restricted"))
        {
            return;
        }

        var allowed = false;
        foreach (var entry in rules.Pdu.Content["allow"] as JsonArray ?? [])
        {
            if (entry is JsonObject o && o.GetString("type") == "m.room_membership" && o.GetString("room_id") is { } allowRoom
                && await hs.Snapshots.GetAsync(allowRoom, ct) is { } other && other.MembershipOf(joiner) == Membership.Join)
            {
                allowed = true;
                break;
            }
        }

        if (!allowed)
        {
            return;
        }

        var create = (await hs.Events.GetAsync(snap.StateEventId(EventTypes.Create)!, ct))!.Pdu;
        var levelsId = snap.StateEventId(EventTypes.PowerLevels);
        var levels = PowerLevels.FromState(create, levelsId is null ? null : (await hs.Events.GetAsync(levelsId, ct))?.Pdu);
        var suffix = ":" + hs.ServerName;
        var authoriser = snap.Memberships
            .Where(m => m.Value == Membership.Join && m.Key.EndsWith(suffix, StringComparison.Ordinal) && levels.GetUserLevel(m.Key) >= levels.Invite)
            .Select(m => m.Key)
            .Order(StringComparer.Ordinal)
            .FirstOrDefault();
        if (authoriser is not null)
        {
            content["join_authorised_via_users_server"] = authoriser;
        }
    }
}
