using System.Globalization;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Storage;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Relations;

/// <summary>Jumping to a date: <c>/timestamp_to_event</c>.</summary>
public static class TimestampEndpoints
{
    /// <summary>Events scanned per round, and rounds before giving up: bounds the work when the reader may see little of the room.</summary>
    private const int Batch = 50;
    private const int MaxRounds = 40;

    /// <summary>Maps the endpoint.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs)
    {
        var store = new TimestampStore(hs.Database);

        // GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event
        app.MapClientV1("GET", "/rooms/{roomId}/timestamp_to_event", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            var roomId = ctx.Route("roomId");
            var tsText = ctx.Query("ts") ?? throw MatrixException.MissingParam("Missing 'ts'");
            if (!long.TryParse(tsText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var ts))
            {
                throw MatrixException.InvalidParam("ts must be an integer");
            }

            var forwards = (ctx.Query("dir") ?? throw MatrixException.MissingParam("Missing 'dir'")) switch
            {
                "f" => true,
                "b" => false,
                _ => throw MatrixException.InvalidParam("dir must be f or b"),
            };
            await RelationEndpoints.RequireReaderAsync(hs, requester, roomId, ctx.RequestAborted);

            // Closest by origin_server_ts in the direction asked (an event at exactly ts qualifies either way), skipping
            // events the reader may not see: the answer is the first visible one.
            var ignored = await hs.IgnoredUsersAsync(requester.UserId, ctx.RequestAborted);
            var (keyTs, keyStream) = (ts, forwards ? long.MinValue : long.MaxValue);
            for (var round = 0; round < MaxRounds; round++)
            {
                var rows = await store.ScanAsync(roomId, keyTs, keyStream, forwards, Batch, ctx.RequestAborted);
                if (rows.Count == 0)
                {
                    break;
                }

                var events = await hs.Events.FromRowsAsync(rows, ctx.RequestAborted);
                var visible = await hs.Visibility.FilterAsync(requester.UserId, roomId, events, ignored, ctx.RequestAborted);
                if (visible.Count > 0)
                {
                    return new JsonObject { ["event_id"] = visible[0].EventId, ["origin_server_ts"] = visible[0].Pdu.OriginServerTs };
                }

                (keyTs, keyStream) = (rows[^1].OriginServerTs, rows[^1].StreamOrdering);
                if (rows.Count < Batch)
                {
                    break;
                }
            }

            throw MatrixException.NotFound($"Unable to find event from {ts} in {(forwards ? "forward" : "backward")} direction");
        });
    }
}
