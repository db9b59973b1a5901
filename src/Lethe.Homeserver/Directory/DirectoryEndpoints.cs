using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Rooms;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

// The folder is Directory/, but a namespace Lethe.Homeserver.Directory would hide System.IO.Directory from every file
// under Lethe.Homeserver (Directory.CreateDirectory would resolve to the namespace), hence the plural.
namespace Lethe.Homeserver.Directories;

/// <summary>Room aliases, the published room directory (<c>/publicRooms</c>) and the user directory.</summary>
public static class DirectoryEndpoints
{
    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        var store = new DirectoryStore(hs.Database);
        var roomList = new PublicRoomList(hs, store);
        var users = new UserDirectory(hs, store);

        // PUT /_matrix/client/v3/directory/room/{roomAlias}
        app.MapClient("PUT", "/directory/room/{roomAlias}", async ctx =>
        {
            var requester = RequireNotGuest(await hs.Auth.RequireAsync(ctx));
            var alias = LocalAlias(hs, ctx.Route("roomAlias"));
            if (alias.Localpart.Length == 0 || alias.Localpart.Any(char.IsWhiteSpace))
            {
                throw MatrixException.InvalidParam("Room alias localpart must be non-empty and without whitespace");
            }

            var body = await JsonBody.ReadObjectAsync(ctx);
            var roomId = body.RequiredString("room_id", 255);
            if (!RoomId.TryParse(roomId, out _))
            {
                throw MatrixException.InvalidParam("Invalid room ID");
            }

            // As Synapse: an unknown room is a bad request, and only members (or server admins) may point aliases at a room.
            var snap = await hs.Snapshots.GetAsync(roomId, ctx.RequestAborted) ?? throw MatrixException.Of(400, ErrCode.Unknown, "Room does not exist");
            if (!requester.IsAdmin && snap.MembershipOf(requester.UserId) != Membership.Join)
            {
                throw MatrixException.Forbidden("You must be in the room to create an alias for it");
            }

            if (!await hs.RoomStore.TryCreateAliasAsync(alias.Value, roomId, requester.UserId, ctx.RequestAborted))
            {
                throw MatrixException.Of(409, ErrCode.Unknown, $"Room alias {alias.Value} already exists");
            }

            return new JsonObject();
        });

        // GET /_matrix/client/v3/directory/room/{roomAlias}
        app.MapClient("GET", "/directory/room/{roomAlias}", async ctx =>
        {
            // No access token needed (the spec gives this endpoint no security): aliases are public names.
            var text = ctx.Route("roomAlias");
            if (!RoomAlias.TryParse(text, out var alias))
            {
                throw MatrixException.InvalidParam("Room alias invalid");
            }

            // Other servers' aliases would be resolved over federation, which this server does not speak yet.
            var mapping = alias.Server.Value == hs.ServerName ? await hs.RoomStore.GetAliasAsync(alias.Value, ctx.RequestAborted) : null;
            if (mapping is not { } found)
            {
                throw MatrixException.NotFound($"Room alias {alias.Value} not found");
            }

            return new JsonObject { ["room_id"] = found.RoomId, ["servers"] = await ServersAsync(hs, found.RoomId, ctx.RequestAborted) };
        });

        // DELETE /_matrix/client/v3/directory/room/{roomAlias}
        app.MapClient("DELETE", "/directory/room/{roomAlias}", async ctx =>
        {
            var requester = RequireNotGuest(await hs.Auth.RequireAsync(ctx));
            var text = ctx.Route("roomAlias");
            if (!RoomAlias.TryParse(text, out var alias))
            {
                throw MatrixException.InvalidParam("Room alias invalid");
            }

            var (roomId, creator) = await hs.RoomStore.GetAliasAsync(alias.Value, ctx.RequestAborted) ?? throw MatrixException.NotFound($"Room alias {alias.Value} not found");
            if (creator != requester.UserId && !await CanEditDirectoryAsync(hs, requester, roomId, ctx.RequestAborted))
            {
                throw MatrixException.Forbidden("You don't have permission to delete the alias");
            }

            if (!await hs.RoomStore.DeleteAliasAsync(alias.Value, ctx.RequestAborted))
            {
                // Someone else deleted it between the check and now.
                throw MatrixException.NotFound($"Room alias {alias.Value} not found");
            }

            await RemoveFromCanonicalAliasAsync(hs, requester, roomId, alias.Value, ctx.RequestAborted);
            return new JsonObject();
        });

