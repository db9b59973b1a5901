using System.Text;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Ephemeral;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Lethe.Homeserver.Sync;

/// <summary><c>/sync</c> (initial, incremental and long-polling) and the filter API.</summary>
public static class SyncEndpoints
{
    /// <summary>Longest long-poll honoured (ms).</summary>
    public const int MaxTimeoutMs = 300_000;

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder app, HomeserverServices hs, CancellationToken stopping)
    {
        // GET /_matrix/client/v3/sync
        app.MapClient("GET", "/sync", ctx => SyncAsync(ctx, hs, stopping));

        // POST /_matrix/client/v3/user/{userId}/filter
        app.MapClient("POST", "/user/{userId}/filter", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            if (ctx.Route("userId") != requester.UserId)
            {
                throw MatrixException.Forbidden("You can only create filters for yourself");
            }

            var body = await JsonBody.ReadObjectAsync(ctx, limit: 64 * 1024);
            SyncFilter.Parse(body);
            var id = await hs.Filters.AddAsync(requester.UserId, CanonicalJson.Encode(body), ctx.RequestAborted);
            return new JsonObject { ["filter_id"] = id.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        });

        // GET /_matrix/client/v3/user/{userId}/filter/{filterId}
        app.MapClient("GET", "/user/{userId}/filter/{filterId}", async ctx =>
        {
            var requester = await hs.Auth.RequireAsync(ctx);
            if (ctx.Route("userId") != requester.UserId)
            {
                throw MatrixException.Forbidden("You can only read your own filters");
            }

            var json = long.TryParse(ctx.Route("filterId"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id)
                ? await hs.Filters.GetAsync(requester.UserId, id, ctx.RequestAborted)
                : null;
            return json is null ? throw MatrixException.NotFound("No such filter") : CanonicalJson.ParseObject(json);
        });
    }

    private static async ValueTask<JsonNode> SyncAsync(HttpContext ctx, HomeserverServices hs, CancellationToken stopping)
    {
        var requester = await hs.Auth.RequireAsync(ctx);
        // A user who has not accepted the privacy policy gets the consent notice (once per version) as they sync.
        await hs.Consent.NoticeIfNeededAsync(requester.UserId, ctx.RequestAborted);
        var filter = await ResolveFilterAsync(hs, requester.UserId, ctx.Query("filter"), ctx.RequestAborted);
        SyncToken? since = ctx.Query("since") is { Length: > 0 } s ? SyncToken.Parse(s) : null;
        var fullState = ctx.Query("full_state") == "true";
        var timeout = ctx.Query("timeout") is { } t
            ? int.TryParse(t, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms) ? Math.Min(ms, MaxTimeoutMs) : throw MatrixException.InvalidParam("timeout must be a non-negative integer")
            : 0;
        var setPresence = ctx.Query("set_presence") ?? "online";
        if (setPresence is not ("online" or "offline" or "unavailable"))
        {
            throw MatrixException.InvalidParam("set_presence must be online, offline or unavailable");
        }

        // The user counts as syncing (so does not time out to offline) until this request ends.
        // As in Synapse, every sync takes from rc_presence; one over it still syncs, but does not change the presence.
        var applyPresence = hs.RateLimiter.TryTake("rc_presence.per_user", requester.UserId, out _);
        using var syncing = await hs.PresenceTracker.SyncStartedAsync(requester.UserId, setPresence, applyPresence, ctx.RequestAborted);

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping);
        var deadline = hs.Clock.GetUtcNow().AddMilliseconds(timeout);
        while (true)
        {
            // Take the signal before reading, so a commit during the build wakes the wait below.
            var signal = hs.Notifier.SignalFor(requester.UserId);
            var upTo = Current(hs);
            var builder = new Sync.SyncResponseBuilder(hs, requester, filter, fullState, ctx.RequestAborted);
            var response = await builder.BuildAsync(since, upTo);
            var remaining = deadline - hs.Clock.GetUtcNow();
            if (since is null || fullState || builder.HasContent || remaining <= TimeSpan.Zero || linked.IsCancellationRequested)
            {
                return response;
            }

            // Typing notifications expire without any commit; wake for the next expiry in the user's rooms too.
            var wake = remaining;
            var rooms = await hs.Notifier.RoomsOfAsync(requester.UserId, ctx.RequestAborted);
            if (hs.Typing.NextExpiry(rooms.Keys) is { } expiry)
            {
                var untilExpiry = TimeSpan.FromMilliseconds(Math.Max(1, expiry - hs.NowMs));
                wake = untilExpiry < wake ? untilExpiry : wake;
            }

            hs.Metrics.SyncWaiters.Add(1);
            try
            {
                await signal.WaitAsync(wake, hs.Clock, linked.Token);
            }
            catch (TimeoutException)
            {
                // Nothing arrived in time: loop once more to return an empty incremental response (or a typing expiry).
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested && !ctx.RequestAborted.IsCancellationRequested)
            {
                // Shutting down: answer the long-poll now with what there is.
            }
            finally
            {
                hs.Metrics.SyncWaiters.Add(-1);
            }
        }
    }

    /// <summary>The current position of every stream.</summary>
    public static SyncToken Current(HomeserverServices hs) => new(
        hs.Streams.Current(StreamTracker.Events),
        hs.Streams.Current(StreamTracker.AccountData),
        hs.Streams.Current(StreamTracker.Receipts),
        hs.Streams.Current(StreamTracker.Presence),
        hs.Typing.Current,
        hs.Streams.Current(StreamTracker.ToDevice),
        hs.Streams.Current(StreamTracker.DeviceLists));

    private static async Task<SyncFilter> ResolveFilterAsync(HomeserverServices hs, string userId, string? filter, CancellationToken ct)
    {
        if (filter is null)
        {
            return SyncFilter.Default;
        }

        if (filter.StartsWith('{'))
        {
            try
            {
                return SyncFilter.Parse(CanonicalJson.ParseObject(Encoding.UTF8.GetBytes(filter)));
            }
            catch (CanonicalJsonException e)
            {
                throw MatrixException.NotJson("filter is not valid JSON: " + e.Message);
            }
        }

        if (!long.TryParse(filter, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id)
            || await hs.Filters.GetAsync(userId, id, ct) is not { } json)
        {
            throw MatrixException.NotFound("No such filter");
        }

        return SyncFilter.Parse(CanonicalJson.ParseObject(json));
    }
}
