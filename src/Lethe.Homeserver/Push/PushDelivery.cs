using System.Net;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Rooms;
using Lethe.Protocol.Events;
using Lethe.Storage;
using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver.Push;

/// <summary>
/// Sends notifications to push gateways (<c>POST /_matrix/push/v1/notify</c>), off the write path. Failures (network
/// errors, 5xx, 429) are retried with exponential backoff; pushkeys the gateway rejects are deleted. Requests go only
/// to pusher URLs and only to addresses the <c>ip_range_*</c> rules allow, with no redirects.
/// </summary>
public sealed partial class PushDelivery : IAsyncDisposable
{
    /// <summary>Most attempts per notification and pusher (about half an hour of retries).</summary>
    private const int MaxAttempts = 12;

    private readonly HomeserverServices _hs;
    private readonly ILogger _logger;
    private readonly LazyHttpClient _http;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _concurrency = new(16, 16);
    private readonly HashSet<Task> _inFlight = [];

    /// <summary>Starts delivery for a server.</summary>
    public PushDelivery(HomeserverServices hs, ILogger logger)
    {
        _hs = hs;
        _logger = logger;
        _http = new LazyHttpClient(new OutboundAddressRules(hs.Config.IpRangeBlacklist, hs.Config.IpRangeWhitelist), TimeSpan.FromSeconds(30));
    }

    /// <summary>First retry delay; doubles per attempt up to five minutes.</summary>
    internal TimeSpan FirstRetry { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Queues the notifications of one persisted event.</summary>
    public void Enqueue(StoredEvent stored, RoomSnapshot before, IReadOnlyList<(string UserId, PushActions Actions)> targets)
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        Track(Task.Run(() => NotifyAllAsync(stored, before, targets, _stopping.Token)));
    }

