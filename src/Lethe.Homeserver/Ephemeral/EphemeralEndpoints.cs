using System.Text.Json.Nodes;
using Lethe.Homeserver.AccountData;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Rooms;
using Lethe.Homeserver.Sync;
using Lethe.Protocol.Events;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Ephemeral;

/// <summary>Typing notifications, read receipts, read markers and presence.</summary>
public static class EphemeralEndpoints
{
    /// <summary>Longest typing timeout honoured (ms).</summary>
    public const long MaxTypingTimeout = 120_000;

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}
        app.MapClient("PUT", "/rooms/{roomId}/typing/{userId}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            if (ctx.Route("userId") != requester.UserId)
            {
                throw MatrixException.Forbidden("You can only set your own typing status");
            }

            var roomId = ctx.Route("roomId");
            var body = await JsonBody.ReadObjectAsync(ctx);
            var typing = body["typing"] is not null ? body.OptionalBool("typing", false) : throw MatrixException.MissingParam("Missing 'typing'");
            var timeout = body.OptionalInteger("timeout", 0) ?? 30_000;
            var snap = await hs.Access.RequireJoinedAsync(requester.UserId, roomId, ctx.RequestAborted);
            if (hs.Typing.Set(roomId, requester.UserId, typing, Math.Min(timeout, MaxTypingTimeout)))
            {
                NotifyRoom(hs, snap);
            }

            return new JsonObject();
        });

        // POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}
        app.MapClient("POST", "/rooms/{roomId}/receipt/{receiptType}/{eventId}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var body = await JsonBody.ReadOptionalObjectAsync(ctx);
            var type = ctx.Route("receiptType");
            var roomId = ctx.Route("roomId");
            var eventId = ctx.Route("eventId");
            var threadId = body.OptionalString("thread_id", 255);
            if (type is not ("m.read" or "m.read.private" or "m.fully_read"))
            {
                throw MatrixException.InvalidParam("Receipt type must be m.read, m.read.private or m.fully_read");
            }

            if (threadId is not null && threadId != "main" && !threadId.StartsWith('$'))
            {
                throw MatrixException.InvalidParam("thread_id must be 'main' or an event ID");
            }

            if (type == "m.fully_read")
            {
                if (threadId is not null)
                {
                    throw MatrixException.InvalidParam("m.fully_read cannot be threaded");
                }

                await SetFullyReadAsync(hs, requester, roomId, eventId, ctx.RequestAborted);
            }
            else
            {
                await SetReceiptAsync(hs, requester, roomId, type, eventId, threadId ?? "", ctx.RequestAborted);
            }

            return new JsonObject();
        });

        // POST /_matrix/client/v3/rooms/{roomId}/read_markers
        app.MapClient("POST", "/rooms/{roomId}/read_markers", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var roomId = ctx.Route("roomId");
            var body = await JsonBody.ReadObjectAsync(ctx);
            if (body.OptionalString("m.fully_read", 255) is { } fullyRead)
            {
                await SetFullyReadAsync(hs, requester, roomId, fullyRead, ctx.RequestAborted);
            }

            foreach (var type in new[] { "m.read", "m.read.private" })
            {
                if (body.OptionalString(type, 255) is { } eventId)
                {
                    await SetReceiptAsync(hs, requester, roomId, type, eventId, "", ctx.RequestAborted);
                }
            }

            return new JsonObject();
        });

        // PUT /_matrix/client/v3/presence/{userId}/status
        app.MapClient("PUT", "/presence/{userId}/status", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            if (ctx.Route("userId") != requester.UserId)
            {
                throw MatrixException.Forbidden("You can only set your own presence");
            }

            var body = await JsonBody.ReadObjectAsync(ctx);
            var state = body.RequiredString("presence", 32);
            if (state is not ("online" or "offline" or "unavailable"))
            {
                throw MatrixException.InvalidParam("presence must be online, offline or unavailable");
            }

            // Syncs take from the same allowance (SyncEndpoints). With presence disabled the update is accepted and
            // ignored, as in Synapse.
            hs.RateLimiter.Take("rc_presence.per_user", requester.UserId);
            await hs.PresenceTracker.SetAsync(requester.UserId, state, body.OptionalString("status_msg", 1024), fromSync: false, ctx.RequestAborted);
            return new JsonObject();
        });

        // GET /_matrix/client/v3/presence/{userId}/status
        app.MapClient("GET", "/presence/{userId}/status", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var userId = ctx.Route("userId");
            if (userId != requester.UserId && !await SharesRoomAsync(hs, requester.UserId, userId, ctx.RequestAborted))
            {
                throw MatrixException.Forbidden("You do not share a room with this user");
            }

            if (!Lethe.Protocol.Identifiers.UserId.TryParse(userId, out var parsed) || parsed.Server.Value != hs.ServerName || await hs.Users.GetAsync(userId, ctx.RequestAborted) is null)
            {
                throw MatrixException.NotFound("Unknown user");
            }

            var presence = hs.Config.PresenceEnabled ? await hs.Presence.GetAsync(userId, ctx.RequestAborted) : null;
            return PresenceContent(hs, presence, userId);
        });
    }

    /// <summary>
    /// The content of an <c>m.presence</c> event (or the GET response) for a user: <c>last_active_ago</c> once they were ever
    /// active, <c>currently_active</c> only while online, as Synapse formats it.
    /// </summary>
    public static JsonObject PresenceContent(HomeserverServices hs, PresenceRow? presence, string userId)
    {
        var content = new JsonObject { ["presence"] = presence?.State ?? "offline" };
        if (presence is not null)
        {
            var lastActive = presence.LastActiveTs;
            if (presence.State == "online" && hs.PresenceTracker.LastActiveOf(userId) is { } tracked)
            {
                // An online user's stored time trails their activity by up to a minute (it is re-stored once a minute).
                lastActive = Math.Max(lastActive, tracked);
            }

            if (lastActive > 0)
            {
                content["last_active_ago"] = Math.Max(0, hs.NowMs - lastActive);
            }

            if (presence.StatusMsg is not null)
            {
                content["status_msg"] = presence.StatusMsg;
            }

            if (presence.State == "online")
            {
                content["currently_active"] = presence.CurrentlyActive;
            }
        }

        return content;
    }

    private static async Task SetReceiptAsync(HomeserverServices hs, Requester requester, string roomId, string type, string eventId, string threadId, CancellationToken ct)
    {
        var snap = await hs.Access.RequireJoinedAsync(requester.UserId, roomId, ct);
        var e = await hs.Events.GetAsync(eventId, ct);
        if (e is null || e.Row.RoomId != roomId || !await hs.Visibility.IsVisibleAsync(requester.UserId, e, ct))
        {
            throw MatrixException.NotFound("Event not found");
        }

        var stream = await hs.Receipts.SetAsync(new ReceiptRow
        {
            RoomId = roomId,
            ReceiptType = type,
            UserId = requester.UserId,
            ThreadId = threadId,
            EventId = eventId,
            EventStream = e.StreamOrdering,
            Ts = hs.NowMs,
        }, ct);
        if (stream is { } s)
        {
            hs.Streams.Advance(StreamTracker.Receipts, s);
            if (type == "m.read")
            {
                NotifyRoom(hs, snap);
            }
            else
            {
                hs.Notifier.Notify(requester.UserId);
            }
        }
    }

    private static async Task SetFullyReadAsync(HomeserverServices hs, Requester requester, string roomId, string eventId, CancellationToken ct)
    {
        await hs.Access.RequireJoinedAsync(requester.UserId, roomId, ct);
        var e = await hs.Events.GetAsync(eventId, ct);
        if (e is null || e.Row.RoomId != roomId)
        {
            throw MatrixException.NotFound("Event not found");
        }

        await AccountDataEndpoints.SetRawAsync(hs, requester.UserId, roomId, "m.fully_read", new JsonObject { ["event_id"] = eventId }, ct);
    }

    private static async Task<bool> SharesRoomAsync(HomeserverServices hs, string a, string b, CancellationToken ct)
    {
        foreach (var (roomId, _) in await hs.StateStore.RoomsForUserAsync(a, [Membership.Join], ct))
        {
            if ((await hs.Snapshots.GetAsync(roomId, ct))?.MembershipOf(b) == Membership.Join)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Wakes the syncs of a room's local joined members.</summary>
    public static void NotifyRoom(HomeserverServices hs, RoomSnapshot snap)
    {
        var suffix = ":" + hs.ServerName;
        foreach (var (user, membership) in snap.Memberships)
        {
            if (membership == Membership.Join && user.EndsWith(suffix, StringComparison.Ordinal))
            {
                hs.Notifier.Notify(user);
            }
        }
    }
}
