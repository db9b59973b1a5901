using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Events;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;

namespace Lethe.Homeserver.Rooms;

/// <summary><c>POST /createRoom</c>: the events of a new room in the order the spec prescribes, each through the write pipeline.</summary>
public sealed class RoomCreation(HomeserverServices hs, MembershipChanges memberships)
{
    /// <summary>Creates the room described by a createRoom request body and returns its ID.</summary>
    public async Task<string> CreateAsync(Requester requester, JsonObject body, CancellationToken ct)
    {
        hs.RateLimiter.Take("rc_room_creation", requester.UserId);
        var versionId = body.OptionalString("room_version", 32) ?? RoomVersion.Default.Identifier;
        if (!RoomVersion.TryGet(versionId, out var version))
        {
            throw MatrixException.Of(400, ErrCode.UnsupportedRoomVersion, $"Room version {versionId} is not supported");
        }

        var visibility = body.OptionalString("visibility", 16) ?? "private";
        if (visibility is not ("public" or "private"))
        {
            throw MatrixException.InvalidParam("visibility must be public or private");
        }

        var preset = body.OptionalString("preset", 32) ?? (visibility == "public" ? "public_chat" : "private_chat");
        if (preset is not ("private_chat" or "public_chat" or "trusted_private_chat"))
        {
            throw MatrixException.InvalidParam("preset must be private_chat, public_chat or trusted_private_chat");
        }

        var invites = body.OptionalStringArray("invite", 100) ?? [];
        foreach (var invitee in invites)
        {
            if (!UserId.TryParse(invitee, out _))
            {
                throw MatrixException.InvalidParam($"'{invitee}' is not a user ID");
            }
        }

        if (body.OptionalArray("invite_3pid") is { Count: > 0 })
        {
            throw MatrixException.Of(400, ErrCode.Unknown, "Third-party invites are not supported: this server uses no identity server");
        }

        var isDirect = body.OptionalBool("is_direct", false);
        var name = body.OptionalString("name", 255);
        var topic = body.OptionalString("topic", 4096);
        var initialState = ReadInitialState(body);
        var plOverride = body.OptionalObject("power_level_content_override");
        var creationContent = (JsonObject?)body.OptionalObject("creation_content")?.DeepClone() ?? [];

        string? alias = null;
        if (body.OptionalString("room_alias_name", 255) is { } aliasName)
        {
            alias = $"#{aliasName}:{hs.ServerName}";
            if (aliasName.Length == 0 || aliasName.Any(c => char.IsWhiteSpace(c) || c is ':' or '\0') || !RoomAlias.TryParse(alias, out _))
            {
                throw MatrixException.InvalidParam("Invalid room_alias_name");
            }

            if (await hs.RoomStore.GetAliasAsync(alias, ct) is not null)
            {
                throw MatrixException.Of(400, ErrCode.RoomInUse, "Room alias already taken");
            }
        }

        // 1. m.room.create
        creationContent["room_version"] = version.Identifier;
        if (!version.ImplicitCreator)
        {
            creationContent["creator"] = requester.UserId;
        }

        if (version.PrivilegedCreators && preset == "trusted_private_chat")
        {
            var creators = creationContent.OptionalStringArray("additional_creators", 100) ?? [];
            creationContent["additional_creators"] = new JsonArray(creators.Concat(invites).Distinct().Where(u => u != requester.UserId).Select(u => (JsonNode)u).ToArray());
        }

        // Everything that could stop the room half-built is checked before its first event.
        var levelsContent = PowerLevelContent(version, preset, requester.UserId, preset == "trusted_private_chat" ? invites : [], plOverride);
        var presetState = PresetState(preset).Where(p => !initialState.Any(s => s.Type == p.Type && s.StateKey == "")).ToList();
        var stateToSend = presetState.Select(p => p.Type).Concat(initialState.Select(s => s.Type));
        stateToSend = alias is null ? stateToSend : stateToSend.Prepend(EventTypes.CanonicalAlias);
        stateToSend = name is null ? stateToSend : stateToSend.Append(EventTypes.Name);
        stateToSend = topic is null ? stateToSend : stateToSend.Append(EventTypes.Topic);
        var replaced = initialState.FindIndex(s => s.Type == EventTypes.PowerLevels);
        if (replaced < 0)
        {
            CheckPowerLevels(version, requester.UserId, creationContent, levelsContent, "power_level_content_override", stateToSend, invites.Count > 0);
        }
        else
        {
            // initial_state replaces the generated power levels at its place in the order (the spec's step 6): what
            // comes before it is sent under the generated levels, what comes after under its own.
            var before = presetState.Select(p => p.Type).Concat(initialState.Take(replaced + 1).Select(s => s.Type));
            before = alias is null ? before : before.Prepend(EventTypes.CanonicalAlias);
            var after = initialState.Skip(replaced + 1).Select(s => s.Type);
            after = name is null ? after : after.Append(EventTypes.Name);
            after = topic is null ? after : after.Append(EventTypes.Topic);
            var replacement = initialState[replaced].Content;
            CheckPowerLevels(version, requester.UserId, creationContent, levelsContent, "power_level_content_override", before, invites: false);
            CheckPowerLevels(version, requester.UserId, creationContent, replacement, "initial_state's m.room.power_levels", after, invites.Count > 0);
            if (!version.PrivilegedCreators && Lethe.Protocol.Auth.PowerLevels.FindChangeProblem(levelsContent, replacement, version, requester.UserId) is { } change)
            {
                throw MatrixException.InvalidParam("Invalid m.room.power_levels in initial_state: you could not set it over the room's first power levels: " + change);
            }
        }

        var create = await hs.Pipeline.CreateRoomAsync(version, requester.UserId, creationContent, ct);
        var roomId = create.Pdu.RoomId;
        Task Send(string type, string stateKey, JsonObject content) =>
            hs.Pipeline.SendAsync(new LocalEvent(roomId, requester.UserId, type, stateKey, content) { SenderDevice = requester.DeviceId }, ct);

        // 2. The creator joins.
        await memberships.ChangeAsync(requester, roomId, requester.UserId, Membership.Join, null, null, ct);

        // 3. Power levels.
        await Send(EventTypes.PowerLevels, "", levelsContent);

        // 4. Canonical alias.
        if (alias is not null)
        {
            if (!await hs.RoomStore.TryCreateAliasAsync(alias, roomId, requester.UserId, ct))
            {
                throw MatrixException.Of(400, ErrCode.RoomInUse, "Room alias already taken");
            }

            await Send(EventTypes.CanonicalAlias, "", new JsonObject { ["alias"] = alias });
        }

        // 5. The preset's state, unless initial_state sets the same key.
        foreach (var (type, content) in presetState)
        {
            await Send(type, "", content);
        }

        // 6. initial_state, in order.
        foreach (var (type, stateKey, content) in initialState)
        {
            await Send(type, stateKey, content);
        }

        // 7. Name and topic.
        if (name is not null)
        {
            await Send(EventTypes.Name, "", new JsonObject { ["name"] = name });
        }

        if (topic is not null)
        {
            await Send(EventTypes.Topic, "", new JsonObject
            {
                ["topic"] = topic,
                ["m.topic"] = new JsonObject { ["m.text"] = new JsonArray(new JsonObject { ["body"] = topic, ["mimetype"] = "text/plain" }) },
            });
        }

        // 8. Invites.
        foreach (var invitee in invites)
        {
            await memberships.ChangeAsync(requester, roomId, invitee, Membership.Invite, null, isDirect ? new JsonObject { ["is_direct"] = true } : null, ct);
        }

        if (visibility == "public")
        {
            await hs.RoomStore.SetPublicAsync(roomId, true, ct);
        }

        return roomId;
    }

