using System.Text;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Sync;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Rooms;

/// <summary>Reading room history: <c>/messages</c> pagination and <c>/context</c> around an event.</summary>
public static class HistoryEndpoints
{
    private const int MaxLimit = 1000;

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        // GET /_matrix/client/v3/rooms/{roomId}/messages
        app.MapClient("GET", "/rooms/{roomId}/messages", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var roomId = ctx.Route("roomId");
            await RequireEverMemberAsync(hs, requester.UserId, roomId, ctx.RequestAborted);
            var dir = ctx.Query("dir") ?? throw MatrixException.MissingParam("Missing 'dir'");
            if (dir is not ("b" or "f"))
            {
                throw MatrixException.InvalidParam("dir must be b or f");
            }

            var backwards = dir == "b";
            var limit = ParseLimit(ctx.Query("limit"), 10);
            var filter = ParseFilter(ctx.Query("filter"));
            limit = Math.Min(limit, filter.Limit ?? limit);
            var from = ctx.Query("from") is { } f ? Position(f, "from") : backwards ? hs.Streams.Current(StreamTracker.Events) : 0;
            long? to = ctx.Query("to") is { } t ? Position(t, "to") : null;

            var (events, end) = await PageAsync(hs, requester, roomId, from, to, backwards, limit, filter, ctx.RequestAborted);
            var body = new JsonObject
            {
                ["chunk"] = await hs.Format.ToClientAsync(events, RoomEndpoints.Viewer(requester), includeRoomId: true, ctx.RequestAborted),
                ["start"] = SyncToken.Pagination(from),
            };
            if (end is { } e)
            {
                body["end"] = SyncToken.Pagination(e);
            }

            if (filter.LazyLoadMembers && events.Count > 0)
            {
                body["state"] = await MembersOfSendersAsync(hs, requester, events, ctx.RequestAborted);
            }

            return body;
        });

        // GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}
        app.MapClient("GET", "/rooms/{roomId}/context/{eventId}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var roomId = ctx.Route("roomId");
            var stored = await hs.Events.GetAsync(ctx.Route("eventId"), ctx.RequestAborted);
            var target = stored is null || stored.Row.RoomId != roomId ? null : await hs.Visibility.ViewAsync(requester.UserId, stored, ctx.RequestAborted);
            if (target is null)
            {
                throw MatrixException.NotFound("Event not found");
            }

            var limit = ParseLimit(ctx.Query("limit"), 10);
            var filter = ParseFilter(ctx.Query("filter"));
            var beforeCount = limit / 2;
            var afterCount = limit - beforeCount;
            var (before, start) = await PageAsync(hs, requester, roomId, target.StreamOrdering - 1, null, backwards: true, beforeCount, filter, ctx.RequestAborted);
            var (after, end) = await PageAsync(hs, requester, roomId, target.StreamOrdering, null, backwards: false, afterCount, filter, ctx.RequestAborted);
            var viewer = RoomEndpoints.Viewer(requester);
            var last = after.Count > 0 ? after[^1] : target;
            var state = new Dictionary<StateKey, string>(await hs.StateStore.GetGroupAsync(last.Row.StateGroup, ctx.RequestAborted));
            if (last.Pdu.IsState)
            {
                state[last.Pdu.StateMapKey] = last.EventId;
            }

            JsonArray stateJson;
            if (filter.LazyLoadMembers)
            {
                stateJson = await MembersOfSendersAsync(hs, requester, before.Append(target).Concat(after).ToList(), ctx.RequestAborted);
            }
            else
            {
                stateJson = await hs.Format.ToClientAsync(await hs.Access.LoadAsync(state, ctx.RequestAborted), viewer, includeRoomId: true, ctx.RequestAborted);
            }

            return new JsonObject
            {
                ["event"] = await hs.Format.ToClientAsync(target, viewer, includeRoomId: true, ctx.RequestAborted),
                ["events_before"] = await hs.Format.ToClientAsync(before, viewer, includeRoomId: true, ctx.RequestAborted),
                ["events_after"] = await hs.Format.ToClientAsync(after, viewer, includeRoomId: true, ctx.RequestAborted),
                ["start"] = SyncToken.Pagination(start ?? 0),
                ["end"] = SyncToken.Pagination(end ?? hs.Streams.Current(StreamTracker.Events)),
                ["state"] = stateJson,
            };
        });
    }

    /// <summary>
    /// Up to <paramref name="limit"/> visible events matching the filter, scanning from the position <paramref name="from"/>
    /// (exclusive going forwards, inclusive going backwards) towards <paramref name="to"/>. Returns the events in
    /// reading direction and the token position to continue from, or null when the room's history is exhausted.
    /// </summary>
    public static async Task<(List<StoredEvent> Events, long? End)> PageAsync(
        HomeserverServices hs, Requester requester, string roomId, long from, long? to, bool backwards, int limit, RoomEventFilter filter, CancellationToken ct)
    {
        var result = new List<StoredEvent>();
        var position = from;
        var ignored = await hs.IgnoredUsersAsync(requester.UserId, ct);
        for (var round = 0; round < 20 && result.Count < limit; round++)
        {
            var batch = Math.Max(limit * 2, 20);
            var rows = backwards
                ? await hs.EventStore.RoomPageAsync(roomId, to ?? long.MinValue, position + 1, backwards: true, batch, ct)
                : await hs.EventStore.RoomPageAsync(roomId, position, to is { } t ? t + 1 : long.MaxValue, backwards: false, batch, ct);
            if (rows.Count == 0)
            {
                return (result, null);
            }

            var parsed = await hs.Events.FromRowsAsync(rows, ct);
            var visible = await hs.Visibility.FilterAsync(requester.UserId, roomId, parsed, ignored, ct);
            foreach (var e in visible)
            {
                if (result.Count == limit)
                {
                    break;
                }

                if (filter.Matches(e.Pdu.Type, e.Pdu.Sender, e.Pdu.Content))
                {
                    result.Add(e);
                }
            }

            // Continue from the last event taken; when the batch was consumed whole, from its end.
            var lastTaken = result.Count == limit ? result[^1].StreamOrdering : rows[^1].StreamOrdering;
            position = backwards ? lastTaken - 1 : lastTaken;
            if (rows.Count < batch && result.Count < limit)
            {
                return (result, null);
            }
        }

        return (result, position);
    }

    /// <summary>The member events (current state) of the senders of <paramref name="events"/>, for lazy-loading clients.</summary>
    private static async Task<JsonArray> MembersOfSendersAsync(HomeserverServices hs, Requester requester, IReadOnlyList<StoredEvent> events, CancellationToken ct)
    {
        var roomId = events[0].Row.RoomId;
        var state = await hs.Access.VisibleStateAsync(requester.UserId, roomId, ct);
        var ids = events.Select(e => e.Pdu.Sender).Distinct().Select(s => state.TryGetValue(new StateKey(EventTypes.Member, s), out var id) ? id : null).OfType<string>();
        var members = await hs.Events.GetManyAsync(ids, ct);
        return await hs.Format.ToClientAsync(members.Values.OrderBy(e => e.StreamOrdering), RoomEndpoints.Viewer(requester), includeRoomId: true, ct);
    }

    /// <summary>403 unless the user is or was in the room, or the room is world-readable.</summary>
    private static async Task RequireEverMemberAsync(HomeserverServices hs, string userId, string roomId, CancellationToken ct)
    {
        var snap = await hs.Snapshots.GetAsync(roomId, ct) ?? throw MatrixException.Forbidden("You are not in this room");
        if (snap.MembershipOf(userId) is null && !await hs.Access.IsWorldReadableAsync(snap, ct))
        {
            throw MatrixException.Forbidden("You are not in this room");
        }
    }

    /// <summary>Parses a <c>limit</c> query parameter (0–1000).</summary>
    public static int ParseLimit(string? text, int fallback)
    {
        if (text is null)
        {
            return fallback;
        }

        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var limit)
            ? Math.Min(limit, MaxLimit)
            : throw MatrixException.InvalidParam("limit must be a non-negative integer");
    }

    /// <summary>Parses a <c>filter</c> query parameter holding a RoomEventFilter as JSON.</summary>
    public static RoomEventFilter ParseFilter(string? text)
    {
        if (text is null)
        {
            return RoomEventFilter.All;
        }

        try
        {
            return RoomEventFilter.Parse(CanonicalJson.ParseObject(Encoding.UTF8.GetBytes(text)), "filter.");
        }
        catch (CanonicalJsonException e)
        {
            throw MatrixException.NotJson("filter is not valid JSON: " + e.Message);
        }
    }

    private static long Position(string token, string name) =>
        SyncToken.EventsPositionOf(token) ?? throw MatrixException.InvalidParam($"Invalid '{name}' token");
}
