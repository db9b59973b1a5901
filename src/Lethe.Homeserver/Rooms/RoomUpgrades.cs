using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Lethe.Homeserver.AccountData;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;
using Lethe.Storage;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Rooms;

/// <summary>
/// Room upgrades (client-server "Room Upgrades", server behaviour steps 1–6), in Synapse's order: check the tombstone
/// power → create the replacement room with <c>predecessor</c> → copy the transferable state, with the upgrader's
/// power temporarily raised enough to send it → copy bans → tombstone the old room → move local aliases and the
/// canonical alias → move the directory listing and the members' tags → restrict the old room and restore the copied
/// power levels in the new one.
/// </summary>
public sealed class RoomUpgrades(HomeserverServices hs)
{
    /// <summary>State copied to the new room (the spec's recommended list), after join rules, history visibility and guest access.</summary>
    private static readonly string[] CopiedState =
    [
        EventTypes.JoinRules, EventTypes.HistoryVisibility, EventTypes.GuestAccess, EventTypes.Name, EventTypes.Topic,
        "m.room.avatar", EventTypes.Encryption, EventTypes.ServerAcl,
    ];

    private static readonly string[] LevelKeys = ["ban", "kick", "redact", "invite", "state_default", "events_default", "users_default"];
    private static readonly string[] LevelMaps = ["users", "events", "notifications"];

    private readonly ConcurrentDictionary<string, string> _inProgress = new(StringComparer.Ordinal);
    private readonly RoomUpgradeStore _store = new(hs.Database);

    /// <summary>Maps the endpoint.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        var upgrades = new RoomUpgrades(hs);