        // GET /_matrix/client/v3/rooms/{roomId}/aliases
        app.MapClient("GET", "/rooms/{roomId}/aliases", async ctx =>
        {
            var requester = RequireNotGuest(await hs.Auth.RequireAsync(ctx));
            var roomId = ctx.Route("roomId");
            if (!RoomId.TryParse(roomId, out _))
            {
                throw MatrixException.InvalidParam("Invalid room ID");
            }

            // Members, anyone for a world-readable room, and server admins (as Synapse); an unknown room looks like one you are not in.
            if (!requester.IsAdmin)
            {
                var snap = await hs.Snapshots.GetAsync(roomId, ctx.RequestAborted);
                if (snap is null || (snap.MembershipOf(requester.UserId) != Membership.Join && !await hs.Access.IsWorldReadableAsync(snap, ctx.RequestAborted)))
                {
                    throw MatrixException.Forbidden("You are not a member of the room");
                }
            }

            var aliases = await hs.RoomStore.AliasesAsync(roomId, ctx.RequestAborted);
            return new JsonObject { ["aliases"] = new JsonArray(aliases.Select(a => (JsonNode)a).ToArray()) };
        });

        // GET /_matrix/client/v3/directory/list/room/{roomId}
        app.MapClient("GET", "/directory/list/room/{roomId}", async ctx =>
        {
            // No access token needed: whether a room is published is what the public list shows anyway.
            var room = await hs.RoomStore.GetAsync(ctx.Route("roomId"), ctx.RequestAborted) ?? throw MatrixException.NotFound("Room not found");
            return new JsonObject { ["visibility"] = room.IsPublic ? "public" : "private" };
        });

        // PUT /_matrix/client/v3/directory/list/room/{roomId}
        app.MapClient("PUT", "/directory/list/room/{roomId}", async ctx =>
        {
            var requester = RequireNotGuest(await hs.Auth.RequireAsync(ctx));
            var roomId = ctx.Route("roomId");
            var body = await JsonBody.ReadObjectAsync(ctx);
            var visibility = body.OptionalString("visibility", 16) ?? "public";
            if (visibility is not ("public" or "private"))
            {
                throw MatrixException.InvalidParam("visibility must be public or private");
            }

            if (await hs.RoomStore.GetAsync(roomId, ctx.RequestAborted) is null)
            {
                throw MatrixException.NotFound("Room not found");
            }

            if (!await CanEditDirectoryAsync(hs, requester, roomId, ctx.RequestAborted))
            {
                throw MatrixException.Forbidden("You need the power to change the room's canonical alias to edit its directory entry");
            }

            await hs.RoomStore.SetPublicAsync(roomId, visibility == "public", ctx.RequestAborted);
            return new JsonObject();
        });

        // GET /_matrix/client/v3/publicRooms
        app.MapClient("GET", "/publicRooms", async ctx =>
        {
            // The spec lets anyone read the list; like Synapse, Lethe asks for a token unless allow_public_rooms_without_auth.
            var requester = hs.Config.AllowPublicRoomsWithoutAuth ? await hs.Auth.TryAuthenticateAsync(ctx) : await hs.Auth.RequireAsync(ctx);
            RequireLocalServer(hs, ctx.Query("server"), authenticated: requester is not null);
            long? limit = null;
            if (ctx.Query("limit") is { } limitText)
            {
                limit = long.TryParse(limitText, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var l)
                    ? l
                    : throw MatrixException.InvalidParam("limit must be an integer");
            }

            return await roomList.PageAsync(limit, ctx.Query("since"), PublicRoomFilter.None, ctx.RequestAborted);
        });

