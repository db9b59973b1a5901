using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Events;
using Lethe.Protocol.Identifiers;
using Lethe.Storage;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Relations;

/// <summary>Reporting content to the server's administrators: events, rooms and users ("Reporting content").</summary>
public static class ReportEndpoints
{
    /// <summary>Longest reason kept, in bytes.</summary>
    private const int MaxReasonBytes = 4096;

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        var store = hs.Reports;

        // POST /_matrix/client/v3/rooms/{roomId}/report/{eventId}
        app.MapClient("POST", "/rooms/{roomId}/report/{eventId}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var roomId = ctx.Route("roomId");
            var eventId = ctx.Route("eventId");
            var body = await JsonBody.ReadObjectAsync(ctx);
            var reason = body.OptionalString("reason", MaxReasonBytes);
            var score = body.OptionalInteger("score", -100, 0);
            hs.RateLimiter.Take("rc_reports", requester.UserId);

            // spec 1.8: the reporter must be joined; the event must be one they can see (redacted ones are gone: 404, as Synapse).
            var snap = await hs.Snapshots.GetAsync(roomId, ctx.RequestAborted);
            var e = await hs.Events.GetAsync(eventId, ctx.RequestAborted);
            if (snap?.MembershipOf(requester.UserId) != Membership.Join || e is null || e.Row.RoomId != roomId || e.IsRedacted
                || !await hs.Visibility.IsVisibleAsync(requester.UserId, e, ctx.RequestAborted))
            {
                throw MatrixException.NotFound("Unable to report event: it does not exist or you aren't able to see it");
            }

            await store.AddAsync(new ReportRecord { RoomId = roomId, EventId = eventId, UserId = requester.UserId, Reason = reason, Score = score, ReceivedTs = hs.NowMs }, ctx.RequestAborted);
            return new JsonObject();
        });

        // POST /_matrix/client/v3/rooms/{roomId}/report
        app.MapClient("POST", "/rooms/{roomId}/report", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var roomId = ctx.Route("roomId");
            var body = await JsonBody.ReadObjectAsync(ctx);
            var reason = body.RequiredString("reason", MaxReasonBytes);
            hs.RateLimiter.Take("rc_reports", requester.UserId);

            // spec: no membership requirement (people meet rooms through the directory and invites too).
            if (await hs.RoomDirectory.TryVersionOfAsync(roomId, ctx.RequestAborted) is null)
            {
                throw MatrixException.NotFound("Room does not exist");
            }

            await store.AddAsync(new ReportRecord { RoomId = roomId, UserId = requester.UserId, Reason = reason, ReceivedTs = hs.NowMs }, ctx.RequestAborted);
            return new JsonObject();
        });

        // POST /_matrix/client/v3/users/{userId}/report
        app.MapClient("POST", "/users/{userId}/report", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var target = ctx.Route("userId");
            var body = await JsonBody.ReadObjectAsync(ctx);
            var reason = body.RequiredString("reason", MaxReasonBytes);
            if (!UserId.TryParse(target, out var parsed))
            {
                throw MatrixException.InvalidParam($"'{target}' is not a user ID");
            }

            hs.RateLimiter.Take("rc_reports", requester.UserId);

            // As Synapse: reports about users of other servers or unknown users are accepted and dropped, so the answer
            // does not reveal who exists.
            if (parsed.Server.Value == hs.ServerName && await hs.Users.GetAsync(target, ctx.RequestAborted) is not null)
            {
                await store.AddAsync(new ReportRecord { TargetUserId = target, UserId = requester.UserId, Reason = reason, ReceivedTs = hs.NowMs }, ctx.RequestAborted);
            }

            return new JsonObject();
        });
    }
}