        // POST /_matrix/client/v3/rooms/{roomId}/upgrade
        app.MapClient("POST", "/rooms/{roomId}/upgrade", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var body = await JsonBody.ReadObjectAsync(ctx);
            var replacement = await upgrades.UpgradeAsync(requester, ctx.Route("roomId"), body, ctx.RequestAborted);
            return new JsonObject { ["replacement_room"] = replacement };
        });
    }

    /// <summary>Upgrades a room as described by an upgrade request body and returns the replacement room's ID.</summary>
    /// <exception cref="MatrixException">400 for an unsupported version or bad body, 403 without the tombstone power, 404 for an unknown room.</exception>
    public async Task<string> UpgradeAsync(Requester requester, string oldRoomId, JsonObject body, CancellationToken ct)
    {
        var versionId = body.RequiredString("new_version", 32);
        if (!RoomVersion.TryGet(versionId, out var version))
        {
            throw MatrixException.Of(400, ErrCode.UnsupportedRoomVersion, $"Room version {versionId} is not supported");
        }

        var additionalCreators = body.OptionalStringArray("additional_creators", 100) ?? [];
        foreach (var user in additionalCreators)
        {
            if (!UserId.TryParse(user, out _))
            {
                throw MatrixException.InvalidParam($"'{user}' is not a user ID");
            }
        }

        var snap = await hs.Snapshots.GetAsync(oldRoomId, ct) ?? throw MatrixException.NotFound("Unknown room");
        if (snap.MembershipOf(requester.UserId) != Membership.Join)
        {
            throw MatrixException.Forbidden("You are not in this room");
        }

        var create = (await hs.Events.GetAsync(snap.StateEventId(EventTypes.Create)!, ct))!.Pdu;
        var oldLevelsEvent = snap.StateEventId(EventTypes.PowerLevels) is { } plId ? await hs.Events.GetAsync(plId, ct) : null;
        var oldLevels = PowerLevels.FromState(create, oldLevelsEvent?.Pdu);

        // spec step 1. The tombstone is sent last, and the auth rules check it again then.
        if (!oldLevels.CanSend(requester.UserId, EventTypes.Tombstone, isState: true))
        {
            throw MatrixException.Forbidden("You cannot upgrade this room");
        }

        if (!_inProgress.TryAdd(oldRoomId, requester.UserId))
        {
            throw MatrixException.Of(400, ErrCode.Unknown, "An upgrade for this room is currently in progress");
        }

        try
        {
            hs.RateLimiter.Take("rc_room_creation", requester.UserId);
            return await ReplaceAsync(requester, snap, create, oldLevelsEvent?.Pdu.Content, oldLevels, version, version.PrivilegedCreators ? additionalCreators : [], ct);
        }
        finally
        {
            _inProgress.TryRemove(oldRoomId, out _);
        }
    }

    /// <summary>Builds the replacement room and retires the old one; the checks are done.</summary>
    private async Task<string> ReplaceAsync(
        Requester requester, RoomSnapshot old, Pdu oldCreate, JsonObject? oldLevelsContent, PowerLevels oldLevels, RoomVersion version, IReadOnlyList<string> additionalCreators, CancellationToken ct)
    {
        var user = requester.UserId;

        // spec step 2.
        var createContent = new JsonObject
        {
            ["room_version"] = version.Identifier,
            ["predecessor"] = await PredecessorAsync(old, ct),
        };
        if (!version.ImplicitCreator)
        {
            createContent["creator"] = user;
        }

        if (oldCreate.Content["type"] is { } roomType)
        {
            createContent["type"] = roomType.DeepClone();
        }

        if (oldCreate.Content["m.federate"] is JsonValue federate && federate.TryGetValue<bool>(out var f) && !f)
        {
            createContent["m.federate"] = false;
        }

        if (additionalCreators.Count > 0)
        {
            createContent["additional_creators"] = new JsonArray(additionalCreators.Where(u => u != user).Distinct().Select(u => (JsonNode)u).ToArray());
        }

        var newRoomId = (await hs.Pipeline.CreateRoomAsync(version, user, createContent, ct)).Pdu.RoomId;
        await hs.Memberships.ChangeAsync(requester, newRoomId, user, Membership.Join, null, null, ct);
        Task<StoredEvent> Send(string roomId, string type, string stateKey, JsonObject content) =>
            hs.Pipeline.SendAsync(new LocalEvent(roomId, user, type, stateKey, content) { SenderDevice = requester.DeviceId }, ct);

        // spec step 3. Power levels first, so the rest can be sent.
        var finalLevels = NewRoomLevels(version, user, oldLevelsContent, oldLevels, additionalCreators);
        var setupLevels = (JsonObject)finalLevels.DeepClone();
        if (!version.PrivilegedCreators)
        {
            // Copying state may need more power than the upgrader had (e.g. history visibility needs 100 by default).
            var users = Users(setupLevels);
            var needed = NeededLevel(setupLevels);
            if (LevelOf(setupLevels, user) < needed)
            {
                users[user] = needed;
            }
        }

        await Send(newRoomId, EventTypes.PowerLevels, "", setupLevels);
        var defaults = new Dictionary<string, JsonObject>
        {
            // As a private_chat room would start, when the old room lacked these (Synapse).
            [EventTypes.JoinRules] = new() { ["join_rule"] = "invite" },
            [EventTypes.HistoryVisibility] = new() { ["history_visibility"] = "shared" },
            [EventTypes.GuestAccess] = new() { ["guest_access"] = "can_join" },
        };
        foreach (var type in CopiedState)
        {
            var content = await StateContentAsync(old, type, "", ct) ?? defaults.GetValueOrDefault(type);
            if (content is not null)
            {
                await Send(newRoomId, type, "", content);
            }
        }

        if (oldCreate.Content.GetString("type") == "m.space")
        {
            // A space's children come along; an emptied m.space.child means the child was removed.
            foreach (var key in old.State.Keys.Where(k => k.Type == "m.space.child").OrderBy(k => k.Key, StringComparer.Ordinal))
            {
                if (await StateContentAsync(old, key.Type, key.Key, ct) is { Count: > 0 } child)
                {
                    await Send(newRoomId, key.Type, key.Key, child);
                }
            }
        }

        // Bans carry over (Synapse); a ban the auth rules refuse (a banned user with more power than the upgrader) is skipped.
        foreach (var banned in old.Memberships.Where(m => m.Value == Membership.Ban).Select(m => m.Key).Order(StringComparer.Ordinal))
        {
            var content = await StateContentAsync(old, EventTypes.Member, banned, ct) ?? new JsonObject { ["membership"] = Membership.Ban };
            try
            {
                await Send(newRoomId, EventTypes.Member, banned, content);
            }
            catch (MatrixException e) when (e.Status == 403)
            {
            }
        }

        // spec step 5.
        await Send(old.RoomId, EventTypes.Tombstone, "", new JsonObject { ["body"] = "This room has been replaced", ["replacement_room"] = newRoomId });

        // spec step 4.
        await MoveAliasesAsync(old, newRoomId, Send, ct);
        await TransferMemberDataAsync(old, newRoomId, ct);

        // spec step 6: stop ordinary members speaking and inviting in the old room, as far as the upgrader's power allows.
        if (oldLevelsContent is not null)
        {
            var restricted = Fixup(oldLevelsContent);
            var level = Math.Max(Level(restricted, "users_default", 0) + 1, PowerLevels.DefaultModeratorLevel);
            var changed = false;
            foreach (var key in new[] { "invite", "events_default" })
            {
                if (Level(restricted, key, 0) < level)
                {
                    restricted[key] = level;
                    changed = true;
                }
            }

            if (changed)
            {
                await TrySendAsync(() => Send(old.RoomId, EventTypes.PowerLevels, "", restricted));
            }
        }

        if (!JsonNode.DeepEquals(finalLevels, setupLevels))
        {
            await Send(newRoomId, EventTypes.PowerLevels, "", finalLevels);
        }

        return newRoomId;
    }

    /// <summary>
    /// The <c>predecessor</c> of the new room. Its <c>event_id</c> is "the last known event in the old room" (the spec's
    /// definition): the tombstone cannot be cited because it names the new room, whose ID only exists once created.
    /// </summary>
    private async Task<JsonObject> PredecessorAsync(RoomSnapshot old, CancellationToken ct)
    {
        var predecessor = new JsonObject { ["room_id"] = old.RoomId };
        var extremities = await hs.Events.GetManyAsync(old.ForwardExtremities, ct);
        if (extremities.Values.MaxBy(e => e.StreamOrdering) is { } last)
        {
            predecessor["event_id"] = last.EventId;
        }

        return predecessor;
    }

    /// <summary>
    /// The power levels the new room ends with: the old room's (numbers normalised for newer room versions), keeping
    /// the upgrader's power. In room versions with privileged creators the creators must not be listed in
    /// <c>users</c>; going the other way, an upgrader who was a privileged creator gets an explicit top level.
    /// </summary>
    private static JsonObject NewRoomLevels(RoomVersion version, string user, JsonObject? oldContent, PowerLevels oldLevels, IReadOnlyList<string> additionalCreators)
    {
        var content = oldContent is null ? new JsonObject { ["users"] = new JsonObject() } : Fixup(oldContent);
        var users = Users(content);
        if (version.PrivilegedCreators)
        {
            users.Remove(user);
            foreach (var creator in additionalCreators)
            {
                users.Remove(creator);
            }
        }
        else if (oldLevels.IsPrivilegedCreator(user) || oldContent is null)
        {
            users[user] = Math.Max(PowerLevels.DefaultCreatorLevel, NeededLevel(content));
        }

        return content;
    }

    /// <summary>Moves the local aliases and splits the canonical alias event: local aliases go to the new room, remote ones stay (Synapse).</summary>
    private async Task MoveAliasesAsync(RoomSnapshot old, string newRoomId, Func<string, string, string, JsonObject, Task<StoredEvent>> send, CancellationToken ct)
    {
        await _store.MoveAliasesAsync(old.RoomId, newRoomId, ct);
        if (await StateContentAsync(old, EventTypes.CanonicalAlias, "", ct) is not { } oldContent)
        {
            return;
        }

        var updatedOld = (JsonObject)oldContent.DeepClone();
        var forNew = new JsonObject();
        if (oldContent.GetString("alias") is { } alias && IsLocalAlias(alias))
        {
            forNew["alias"] = alias;
            updatedOld.Remove("alias");
        }

        if (oldContent["alt_aliases"] is JsonArray alternatives)
        {
            var local = alternatives.Select(a => a.AsString()).OfType<string>().Where(IsLocalAlias).ToList();
            var remaining = alternatives.Select(a => a.AsString()).OfType<string>().Where(a => !IsLocalAlias(a)).ToList();
            if (local.Count > 0)
            {
                forNew["alt_aliases"] = new JsonArray(local.Select(a => (JsonNode)a).ToArray());
            }

            if (remaining.Count > 0)
            {
                updatedOld["alt_aliases"] = new JsonArray(remaining.Select(a => (JsonNode)a).ToArray());
            }
            else
            {
                updatedOld.Remove("alt_aliases");
            }
        }

        // Failing to update the canonical alias should not fail an upgrade that has already tombstoned the old room.
        if (!JsonNode.DeepEquals(updatedOld, oldContent))
        {
            await TrySendAsync(() => send(old.RoomId, EventTypes.CanonicalAlias, "", updatedOld));
        }

        if (forNew.Count > 0)
        {
            await TrySendAsync(() => send(newRoomId, EventTypes.CanonicalAlias, "", forNew));
        }
    }

    /// <summary>The directory listing moves to the new room, and local members' push rules, tags and direct-chat entries follow them there (Synapse).</summary>
    private async Task TransferMemberDataAsync(RoomSnapshot old, string newRoomId, CancellationToken ct)
    {
        if (await hs.RoomStore.GetAsync(old.RoomId, ct) is { IsPublic: true })
        {
            await hs.RoomStore.SetPublicAsync(old.RoomId, false, ct);
            await hs.RoomStore.SetPublicAsync(newRoomId, true, ct);
        }

        var suffix = ":" + hs.ServerName;
        foreach (var member in old.Memberships.Where(m => m.Value == Membership.Join && m.Key.EndsWith(suffix, StringComparison.Ordinal)).Select(m => m.Key))
        {
            await hs.Push.Rules.CopyRoomRulesAsync(member, old.RoomId, newRoomId, ct);
            if (await hs.AccountData.GetAsync(member, old.RoomId, "m.tag", ct) is { } tags)
            {
                await AccountDataEndpoints.SetRawAsync(hs, member, newRoomId, "m.tag", AccountDataJson.Parse(tags), ct);
            }

            if (await hs.AccountData.GetAsync(member, "", "m.direct", ct) is { } stored)
            {
                var direct = AccountDataJson.Parse(stored);
                var changed = false;
                foreach (var (_, rooms) in direct)
                {
                    if (rooms is JsonArray list && list.Any(r => r.AsString() == old.RoomId) && !list.Any(r => r.AsString() == newRoomId))
                    {
                        list.Add((JsonNode)newRoomId);
                        changed = true;
                    }
                }

                if (changed)
                {
                    await AccountDataEndpoints.SetRawAsync(hs, member, "", "m.direct", direct, ct);
                }
            }
        }
    }

    private bool IsLocalAlias(string alias) => RoomAlias.TryParse(alias, out var parsed) && parsed.Server.Value == hs.ServerName;

    private async Task<JsonObject?> StateContentAsync(RoomSnapshot snap, string type, string stateKey, CancellationToken ct) =>
        snap.StateEventId(type, stateKey) is { } id && await hs.Events.GetAsync(id, ct) is { } e ? (JsonObject)e.Pdu.Content.DeepClone() : null;

    private static async Task TrySendAsync(Func<Task> send)
    {
        try
        {
            await send();
        }
        catch (MatrixException e) when (e.Status is 400 or 403)
        {
            // The upgrade has happened; this step is best effort, as in Synapse.
        }
    }

    /// <summary>A copy of power levels content with numeric strings (valid before room version 10) turned into integers and non-numbers dropped, so it is valid in any room version.</summary>
    private static JsonObject Fixup(JsonObject content)
    {
        var result = (JsonObject)content.DeepClone();
        foreach (var key in LevelKeys)
        {
            if (result[key] is not null)
            {
                Normalise(result, key);
            }
        }

        foreach (var map in LevelMaps)
        {
            if (result[map] is JsonObject o)
            {
                foreach (var key in o.Select(kv => kv.Key).ToList())
                {
                    Normalise(o, key);
                }
            }
            else
            {
                result.Remove(map);
            }
        }

        return result;
    }

    private static void Normalise(JsonObject o, string key)
    {
        if (o[key].TryGetInt64(out var n))
        {
            o[key] = n;
        }
        else if (o[key].AsString() is { } s && long.TryParse(s.Trim(), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out n))
        {
            o[key] = n;
        }
        else
        {
            o.Remove(key);
        }
    }

    private static JsonObject Users(JsonObject content)
    {
        if (content["users"] is not JsonObject users)
        {
            users = [];
            content["users"] = users;
        }

        return users;
    }

    private static long Level(JsonObject content, string key, long fallback) => content[key].TryGetInt64(out var l) ? l : fallback;

    private static long LevelOf(JsonObject content, string user) =>
        content["users"] is JsonObject users && users[user].TryGetInt64(out var l) ? l : Level(content, "users_default", 0);

    /// <summary>The power needed to send every copied state event and the bans: Synapse's max of state_default, ban and every event level.</summary>
    private static long NeededLevel(JsonObject content)
    {
        var needed = Math.Max(Level(content, "state_default", PowerLevels.DefaultModeratorLevel), Level(content, "ban", PowerLevels.DefaultModeratorLevel));
        if (content["events"] is JsonObject events)
        {
            foreach (var (_, value) in events)
            {
                if (value.TryGetInt64(out var l))
                {
                    needed = Math.Max(needed, l);
                }
            }
        }

        return needed;
    }
}
