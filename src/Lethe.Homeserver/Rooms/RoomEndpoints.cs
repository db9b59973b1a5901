using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Rooms;

/// <summary>Creating rooms, sending events and state, redacting, reading single events and state.</summary>
public static class RoomEndpoints
{
    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // POST /_matrix/client/v3/createRoom
        app.MapClient("POST", "/createRoom", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var body = await JsonBody.ReadObjectAsync(ctx);
            await hs.Consent.RequireAsync(requester.UserId, ctx.RequestAborted);
            return new JsonObject { ["room_id"] = await hs.Creation.CreateAsync(requester, body, ctx.RequestAborted) };
        });

        // PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}
        app.MapClient("PUT", "/rooms/{roomId}/send/{eventType}/{txnId}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var roomId = ctx.Route("roomId");
            var type = RoomAccess.Segment(ctx.Route("eventType"), "event type");
            var content = await JsonBody.ReadObjectAsync(ctx);
            hs.RateLimiter.Take("rc_message", requester.UserId);
            await Relations.RelationRules.ValidateAsync(hs, roomId, requester.UserId, type, content, ctx.RequestAborted);
            await hs.Consent.RequireAsync(requester.UserId, ctx.RequestAborted);
            var e = await hs.Pipeline.SendAsync(new LocalEvent(roomId, requester.UserId, type, null, content)
            {
                SenderDevice = requester.DeviceId,
                TxnScope = "send:" + roomId,
                TxnId = RoomAccess.Segment(ctx.Route("txnId"), "transaction ID"),
                Redacts = type == EventTypes.Redaction ? content.GetString("redacts") : null,
            }, ctx.RequestAborted);
            return new JsonObject { ["event_id"] = e.EventId };
        });

        // PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}
        app.MapClient("PUT", "/rooms/{roomId}/state/{eventType}/{**stateKey}", ctx => PutStateAsync(ctx, hs));
        app.MapClient("PUT", "/rooms/{roomId}/state/{eventType}", ctx => PutStateAsync(ctx, hs));

        // GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}
        app.MapClient("GET", "/rooms/{roomId}/state/{eventType}/{**stateKey}", ctx => GetStateEventAsync(ctx, hs));
        app.MapClient("GET", "/rooms/{roomId}/state/{eventType}", ctx => GetStateEventAsync(ctx, hs));

        // GET /_matrix/client/v3/rooms/{roomId}/state
        app.MapClient("GET", "/rooms/{roomId}/state", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var state = await hs.Access.VisibleStateAsync(requester.UserId, ctx.Route("roomId"), ctx.RequestAborted);
            return await hs.Format.ToClientAsync(await hs.Access.LoadAsync(state, ctx.RequestAborted), Viewer(requester), includeRoomId: true, ctx.RequestAborted);
        });

        // PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}
        app.MapClient("PUT", "/rooms/{roomId}/redact/{eventId}/{txnId}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var roomId = ctx.Route("roomId");
            var targetId = ctx.Route("eventId");
            var body = await JsonBody.ReadOptionalObjectAsync(ctx);
            var reason = body.OptionalString("reason", 4096);
            var snap = await hs.Access.RequireJoinedAsync(requester.UserId, roomId, ctx.RequestAborted);
            var target = await hs.Events.GetAsync(targetId, ctx.RequestAborted);
            if (target is null || target.Row.RoomId != roomId || !await hs.Visibility.IsVisibleAsync(requester.UserId, target, ctx.RequestAborted))
            {
                throw MatrixException.NotFound("Event not found");
            }

            if (target.Pdu.Sender != requester.UserId && !await CanRedactOthersAsync(hs, snap, requester.UserId, ctx.RequestAborted))
            {
                throw MatrixException.Forbidden("You may only redact your own events");
            }

            hs.RateLimiter.Take("rc_admin_redaction", requester.UserId);
            var content = new JsonObject();
            if (snap.Version.RedactsInContent)
            {
                content["redacts"] = targetId;
            }

            if (reason is not null)
            {
                content["reason"] = reason;
            }

            var e = await hs.Pipeline.SendAsync(new LocalEvent(roomId, requester.UserId, EventTypes.Redaction, null, content)
            {
                SenderDevice = requester.DeviceId,
                TxnScope = "redact:" + roomId,
                TxnId = RoomAccess.Segment(ctx.Route("txnId"), "transaction ID"),
                Redacts = targetId,
            }, ctx.RequestAborted);
            return new JsonObject { ["event_id"] = e.EventId };
        });

        // GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}
        app.MapClient("GET", "/rooms/{roomId}/event/{eventId}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var e = await hs.Events.GetAsync(ctx.Route("eventId"), ctx.RequestAborted);
            var view = e is null || e.Row.RoomId != ctx.Route("roomId") ? null : await hs.Visibility.ViewAsync(requester.UserId, e, ctx.RequestAborted);
            if (view is null)
            {
                throw MatrixException.NotFound("Event not found");
            }

            return await hs.Format.ToClientAsync(view, Viewer(requester), includeRoomId: true, ctx.RequestAborted);
        });

        // GET /_matrix/client/v3/joined_rooms
        app.MapClient("GET", "/joined_rooms", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var joined = await hs.StateStore.RoomsForUserAsync(requester.UserId, [Membership.Join], ctx.RequestAborted);
            return new JsonObject { ["joined_rooms"] = new JsonArray(joined.Select(r => (JsonNode)r.RoomId).ToArray()) };
        });
    }

    /// <summary>The reader as the event formatter needs it.</summary>
    public static ClientEventFormat.Viewer Viewer(Requester requester) => new(requester.UserId, requester.DeviceId);

    private static async ValueTask<JsonNode> PutStateAsync(HttpContext ctx, HomeserverServices hs)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        var roomId = ctx.Route("roomId");
        var type = RoomAccess.Segment(ctx.Route("eventType"), "event type");
        var stateKey = RoomAccess.Segment(ctx.Request.RouteValues["stateKey"] as string ?? "", "state key");
        var content = await JsonBody.ReadObjectAsync(ctx);
        switch (type)
        {
            case EventTypes.Create:
                throw MatrixException.Forbidden("m.room.create cannot be sent after the room exists");
            case EventTypes.Member:
                // Membership changes go through the membership endpoints' checks, but clients may also use the state API.
                var membership = content.RequiredString("membership", 32);
                var reason = content.OptionalString("reason", 4096);
                var extra = (JsonObject)content.DeepClone();
                extra.Remove("membership");
                extra.Remove("reason");
                var changed = await hs.Memberships.ChangeAsync(requester, roomId, stateKey, membership, reason, extra, ctx.RequestAborted);
                return new JsonObject { ["event_id"] = changed.EventId };
            case EventTypes.CanonicalAlias:
                await ValidateCanonicalAliasAsync(hs, roomId, content, ctx.RequestAborted);
                break;
            case EventTypes.Retention:
                Retention.RetentionPolicy.Validate(content);
                break;
        }

        var snap = await hs.Snapshots.GetAsync(roomId, ctx.RequestAborted);
        if (snap?.StateEventId(type, stateKey) is { } currentId && await hs.Events.GetAsync(currentId, ctx.RequestAborted) is { } current
            && current.Pdu.Sender == requester.UserId && JsonNode.DeepEquals(current.Pdu.Content, content))
        {
            // Setting state to what it already is sends nothing, as Synapse does.
            return new JsonObject { ["event_id"] = currentId };
        }

        await hs.Consent.RequireAsync(requester.UserId, ctx.RequestAborted);
        var e = await hs.Pipeline.SendAsync(new LocalEvent(roomId, requester.UserId, type, stateKey, content) { SenderDevice = requester.DeviceId }, ctx.RequestAborted);
        return new JsonObject { ["event_id"] = e.EventId };
    }

    private static async ValueTask<JsonNode> GetStateEventAsync(HttpContext ctx, HomeserverServices hs)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        var type = ctx.Route("eventType");
        var stateKey = ctx.Request.RouteValues["stateKey"] as string ?? "";
        var state = await hs.Access.VisibleStateAsync(requester.UserId, ctx.Route("roomId"), ctx.RequestAborted);
        if (!state.TryGetValue(new StateKey(type, stateKey), out var id) || await hs.Events.GetAsync(id, ctx.RequestAborted) is not { } e)
        {
            throw MatrixException.NotFound("No such state event");
        }

        return ctx.Query("format") == "event"
            ? await hs.Format.ToClientAsync(e, Viewer(requester), includeRoomId: true, ctx.RequestAborted)
            : e.Pdu.Content.DeepClone();
    }

    private static async Task ValidateCanonicalAliasAsync(HomeserverServices hs, string roomId, JsonObject content, CancellationToken ct)
    {
        var aliases = new List<string>();
        if (content.OptionalString("alias", 255) is { } alias)
        {
            aliases.Add(alias);
        }

        aliases.AddRange(content.OptionalStringArray("alt_aliases", 100) ?? []);
        foreach (var a in aliases)
        {
            if (!Lethe.Protocol.Identifiers.RoomAlias.TryParse(a, out var parsed))
            {
                throw MatrixException.InvalidParam($"'{a}' is not a room alias");
            }

            // Local aliases must point at this room; remote ones cannot be checked without federation.
            if (parsed.Server.Value == hs.ServerName && (await hs.RoomStore.GetAliasAsync(a, ct))?.RoomId != roomId)
            {
                throw MatrixException.Of(400, "M_BAD_ALIAS", $"{a} does not point to this room");
            }
        }
    }

    private static async Task<bool> CanRedactOthersAsync(HomeserverServices hs, RoomSnapshot snap, string userId, CancellationToken ct)
    {
        var create = (await hs.Events.GetAsync(snap.StateEventId(EventTypes.Create)!, ct))!.Pdu;
        var levelsId = snap.StateEventId(EventTypes.PowerLevels);
        var levels = PowerLevels.FromState(create, levelsId is null ? null : (await hs.Events.GetAsync(levelsId, ct))?.Pdu);
        return levels.GetUserLevel(userId) >= levels.Redact;
    }
}