    /// <summary>The state events a preset sets after the power levels.</summary>
    private static List<(string Type, JsonObject Content)> PresetState(string preset)
    {
        var state = new List<(string Type, JsonObject Content)>
        {
            (EventTypes.JoinRules, new JsonObject { ["join_rule"] = preset == "public_chat" ? "public" : "invite" }),
            (EventTypes.HistoryVisibility, new JsonObject { ["history_visibility"] = "shared" }),
        };
        if (preset != "public_chat")
        {
            state.Add((EventTypes.GuestAccess, new JsonObject { ["guest_access"] = "can_join" }));
        }

        return state;
    }

    /// <summary>
    /// Refuses power levels (the defaults with <c>power_level_content_override</c> applied) that the room's authorization rules
    /// would reject, or that would leave the creator unable to send the rest of the room's initial events or its invites.
    /// </summary>
    private static void CheckPowerLevels(RoomVersion version, string creator, JsonObject createContent, JsonObject content, string source, IEnumerable<string> stateTypes, bool invites)
    {
        if (Lethe.Protocol.Auth.PowerLevels.FindContentProblem(content, version) is { } problem)
        {
            throw MatrixException.BadJson($"Invalid {source}: " + problem);
        }

        if (version.PrivilegedCreators)
        {
            // v12 creators outrank every level, so only listing one in users (which the rules forbid) can go wrong.
            var creators = (createContent.OptionalStringArray("additional_creators", 100) ?? []).Append(creator);
            if (content["users"] is JsonObject users && creators.FirstOrDefault(users.ContainsKey) is { } listed)
            {
                throw MatrixException.InvalidParam($"Invalid {source}: users cannot list the room creator {listed} in room version {version.Identifier}");
            }

            return;
        }

        var levels = Lethe.Protocol.Auth.PowerLevels.FromContent(content, version, Lethe.Protocol.Auth.RoomCreators.None);
        foreach (var type in stateTypes)
        {
            if (!levels.CanSend(creator, type, isState: true))
            {
                throw MatrixException.InvalidParam($"Invalid {source}: you (level {levels.GetUserLevel(creator)}) could not set {type} while creating the room");
            }
        }

        if (invites && !levels.CanInvite(creator))
        {
            throw MatrixException.InvalidParam($"Invalid {source}: you (level {levels.GetUserLevel(creator)}) could not invite the users named in invite");
        }
    }