        // POST /_matrix/client/v3/publicRooms
        app.MapClient("POST", "/publicRooms", async ctx =>
        {
            await hs.Auth.RequireAsync(ctx);
            RequireLocalServer(hs, ctx.Query("server"), authenticated: true);
            var body = await JsonBody.ReadObjectAsync(ctx);
            var limit = body.OptionalInteger("limit");
            var since = body.OptionalString("since", 1024);
            var filter = ReadFilter(body.OptionalObject("filter"));
            var allNetworks = body.OptionalBool("include_all_networks", false);
            var network = body.OptionalString("third_party_instance_id", 255);
            if (allNetworks && network is not null)
            {
                throw MatrixException.InvalidParam("Can't use include_all_networks with an explicit network");
            }

            if (network is not null)
            {
                // Third-party networks are lists published by application services, which this server does not host:
                // every such list is empty (the main list is not what was asked for).
                return new JsonObject { ["chunk"] = new JsonArray(), ["total_room_count_estimate"] = 0 };
            }

            return await roomList.PageAsync(limit, since, filter, ctx.RequestAborted);
        });

        // POST /_matrix/client/v3/user_directory/search
        app.MapClient("POST", "/user_directory/search", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            if (requester.IsGuest)
            {
                throw MatrixException.Of(403, ErrCode.GuestAccessForbidden, "Guests cannot search the user directory");
            }

            hs.RateLimiter.Take("rc_user_directory", requester.UserId);
            var body = await JsonBody.ReadObjectAsync(ctx);
            var term = body.RequiredString("search_term", 1024);
            // Synapse clamps rather than rejects out-of-range limits.
            var limit = (int)Math.Clamp(body.OptionalInteger("limit") ?? 10, 0, 50);
            return await users.SearchAsync(requester.UserId, term, limit, ctx.RequestAborted);
        });
    }

    /// <summary>Guests may read the directory but not change it, as in Synapse.</summary>
    private static Requester RequireNotGuest(Requester requester) =>
        requester.IsGuest ? throw MatrixException.Of(403, ErrCode.GuestAccessForbidden, "Guest access is not allowed") : requester;

    /// <summary>Parses a room alias that must be on this server: 400 M_INVALID_PARAM otherwise.</summary>
    private static RoomAlias LocalAlias(HomeserverServices hs, string text)
    {
        if (!RoomAlias.TryParse(text, out var alias))
        {
            throw MatrixException.InvalidParam("Room alias invalid");
        }

        return alias.Server.Value == hs.ServerName ? alias : throw MatrixException.InvalidParam("Room alias must be on this server");
    }

    /// <summary>
    /// The <c>server</c> parameter of <c>/publicRooms</c>: this server's own list only. Other servers' lists need
    /// federation, which this server does not speak yet, so a remote name gets 404 (400 when it is not a server name).
    /// </summary>
    private static void RequireLocalServer(HomeserverServices hs, string? server, bool authenticated)
    {
        if (server is null || server == hs.ServerName)
        {
            return;
        }

        if (!authenticated)
        {
            // As Synapse: reading our own list may be open, asking us to fetch another server's never is.
            throw MatrixException.MissingToken();
        }

        if (!ServerName.IsValid(server))
        {
            throw MatrixException.InvalidParam($"Invalid server name: {server}");
        }

        throw MatrixException.NotFound($"Cannot list the rooms of {server}: this server does not federate yet");
    }

    /// <summary>The <c>filter</c> object of <c>POST /publicRooms</c>.</summary>
    private static PublicRoomFilter ReadFilter(JsonObject? filter)
    {
        if (filter is null)
        {
            return PublicRoomFilter.None;
        }

        var term = filter.OptionalString("generic_search_term", 1024);
        List<string?>? types = null;
        if (filter.OptionalArray("room_types") is { } array)
        {
            types = [];
            foreach (var item in array)
            {
                // null stands for rooms without a type.
                types.Add(item is null ? null : item.AsString() ?? throw MatrixException.BadJson("room_types must be an array of strings and nulls"));
            }
        }

        return new PublicRoomFilter(term, types);
    }

    /// <summary>
    /// Server admins, and joined members who could send <c>m.room.canonical_alias</c>, may edit a room's directory
    /// entries (Synapse's <c>check_can_change_room_list</c>).
    /// </summary>
    private static async Task<bool> CanEditDirectoryAsync(HomeserverServices hs, Requester requester, string roomId, CancellationToken ct)
    {
        if (requester.IsAdmin)
        {
            return true;
        }

        var snap = await hs.Snapshots.GetAsync(roomId, ct);
        if (snap?.MembershipOf(requester.UserId) != Membership.Join || snap.StateEventId(EventTypes.Create) is not { } createId
            || await hs.Events.GetAsync(createId, ct) is not { } create)
        {
            return false;
        }

        var levelsId = snap.StateEventId(EventTypes.PowerLevels);
        var levels = PowerLevels.FromState(create.Pdu, levelsId is null ? null : (await hs.Events.GetAsync(levelsId, ct))?.Pdu);
        return levels.CanSend(requester.UserId, EventTypes.CanonicalAlias, isState: true);
    }

    /// <summary>
    /// After an alias is deleted, drops it from the room's <c>m.room.canonical_alias</c> (alias and alt_aliases) so the
    /// room stops advertising a name that no longer resolves, as Synapse does. When the requester may not send that event
    /// the alias stays deleted and the event unchanged: the spec recommends the deletion succeed regardless.
    /// </summary>
    private static async Task RemoveFromCanonicalAliasAsync(HomeserverServices hs, Requester requester, string roomId, string alias, CancellationToken ct)
    {
        var snap = await hs.Snapshots.GetAsync(roomId, ct);
        if (snap?.StateEventId(EventTypes.CanonicalAlias) is not { } eventId || await hs.Events.GetAsync(eventId, ct) is not { } current)
        {
            return;
        }

        var content = (JsonObject)current.Pdu.Content.DeepClone();
        var changed = false;
        if (content.GetString("alias") == alias)
        {
            content.Remove("alias");
            changed = true;
        }

        if (content["alt_aliases"] is JsonArray alt && alt.Any(a => a.AsString() == alias))
        {
            var rest = alt.Where(a => a.AsString() != alias).Select(a => a?.DeepClone()).ToArray();
            if (rest.Length > 0)
            {
                content["alt_aliases"] = new JsonArray(rest);
            }
            else
            {
                content.Remove("alt_aliases");
            }

            changed = true;
        }

        if (!changed)
        {
            return;
        }

        try
        {
            await hs.Pipeline.SendAsync(new LocalEvent(roomId, requester.UserId, EventTypes.CanonicalAlias, "", content) { SenderDevice = requester.DeviceId }, ct);
        }
        catch (MatrixException e) when (e.Status == StatusCodes.Status403Forbidden)
        {
            // Not allowed to send it (e.g. the alias's creator has left the room): keep the deletion, as the spec advises.
        }
    }

    /// <summary>Servers to join the room through: this one first, then those of other joined members.</summary>
    private static async Task<JsonArray> ServersAsync(HomeserverServices hs, string roomId, CancellationToken ct)
    {
        var servers = new List<string> { hs.ServerName };
        if (await hs.Snapshots.GetAsync(roomId, ct) is { } snap)
        {
            foreach (var (userId, membership) in snap.Memberships)
            {
                if (membership == Membership.Join && UserId.TryParse(userId, out var parsed) && !servers.Contains(parsed.Server.Value))
                {
                    servers.Add(parsed.Server.Value);
                }
            }
        }

        return new JsonArray(servers.Select(s => (JsonNode)s).ToArray());
    }
}
