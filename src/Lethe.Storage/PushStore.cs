using System.Data.Common;
using Dapper;

namespace Lethe.Storage;

/// <summary>
/// An event's stored push outcome: the shared outcome and the members whose outcome differs. Read back, it carries the
/// event's <c>origin_server_ts</c> (what retention expiry goes by); that is not stored with the outcome.
/// </summary>
public sealed record PushActionRow(string EventId, string RoomId, long StreamOrdering, string? ThreadId, long BaseOutcome, string Exceptions, long OriginServerTs = 0)
{
    /// <summary>The outcome for one user: 0 none, else 1 notify | 2 highlight | 4 sound.</summary>
    public long OutcomeFor(string userId)
    {
        var key = "\n" + userId + "\t";
        var at = Exceptions.IndexOf(key, StringComparison.Ordinal);
        if (at < 0)
        {
            return BaseOutcome;
        }

        var start = at + key.Length;
        var end = Exceptions.IndexOf('\n', start);
        return int.Parse(Exceptions.AsSpan(start, (end < 0 ? Exceptions.Length : end) - start), System.Globalization.CultureInfo.InvariantCulture);
    }
}

/// <summary>An HTTP pusher.</summary>
public sealed record PusherRow
{
    /// <summary>Owner.</summary>
    public required string UserId { get; init; }

    /// <summary>Application ID.</summary>
    public required string AppId { get; init; }

    /// <summary>Push key (device token at the gateway).</summary>
    public required string Pushkey { get; init; }

    /// <summary>Kind (<c>http</c>).</summary>
    public required string Kind { get; init; }

    /// <summary>Application display name.</summary>
    public required string AppDisplayName { get; init; }

    /// <summary>Device display name.</summary>
    public required string DeviceDisplayName { get; init; }

    /// <summary>Profile tag.</summary>
    public string? ProfileTag { get; init; }

    /// <summary>Language.</summary>
    public required string Lang { get; init; }

    /// <summary>The pusher's data object as JSON (url, format, custom keys).</summary>
    public required string Data { get; init; }

    /// <summary>The device that set it.</summary>
    public string? DeviceId { get; init; }

    /// <summary>When it was set (ms); sent to gateways as <c>pushkey_ts</c>.</summary>
    public long CreatedTs { get; init; }
}

/// <summary>Push outcomes per event, pushers, and bulk reads of push rules.</summary>
public sealed class PushStore(Database db)
{
    private const string ActionColumns = "event_id, room_id, stream_ordering, thread_id, base_outcome, exceptions";
    private const string PusherColumns = "user_id, app_id, pushkey, kind, app_display_name, device_display_name, profile_tag, lang, data, device_id, created_ts";

    /// <summary>Records an event's push outcomes in the caller's (the event's) transaction.</summary>
    public static Task InsertActionsAsync(DbTransaction tx, PushActionRow row) =>
        WriteCommands.ExecuteAsync(
            tx,
            $"INSERT INTO event_push_actions ({ActionColumns}) VALUES (@eventId, @roomId, @stream, @thread, @base, @exceptions)",
            ("eventId", row.EventId), ("roomId", row.RoomId), ("stream", row.StreamOrdering), ("thread", row.ThreadId), ("base", row.BaseOutcome), ("exceptions", row.Exceptions));