    private void Track(Task task)
    {
        lock (_inFlight)
        {
            _inFlight.Add(task);
        }

        _ = task.ContinueWith(
            t =>
            {
                lock (_inFlight)
                {
                    _inFlight.Remove(t);
                }
            },
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task NotifyAllAsync(StoredEvent stored, RoomSnapshot before, IReadOnlyList<(string UserId, PushActions Actions)> targets, CancellationToken ct)
    {
        try
        {
            var facts = await RoomFactsAsync(stored.Pdu, before, ct);
            foreach (var (userId, actions) in targets)
            {
                var pushers = await _hs.Push.Store.PushersOfAsync(userId, ct);
                if (pushers.Count == 0)
                {
                    continue;
                }

                var unread = await _hs.Push.Counts.TotalAsync(userId, ct);
                foreach (var pusher in pushers)
                {
                    var body = Body(stored.Pdu, facts, userId, actions, pusher, unread);
                    Track(DeliverAsync(pusher, body, ct));
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Shutting down.
        }
        catch (Exception e) when (e is System.Data.Common.DbException or ObjectDisposedException or InvalidOperationException)
        {
            LogPrepareFailed(_logger, e, stored.EventId);
        }
    }

    private sealed record RoomFacts(string? RoomName, string? RoomAlias, string? SenderDisplayName, bool Encrypted);

    private async Task<RoomFacts> RoomFactsAsync(Pdu pdu, RoomSnapshot snap, CancellationToken ct)
    {
        async Task<JsonObject?> ContentAsync(string type, string key = "") =>
            snap.StateEventId(type, key) is { } id && await _hs.Events.GetAsync(id, ct) is { } e ? e.Pdu.Content : null;
        static string? Str(JsonObject? o, string key) => o?[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

        var encrypted = pdu.Type == "m.room.encrypted" || snap.StateEventId(EventTypes.Encryption) is not null;
        return new RoomFacts(
            Str(await ContentAsync(EventTypes.Name), "name"),
            Str(await ContentAsync(EventTypes.CanonicalAlias), "alias"),
            Str(await ContentAsync(EventTypes.Member, pdu.Sender), "displayname"),
            encrypted);
    }

    /// <summary>The notify request body for one pusher, per the push gateway API.</summary>
    private JsonObject Body(Pdu pdu, RoomFacts facts, string userId, PushActions actions, PusherRow pusher, int unread)
    {
        var data = JsonNode.Parse(pusher.Data) as JsonObject ?? [];
        var format = data["format"] is JsonValue f && f.TryGetValue<string>(out var fs) ? fs : null;
        data.Remove("url");
        var device = new JsonObject
        {
            ["app_id"] = pusher.AppId,
            ["pushkey"] = pusher.Pushkey,
            ["pushkey_ts"] = pusher.CreatedTs / 1000,
            ["data"] = data,
            ["tweaks"] = actions.Tweaks.DeepClone(),
        };
        var notification = new JsonObject
        {
            ["event_id"] = pdu.EventId,
            ["room_id"] = pdu.RoomId,
        };

        // Encrypted rooms never get more than IDs: the gateway (often a third party's) learns nothing about the message.
        var idsOnly = format == "event_id_only" || facts.Encrypted;
        if (!idsOnly)
        {
            notification["type"] = pdu.Type;
            notification["sender"] = pdu.Sender;
            if (facts.SenderDisplayName is { } senderName)
            {
                notification["sender_display_name"] = senderName;
            }

            if (facts.RoomName is { } roomName)
            {
                notification["room_name"] = roomName;
            }

            if (facts.RoomAlias is { } alias)
            {
                notification["room_alias"] = alias;
            }

            if (pdu.Type == EventTypes.Member)
            {
                notification["user_is_target"] = pdu.StateKey == userId;
            }

            if (_hs.Config.Push.IncludeContent)
            {
                notification["content"] = pdu.Content.DeepClone();
            }
        }

        notification["prio"] = actions.Highlight || actions.Sound is not null ? "high" : "low";
        notification["counts"] = new JsonObject { ["unread"] = unread };
        notification["devices"] = new JsonArray(device);
        return new JsonObject { ["notification"] = notification };
    }

    private async Task DeliverAsync(PusherRow pusher, JsonObject body, CancellationToken ct)
    {
        var url = JsonNode.Parse(pusher.Data)?["url"]?.GetValue<string>();
        if (url is null)
        {
            return;
        }

        var bytes = System.Text.Encoding.UTF8.GetBytes(body.ToJsonString());
        var delay = FirstRetry;
        for (var attempt = 1; attempt <= MaxAttempts && !ct.IsCancellationRequested; attempt++)
        {
            await _concurrency.WaitAsync(ct);
            HttpStatusCode? status = null;
            string? answer = null;
            try
            {
                // Byte array content: the request carries a Content-Length; some gateways cannot read chunked bodies.
                using var content = new ByteArrayContent(bytes);
                content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
                using var response = await _http.Client.PostAsync(url, content, ct);
                status = response.StatusCode;
                answer = await response.Content.ReadAsStringAsync(ct);
            }
            catch (HttpRequestException e) when (e.InnerException is OutboundAddressBlockedException)
            {
                LogBlocked(_logger, pusher.AppId);
                return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                LogAttemptFailed(_logger, pusher.AppId, attempt, e.Message);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            finally
            {
                _concurrency.Release();
            }

            if (status is { } s && (int)s is >= 200 and < 300)
            {
                try
                {
                    await RemoveRejectedAsync(pusher, answer, ct);
                }
                catch (Exception e) when (e is System.Data.Common.DbException or ObjectDisposedException or OperationCanceledException)
                {
                    // Delivered; removing a rejected pushkey waits for the gateway to reject it again.
                }

                return;
            }

            // Redirects are not followed (the gateway's address was checked when the pusher was set, the target of a
            // redirect was not) and asking again would get the same answer: like a 4xx, the notification is dropped.
            if (status is { } failed && (int)failed is >= 300 and < 500 && failed != HttpStatusCode.TooManyRequests)
            {
                LogRefused(_logger, pusher.AppId, (int)failed);
                return;
            }

            if (status is { } retryable)
            {
                LogAttemptFailed(_logger, pusher.AppId, attempt, "HTTP " + (int)retryable);
            }

            try
            {
                await Task.Delay(delay, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMinutes(5).Ticks));
        }
    }

    private async Task RemoveRejectedAsync(PusherRow pusher, string? answer, CancellationToken ct)
    {
        JsonNode? parsed = null;
        try
        {
            parsed = string.IsNullOrEmpty(answer) ? null : JsonNode.Parse(answer);
        }
        catch (System.Text.Json.JsonException)
        {
            // A gateway that answers 200 with no JSON accepted the notification.
        }

        if (parsed?["rejected"] is not JsonArray rejected)
        {
            return;
        }

        foreach (var key in rejected)
        {
            if (key is JsonValue v && v.TryGetValue<string>(out var pushkey) && pushkey == pusher.Pushkey)
            {
                await _hs.Push.Store.DeletePusherAsync(pusher.UserId, pusher.AppId, pusher.Pushkey, ct);
                await _hs.Push.RefreshPushUsersAsync(ct);
                LogRejected(_logger, pusher.AppId);
            }
        }
    }

    /// <summary>Waits until nothing is in flight (tests), or the timeout passes.</summary>
    internal async Task<bool> IdleAsync(TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < until)
        {
            Task[] pending;
            lock (_inFlight)
            {
                pending = [.. _inFlight];
            }

            if (pending.Length == 0)
            {
                return true;
            }

            await Task.WhenAny(Task.WhenAll(pending), Task.Delay(until - DateTime.UtcNow));
        }

        return false;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        Task[] pending;
        lock (_inFlight)
        {
            pending = [.. _inFlight];
        }

        try
        {
            await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or HttpRequestException or System.Data.Common.DbException or ObjectDisposedException)
        {
            // Undelivered notifications are dropped at shutdown; they are not kept across restarts.
        }

        _http.Dispose();
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Push to {AppId} failed (attempt {Attempt}): {Reason}")]
    private static partial void LogAttemptFailed(ILogger logger, string appId, int attempt, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Push gateway for {AppId} is in ip_range_blacklist; notification dropped")]
    private static partial void LogBlocked(ILogger logger, string appId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Push gateway for {AppId} refused a notification with HTTP {Status}; not retried")]
    private static partial void LogRefused(ILogger logger, string appId, int status);

    [LoggerMessage(Level = LogLevel.Information, Message = "Push gateway rejected a pushkey of {AppId}; the pusher was removed")]
    private static partial void LogRejected(ILogger logger, string appId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not prepare push notifications for {EventId}")]
    private static partial void LogPrepareFailed(ILogger logger, Exception exception, string eventId);
}