    private static List<(string Type, string StateKey, JsonObject Content)> ReadInitialState(JsonObject body)
    {
        var list = new List<(string, string, JsonObject)>();
        foreach (var item in body.OptionalArray("initial_state") ?? [])
        {
            if (item is not JsonObject e)
            {
                throw MatrixException.BadJson("initial_state entries must be objects");
            }

            var type = e.RequiredString("type", 255);
            var stateKey = e.OptionalString("state_key", 255) ?? "";
            var content = e.OptionalObject("content") ?? throw MatrixException.BadJson("initial_state entries need a content object");
            if (type is EventTypes.Create or EventTypes.Member)
            {
                throw MatrixException.Of(400, ErrCode.InvalidRoomState, $"{type} cannot be set through initial_state");
            }

            if (type == EventTypes.PowerLevels && (stateKey != "" || list.Any(s => s.Item1 == EventTypes.PowerLevels)))
            {
                throw MatrixException.Of(400, ErrCode.InvalidRoomState, "initial_state may hold one m.room.power_levels, with the empty state key");
            }

            if (type == EventTypes.Retention)
            {
                Retention.RetentionPolicy.Validate(content);
            }

            list.Add((type, stateKey, (JsonObject)content.DeepClone()));
        }

        return list;
    }

    /// <summary>The default power levels for a new room, merged with the client's override.</summary>
    /// <remarks>As Synapse does, the private presets let every member invite; in a public room inviting takes a moderator.</remarks>
    private static JsonObject PowerLevelContent(RoomVersion version, string preset, string creator, IReadOnlyList<string> trustedInvitees, JsonObject? overrides)
    {
        var users = new JsonObject();
        if (!version.PrivilegedCreators)
        {
            users[creator] = 100;
            foreach (var invitee in trustedInvitees)
            {
                users[invitee] = 100;
            }
        }

        var content = new JsonObject
        {
            ["users"] = users,
            ["users_default"] = 0,
            ["events"] = new JsonObject
            {
                [EventTypes.Name] = 50,
                [EventTypes.PowerLevels] = 100,
                [EventTypes.HistoryVisibility] = 100,
                [EventTypes.CanonicalAlias] = 50,
                ["m.room.avatar"] = 50,
                // v12 creators outrank everyone, so the tombstone level must sit above state_default explicitly.
                [EventTypes.Tombstone] = version.PrivilegedCreators ? 150 : 100,
                [EventTypes.ServerAcl] = 100,
                [EventTypes.Encryption] = 100,
            },
            ["events_default"] = 0,
            ["state_default"] = 50,
            ["ban"] = 50,
            ["kick"] = 50,
            ["redact"] = 50,
            ["invite"] = preset == "public_chat" ? 50 : 0,
            ["notifications"] = new JsonObject { ["room"] = 50 },
        };
        foreach (var kv in overrides ?? [])
        {
            content[kv.Key] = kv.Value?.DeepClone();
        }

        return content;
    }
}