    /// <summary>
    /// The push outcomes in a room after <paramref name="after"/> that may count for <paramref name="reader"/>: events
    /// not sent by them or by users they ignore, not redacted, not expired (sent after <paramref name="expiredBefore"/>),
    /// oldest first, at most <paramref name="limit"/>.
    /// </summary>
    public Task<List<PushActionRow>> CandidatesAsync(string roomId, long after, string reader, IReadOnlyCollection<string> ignored, long expiredBefore, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<PushActionRow>(
            $"""
            SELECT a.event_id, a.room_id, a.stream_ordering, a.thread_id, a.base_outcome, a.exceptions, e.origin_server_ts FROM event_push_actions a
            JOIN events e ON e.event_id = a.event_id
            WHERE a.room_id = @roomId AND a.stream_ordering > @after AND e.sender <> @reader AND e.origin_server_ts > @expiredBefore
              AND e.redacted_by IS NULL AND e.rejected_reason IS NULL {(ignored.Count == 0 ? "" : "AND " + db.NotIn("e.sender", "ignored"))}
            ORDER BY a.stream_ordering LIMIT @limit
            """,
            new { roomId, after, reader, ignored = db.List(ignored), expiredBefore, limit })).ToList(), ct);

    /// <summary>Push outcomes in the given rooms before <paramref name="before"/>, newest first (the notifications list).</summary>
    public async Task<List<PushActionRow>> RecentAsync(IReadOnlyCollection<string> roomIds, string reader, long before, int limit, CancellationToken ct = default)
    {
        if (roomIds.Count == 0)
        {
            return [];
        }

        return await db.ReadAsync(async c => (await c.QueryAsync<PushActionRow>(
            $"""
            SELECT a.event_id, a.room_id, a.stream_ordering, a.thread_id, a.base_outcome, a.exceptions, e.origin_server_ts FROM event_push_actions a
            JOIN events e ON e.event_id = a.event_id
            WHERE {db.In("a.room_id", "rooms")} AND a.stream_ordering < @before AND e.sender <> @reader AND e.redacted_by IS NULL
            ORDER BY a.stream_ordering DESC LIMIT @limit
            """, new { rooms = db.List(roomIds), reader, before, limit })).ToList(), ct);
    }

    /// <summary>Stored <c>m.push_rules</c> account data of the given users (users without any are left out).</summary>
    public async Task<Dictionary<string, byte[]>> PushRulesOfAsync(IReadOnlyCollection<string> userIds, CancellationToken ct = default)
    {
        var result = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var chunk in userIds.Chunk(500))
        {
            var rows = await db.ReadAsync(c => c.QueryAsync<UserContentRow>(
                $"SELECT user_id, content FROM account_data WHERE room_id = '' AND type = 'm.push_rules' AND {db.In("user_id", "chunk")}", new { chunk = db.List(chunk) }), ct);
            foreach (var (user, content) in rows)
            {
                result[user] = content;
            }
        }

        return result;
    }

    /// <summary>A user's pushers.</summary>
    public Task<List<PusherRow>> PushersOfAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<PusherRow>($"SELECT {PusherColumns} FROM pushers WHERE user_id = @userId ORDER BY created_ts", new { userId })).ToList(), ct);

    /// <summary>Every user who has a pusher.</summary>
    public Task<List<string>> UsersWithPushersAsync(CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>("SELECT DISTINCT user_id FROM pushers")).ToList(), ct);

    /// <summary>Creates or replaces a pusher; unless <paramref name="append"/>, other users' pushers with the same app ID and pushkey go.</summary>
    public Task SetPusherAsync(PusherRow p, bool append, CancellationToken ct = default) =>
        db.WriteAsync(async tx =>
        {
            var c = tx.Connection!;
            if (!append)
            {
                await c.ExecuteAsync("DELETE FROM pushers WHERE app_id = @AppId AND pushkey = @Pushkey AND user_id <> @UserId", p, tx);
            }

            await c.ExecuteAsync(
                $"""
                INSERT INTO pushers ({PusherColumns}) VALUES (@UserId, @AppId, @Pushkey, @Kind, @AppDisplayName, @DeviceDisplayName, @ProfileTag, @Lang, @Data, @DeviceId, @CreatedTs)
                ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET kind = @Kind, app_display_name = @AppDisplayName, device_display_name = @DeviceDisplayName,
                    profile_tag = @ProfileTag, lang = @Lang, data = @Data, device_id = @DeviceId
                """, p, tx);
        }, ct);

    /// <summary>Deletes one pusher; false when there was none.</summary>
    public Task<bool> DeletePusherAsync(string userId, string appId, string pushkey, CancellationToken ct = default) =>
        db.WriteAsync(async tx => await tx.Connection!.ExecuteAsync(
            "DELETE FROM pushers WHERE user_id = @userId AND app_id = @appId AND pushkey = @pushkey", new { userId, appId, pushkey }, tx) > 0, ct);

    /// <summary>Deletes the pushers set from the given devices, in the caller's transaction (device deletion).</summary>
    public static async Task DeleteForDevicesAsync(DbTransaction tx, string userId, IEnumerable<string> deviceIds)
    {
        foreach (var deviceId in deviceIds)
        {
            await tx.Connection!.ExecuteAsync("DELETE FROM pushers WHERE user_id = @userId AND device_id = @deviceId", new { userId, deviceId }, tx);
        }
    }

    /// <summary>Deletes every pusher of a user, in the caller's transaction (deactivation).</summary>
    public static Task DeleteAllForUserAsync(DbTransaction tx, string userId) =>
        tx.Connection!.ExecuteAsync("DELETE FROM pushers WHERE user_id = @userId", new { userId }, tx);

    /// <summary>Deletes the push outcomes of purged events, in the caller's transaction; <paramref name="inClause"/> names the parameter <c>@ids</c>.</summary>
    public static Task DeleteActionsAsync(DbTransaction tx, string inClause, object ids) =>
        tx.Connection!.ExecuteAsync($"DELETE FROM event_push_actions WHERE {inClause}", new { ids }, tx);
}

internal readonly record struct UserContentRow(string UserId, byte[] Content);
