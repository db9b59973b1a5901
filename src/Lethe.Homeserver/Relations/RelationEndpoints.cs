using System.Text.Json.Nodes;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Rooms;
using Lethe.Homeserver.Sync;
using Lethe.Protocol.Events;
using Lethe.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Relations;

/// <summary>Child events of an event (<c>/relations</c>) and the thread roots of a room (<c>/threads</c>).</summary>
public static class RelationEndpoints
{
    /// <summary>How deep <c>recurse=true</c> follows relations of relations (the spec asks for at least 3; Synapse uses 3).</summary>
    public const int RecursionDepth = 3;

    /// <summary>Default page sizes, as Synapse.</summary>
    private const int DefaultLimit = 5;

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        var store = new RelationStore(hs.Database);

        // GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}
        app.MapClientV1("GET", "/rooms/{roomId}/relations/{eventId}", ctx => RelationsAsync(ctx, hs, store));

        // GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}
        app.MapClientV1("GET", "/rooms/{roomId}/relations/{eventId}/{relType}", ctx => RelationsAsync(ctx, hs, store));

        // GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}
        app.MapClientV1("GET", "/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}", ctx => RelationsAsync(ctx, hs, store));

        // GET /_matrix/client/v1/rooms/{roomId}/threads
        app.MapClientV1("GET", "/rooms/{roomId}/threads", ctx => ThreadsAsync(ctx, hs, store));
    }

    private static async ValueTask<JsonNode> RelationsAsync(HttpContext ctx, HomeserverServices hs, RelationStore store)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        var roomId = ctx.Route("roomId");
        var parentId = ctx.Route("eventId");
        var relType = ctx.Request.RouteValues["relType"] is string r ? RoomAccess.Segment(r, "relation type") : null;
        var eventType = ctx.Request.RouteValues["eventType"] is string t ? RoomAccess.Segment(t, "event type") : null;
        var backwards = (ctx.Query("dir") ?? "b") switch
        {
            "b" => true,
            "f" => false,
            _ => throw MatrixException.InvalidParam("dir must be b or f"),
        };
        var limit = Math.Max(1, HistoryEndpoints.ParseLimit(ctx.Query("limit"), DefaultLimit));
        var recurse = ParseBool(ctx.Query("recurse") ?? ctx.Query("org.matrix.msc3981.recurse"), "recurse");
        var fromText = ctx.Query("from");
        long? from = fromText is null ? null : Position(fromText, "from");
        long? to = ctx.Query("to") is { } toText ? Position(toText, "to") : null;

        // The parent must exist in this room and be visible to the reader; otherwise nothing about it is revealed.
        var parent = await hs.Events.GetAsync(parentId, ctx.RequestAborted);
        if (parent is null || parent.Row.RoomId != roomId || !await hs.Visibility.IsVisibleAsync(requester.UserId, parent, ctx.RequestAborted))
        {
            throw MatrixException.NotFound("Unknown parent event");
        }

        // Tokens are positions between events (as for /messages): going backwards from tN covers events at or below N
        // down to (not including) the 'to' position; going forwards, events above N up to and including 'to'.
        var (after, before) = backwards
            ? (to ?? long.MinValue, from is { } fb ? fb + 1 : long.MaxValue)
            : (from ?? long.MinValue, to is { } tf ? tf + 1 : long.MaxValue);
        var rows = await store.PageAsync(roomId, parentId, relType, eventType, recurse ? RecursionDepth : 1, after, before, backwards, limit + 1, ctx.RequestAborted);
        var more = rows.Count > limit;
        if (more)
        {
            rows.RemoveAt(rows.Count - 1);
        }

        var children = await hs.Events.FromRowsAsync(rows, ctx.RequestAborted);
        if (parent.IsRedacted)
        {
            // Edits of a redacted event would reveal the content the redaction removed.
            children.RemoveAll(c => Relation.Of(c.Pdu.Content) is { RelType: RelationTypes.Replace } rel && rel.EventId == parentId);
        }

        // Paging runs over all children and the gate applies afterwards, so a page may be short but never skips any.
        var ignored = await hs.IgnoredUsersAsync(requester.UserId, ctx.RequestAborted);
        var visible = await hs.Visibility.FilterAsync(requester.UserId, roomId, children, ignored, ctx.RequestAborted);
        var body = new JsonObject
        {
            ["chunk"] = await hs.Format.ToClientAsync(visible, RoomEndpoints.Viewer(requester), includeRoomId: true, ctx.RequestAborted),
        };
        if (more)
        {
            var last = rows[^1].StreamOrdering;
            body["next_batch"] = SyncToken.Pagination(backwards ? last - 1 : last);
        }

        if (fromText is not null)
        {
            body["prev_batch"] = fromText;
        }

        if (recurse)
        {
            body["recursion_depth"] = RecursionDepth;
        }

        return body;
    }

    private static async ValueTask<JsonNode> ThreadsAsync(HttpContext ctx, HomeserverServices hs, RelationStore store)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        var roomId = ctx.Route("roomId");
        var participated = (ctx.Query("include") ?? "all") switch
        {
            "all" => false,
            "participated" => true,
            _ => throw MatrixException.InvalidParam("include must be all or participated"),
        };
        var limit = HistoryEndpoints.ParseLimit(ctx.Query("limit"), DefaultLimit);
        if (limit == 0)
        {
            throw MatrixException.InvalidParam("limit must be greater than zero");
        }

        var before = ctx.Query("from") is { } fromText ? Position(fromText, "from") : long.MaxValue;
        await RequireReaderAsync(hs, requester, roomId, ctx.RequestAborted);

        var threads = await store.ThreadsAsync(roomId, participated ? requester.UserId : null, before, limit + 1, ctx.RequestAborted);
        var more = threads.Count > limit;
        if (more)
        {
            threads.RemoveAt(threads.Count - 1);
        }

        var loaded = await hs.Events.GetManyAsync(threads.Select(t => t.RootId), ctx.RequestAborted);
        var roots = threads
            .Select(t => loaded.GetValueOrDefault(t.RootId))
            .OfType<StoredEvent>()
            .Where(e => e.Row.RoomId == roomId && Relation.Of(e.Pdu.Content) is null)
            .ToList();

        // Ignored users' roots are still listed, but redacted (spec: as a client aggregating locally would show them).
        var visible = await hs.Visibility.FilterAsync(requester.UserId, roomId, roots, null, ctx.RequestAborted);
        var ignored = await hs.IgnoredUsersAsync(requester.UserId, ctx.RequestAborted);
        var served = visible.Select(e => ignored.Contains(e.Pdu.Sender) && !e.IsRedacted ? Redacted(e) : e).ToList();
        var body = new JsonObject
        {
            ["chunk"] = await hs.Format.ToClientAsync(served, RoomEndpoints.Viewer(requester), includeRoomId: true, ctx.RequestAborted),
        };
        if (more)
        {
            body["next_batch"] = SyncToken.Pagination(threads[^1].Latest);
        }

        return body;
    }

    /// <summary>403 unless the user is or was in the room, or the room is world-readable (also for unknown rooms, so existence does not leak).</summary>
    public static async Task RequireReaderAsync(HomeserverServices hs, Requester requester, string roomId, CancellationToken ct)
    {
        var snap = await hs.Snapshots.GetAsync(roomId, ct) ?? throw MatrixException.Forbidden("You are not allowed to view this room");
        if (snap.MembershipOf(requester.UserId) is null && !await hs.Access.IsWorldReadableAsync(snap, ct))
        {
            throw MatrixException.Forbidden("You are not allowed to view this room");
        }
    }

    private static StoredEvent Redacted(StoredEvent e) =>
        StoredEvent.Persisted(e.Row, Pdu.FromJson(Redaction.Redact((JsonObject)e.Pdu.Json.DeepClone(), e.Pdu.RoomVersion), e.Pdu.RoomVersion));

    private static long Position(string token, string name) =>
        SyncToken.EventsPositionOf(token) ?? throw MatrixException.InvalidParam($"Invalid '{name}' token");

    private static bool ParseBool(string? text, string name) => text switch
    {
        null or "false" => false,
        "true" => true,
        _ => throw MatrixException.InvalidParam($"{name} must be true or false"),
    };
}
