using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Events;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Rooms;

/// <summary>Joining, inviting, leaving, forgetting, kicking, banning, unbanning, knocking, and member lists.</summary>
public static class MembershipEndpoints
{
    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // POST /_matrix/client/v3/join/{roomIdOrAlias}
        app.MapClient("POST", "/join/{roomIdOrAlias}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var roomId = await ResolveAsync(hs, ctx.Route("roomIdOrAlias"), ctx.RequestAborted);
            return await JoinAsync(ctx, hs, requester, roomId);
        });

        // POST /_matrix/client/v3/rooms/{roomId}/join
        app.MapClient("POST", "/rooms/{roomId}/join", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            return await JoinAsync(ctx, hs, requester, ctx.Route("roomId"));
        });

        // POST /_matrix/client/v3/rooms/{roomId}/invite
        app.MapClient("POST", "/rooms/{roomId}/invite", ctx => TargetedAsync(ctx, hs, Membership.Invite));

        // POST /_matrix/client/v3/rooms/{roomId}/kick
        app.MapClient("POST", "/rooms/{roomId}/kick", ctx => TargetedAsync(ctx, hs, Membership.Leave));

        // POST /_matrix/client/v3/rooms/{roomId}/ban
        app.MapClient("POST", "/rooms/{roomId}/ban", ctx => TargetedAsync(ctx, hs, Membership.Ban));

        // POST /_matrix/client/v3/rooms/{roomId}/unban
        app.MapClient("POST", "/rooms/{roomId}/unban", ctx => TargetedAsync(ctx, hs, "unban"));

        // POST /_matrix/client/v3/rooms/{roomId}/leave
        app.MapClient("POST", "/rooms/{roomId}/leave", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var body = await JsonBody.ReadOptionalObjectAsync(ctx);
            await hs.Memberships.ChangeAsync(requester, ctx.Route("roomId"), requester.UserId, Membership.Leave, body.OptionalString("reason", 4096), null, ctx.RequestAborted);
            return new JsonObject();
        });

        // POST /_matrix/client/v3/rooms/{roomId}/forget
        app.MapClient("POST", "/rooms/{roomId}/forget", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var roomId = ctx.Route("roomId");
            var snap = await hs.Snapshots.GetAsync(roomId, ctx.RequestAborted);
            var membership = snap?.MembershipOf(requester.UserId);
            if (membership is Membership.Join or Membership.Invite or Membership.Knock)
            {
                throw MatrixException.Of(400, ErrCode.Unknown, "You must leave the room before forgetting it");
            }

            if (membership is null)
            {
                throw MatrixException.NotFound("You have never been in this room");
            }

            await hs.RoomStore.SetForgottenAsync(requester.UserId, roomId, true, hs.NowMs, ctx.RequestAborted);
            return new JsonObject();
        });

        // POST /_matrix/client/v3/knock/{roomIdOrAlias}
        app.MapClient("POST", "/knock/{roomIdOrAlias}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var roomId = await ResolveAsync(hs, ctx.Route("roomIdOrAlias"), ctx.RequestAborted);
            var body = await JsonBody.ReadOptionalObjectAsync(ctx);
            await hs.Consent.RequireAsync(requester.UserId, ctx.RequestAborted);
            await hs.Memberships.ChangeAsync(requester, roomId, requester.UserId, Membership.Knock, body.OptionalString("reason", 4096), null, ctx.RequestAborted);
            return new JsonObject { ["room_id"] = roomId };
        });

        // GET /_matrix/client/v3/rooms/{roomId}/members
        app.MapClient("GET", "/rooms/{roomId}/members", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var roomId = ctx.Route("roomId");
            var only = MembershipFilter(ctx.Query("membership"), "membership");
            var not = MembershipFilter(ctx.Query("not_membership"), "not_membership");
            var state = await hs.Access.VisibleStateAsync(requester.UserId, roomId, ctx.RequestAborted);
            if (ctx.Query("at") is { } at)
            {
                state = await StateAtTokenAsync(hs, requester.UserId, roomId, at, state, ctx.RequestAborted);
            }

            var members = await hs.Events.GetManyAsync(state.Where(kv => kv.Key.Type == EventTypes.Member).Select(kv => kv.Value), ctx.RequestAborted);
            var chosen = members.Values
                .Where(e => (only is null || e.Pdu.Membership == only) && (not is null || e.Pdu.Membership != not))
                .OrderBy(e => e.StreamOrdering);
            return new JsonObject { ["chunk"] = await hs.Format.ToClientAsync(chosen, RoomEndpoints.Viewer(requester), includeRoomId: true, ctx.RequestAborted) };
        });

        // GET /_matrix/client/v3/rooms/{roomId}/joined_members
        app.MapClient("GET", "/rooms/{roomId}/joined_members", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var roomId = ctx.Route("roomId");
            var state = await hs.Access.VisibleStateAsync(requester.UserId, roomId, ctx.RequestAborted);
            var members = await hs.Events.GetManyAsync(state.Where(kv => kv.Key.Type == EventTypes.Member).Select(kv => kv.Value), ctx.RequestAborted);
            var joined = new JsonObject();
            foreach (var e in members.Values.Where(e => e.Pdu.Membership == Membership.Join).OrderBy(e => e.Pdu.StateKey, StringComparer.Ordinal))
            {
                joined[e.Pdu.StateKey!] = new JsonObject
                {
                    ["display_name"] = e.Pdu.Content.GetString("displayname"),
                    ["avatar_url"] = e.Pdu.Content.GetString("avatar_url"),
                };
            }

            return new JsonObject { ["joined"] = joined };
        });
    }

    private static async ValueTask<JsonNode> JoinAsync(HttpContext ctx, HomeserverServices hs, Requester requester, string roomId)
    {
        var body = await JsonBody.ReadOptionalObjectAsync(ctx);
        if (await hs.Admin.NoticeRoomAsync(requester.UserId, ctx.RequestAborted) != roomId)
        {
            // Joining the server notices room is how a user reads the request for consent: never blocked.
            await hs.Consent.RequireAsync(requester.UserId, ctx.RequestAborted);
        }

        hs.RateLimiter.Take("rc_joins.local", requester.UserId);
        if (body.OptionalObject("third_party_signed") is not null)
        {
            throw MatrixException.Of(400, ErrCode.Unknown, "Third-party invites are not supported");
        }

        var snap = await hs.Snapshots.GetAsync(roomId, ctx.RequestAborted);
        if (snap?.MembershipOf(requester.UserId) == Membership.Join)
        {
            // Joining again is a no-op, as in Synapse (the client may retry after a lost response).
            return new JsonObject { ["room_id"] = roomId };
        }

        await hs.Memberships.ChangeAsync(requester, roomId, requester.UserId, Membership.Join, body.OptionalString("reason", 4096), null, ctx.RequestAborted);
        await hs.RoomStore.SetForgottenAsync(requester.UserId, roomId, false, hs.NowMs, ctx.RequestAborted);
        return new JsonObject { ["room_id"] = roomId };
    }

    private static async ValueTask<JsonNode> TargetedAsync(HttpContext ctx, HomeserverServices hs, string action)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        var roomId = ctx.Route("roomId");
        var body = await JsonBody.ReadObjectAsync(ctx);
        var target = body.RequiredString("user_id", 255);
        var reason = body.OptionalString("reason", 4096);
        await hs.Consent.RequireAsync(requester.UserId, ctx.RequestAborted);
        if (action == Membership.Invite)
        {
            hs.RateLimiter.Take("rc_invites.per_issuer", requester.UserId);
            hs.RateLimiter.Take("rc_invites.per_room", roomId);
            hs.RateLimiter.Take("rc_invites.per_user", target);
        }

        if (action == "unban")
        {
            var snap = await hs.Snapshots.GetAsync(roomId, ctx.RequestAborted);
            if (snap?.MembershipOf(target) != Membership.Ban)
            {
                throw MatrixException.Forbidden($"{target} is not banned");
            }

            action = Membership.Leave;
        }

        if (action == Membership.Leave && target == requester.UserId)
        {
            throw MatrixException.Forbidden("Use /leave to leave a room");
        }

        await hs.Memberships.ChangeAsync(requester, roomId, target, action, reason, null, ctx.RequestAborted);
        return new JsonObject();
    }

    /// <summary>Resolves a room ID or a local alias to a room ID.</summary>
    public static async Task<string> ResolveAsync(HomeserverServices hs, string roomIdOrAlias, CancellationToken ct)
    {
        if (roomIdOrAlias.StartsWith('!'))
        {
            return RoomId.TryParse(roomIdOrAlias, out _) ? roomIdOrAlias : throw MatrixException.InvalidParam("Invalid room ID");
        }

        if (!RoomAlias.TryParse(roomIdOrAlias, out _))
        {
            throw MatrixException.InvalidParam("Not a room ID or alias");
        }

        return (await hs.RoomStore.GetAliasAsync(roomIdOrAlias, ct))?.RoomId ?? throw MatrixException.NotFound($"Room alias {roomIdOrAlias} not found");
    }

    private static string? MembershipFilter(string? value, string name) =>
        value is null or Membership.Join or Membership.Invite or Membership.Knock or Membership.Leave or Membership.Ban
            ? value
            : throw MatrixException.InvalidParam($"'{name}' must be one of join, invite, knock, leave, ban");

    /// <summary>
    /// The room state as of a sync or pagination token (for <c>/members?at=</c>). <paramref name="visible"/> is what the
    /// requester may see now: for a former member, the state when they left, so a token from after their leave gets
    /// that state and not the room's later membership.
    /// </summary>
    private static async Task<IReadOnlyDictionary<StateKey, string>> StateAtTokenAsync(HomeserverServices hs, string userId, string roomId, string at, IReadOnlyDictionary<StateKey, string> visible, CancellationToken ct)
    {
        var position = Sync.SyncToken.EventsPositionOf(at) ?? throw MatrixException.InvalidParam("Invalid 'at' token");
        var snap = await hs.Snapshots.GetAsync(roomId, ct);
        if (snap is not null && snap.MembershipOf(userId) != Membership.Join && !await hs.Access.IsWorldReadableAsync(snap, ct)
            && visible.TryGetValue(new StateKey(EventTypes.Member, userId), out var leaveId)
            && await hs.Events.GetAsync(leaveId, ct) is { } leave && position >= leave.StreamOrdering)
        {
            return visible;
        }

        var page = await hs.EventStore.RoomPageAsync(roomId, 0, position + 1, backwards: true, 1, ct);
        if (page.Count == 0)
        {
            return visible;
        }

        var last = (await hs.Events.FromRowsAsync(page, ct))[0];
        var state = new Dictionary<StateKey, string>(await hs.StateStore.GetGroupAsync(last.Row.StateGroup, ct));
        if (last.Pdu.IsState)
        {
            state[last.Pdu.StateMapKey] = last.EventId;
        }

        return state;
    }
}
