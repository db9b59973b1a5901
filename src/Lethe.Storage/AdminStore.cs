using Dapper;

namespace Lethe.Storage;

/// <summary>A local account as the admin API lists it.</summary>
public sealed record AdminUserRow
{
    /// <summary>User ID.</summary>
    public required string UserId { get; init; }

    /// <summary>Server admin.</summary>
    public bool IsAdmin { get; init; }

    /// <summary>Guest account.</summary>
    public bool IsGuest { get; init; }

    /// <summary>User type (e.g. <c>bot</c>, <c>support</c>), or null.</summary>
    public string? UserType { get; init; }

    /// <summary>Application service that owns the account, or null.</summary>
    public string? AppserviceId { get; init; }

    /// <summary>Deactivated.</summary>
    public bool Deactivated { get; init; }

    /// <summary>Erased at deactivation.</summary>
    public bool Erased { get; init; }

    /// <summary>Creation time (ms).</summary>
    public long CreatedTs { get; init; }

    /// <summary>Display name.</summary>
    public string? Displayname { get; init; }

    /// <summary>Avatar URL.</summary>
    public string? AvatarUrl { get; init; }
}

/// <summary>Queries behind Synapse's admin API: listing and searching accounts and rooms.</summary>
public sealed class AdminStore(Database db)
{
    private const string UserColumns =
        "u.user_id, u.is_admin, u.is_guest, u.user_type, u.appservice_id, u.deactivated, (e.user_id IS NOT NULL) AS erased, u.created_ts, p.displayname, p.avatar_url";

    private static readonly Dictionary<string, string> UserOrder = new(StringComparer.Ordinal)
    {
        ["name"] = "u.user_id",
        ["displayname"] = "p.displayname",
        ["creation_ts"] = "u.created_ts",
        ["admin"] = "u.is_admin",
        ["deactivated"] = "u.deactivated",
        ["is_guest"] = "u.is_guest",
        ["user_type"] = "u.user_type",
        ["avatar_url"] = "p.avatar_url",
    };

    /// <summary>True when <paramref name="orderBy"/> is a column the user list can be sorted by.</summary>
    public static bool IsUserOrder(string orderBy) => UserOrder.ContainsKey(orderBy);

    /// <summary>
    /// One page of accounts and the total matching. <paramref name="name"/> matches the user ID or display name,
    /// <paramref name="userId"/> the user ID (both case-insensitive substrings); guests and deactivated accounts only when asked for.
    /// </summary>
    public Task<(List<AdminUserRow> Users, long Total)> UsersAsync(
        long from, int limit, string? name, string? userId, bool guests, bool deactivated, string orderBy, bool backwards, CancellationToken ct = default) =>
        db.ReadAsync(async c =>
        {
            var where = $"""
                WHERE (@name IS NULL OR LOWER(u.user_id) LIKE @name ESCAPE '\' OR LOWER(COALESCE(p.displayname, '')) LIKE @name ESCAPE '\')
                  AND (@userId IS NULL OR LOWER(u.user_id) LIKE @userId ESCAPE '\')
                  AND ({(guests ? "TRUE" : "NOT u.is_guest")}) AND ({(deactivated ? "TRUE" : "NOT u.deactivated")})
                """;
            var args = new { name = Like(name), userId = Like(userId), from, limit };
            const string Tables = "FROM users u LEFT JOIN profiles p ON p.user_id = u.user_id LEFT JOIN erased_users e ON e.user_id = u.user_id";
            var dir = backwards ? "DESC" : "ASC";
            var rows = (await c.QueryAsync<AdminUserRow>(
                $"SELECT {UserColumns} {Tables} {where} ORDER BY {UserOrder[orderBy]} {dir}, u.user_id {dir} LIMIT @limit OFFSET @from", args)).ToList();
            var total = await c.ExecuteScalarAsync<long>($"SELECT COUNT(*) {Tables} {where}", args);
            return (rows, total);
        }, ct);

    /// <summary>One account, or null.</summary>
    public Task<AdminUserRow?> UserAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.QuerySingleOrDefaultAsync<AdminUserRow>(
            $"SELECT {UserColumns} FROM users u LEFT JOIN profiles p ON p.user_id = u.user_id LEFT JOIN erased_users e ON e.user_id = u.user_id WHERE u.user_id = @userId",
            new { userId }), ct);

    /// <summary>Reactivates a deactivated account with a new password hash.</summary>
    public Task ReactivateAsync(string userId, string passwordHash, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "UPDATE users SET deactivated = FALSE, password_hash = @passwordHash WHERE user_id = @userId", new { userId, passwordHash }, tx), ct);

    /// <summary>Every room this server knows.</summary>
    public Task<List<RoomRecord>> RoomsAsync(CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<RoomRecord>(
            "SELECT room_id, room_version, creator, is_public, created_ts, current_state_group FROM rooms ORDER BY room_id")).ToList(), ct);

    /// <summary>
    /// Up to <paramref name="limit"/> non-state events of a room before stream position <paramref name="beforeStream"/>
    /// and sent before <paramref name="beforeTs"/>, oldest first, never the room's forward extremities; events of local
    /// senders (user IDs ending in <paramref name="localSuffix"/>) are left out unless it is null.
    /// </summary>
    public Task<List<string>> HistoryBatchAsync(string roomId, long beforeStream, long beforeTs, string? localSuffix, int limit, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(
            """
            SELECT e.event_id FROM events e
            WHERE e.room_id = @roomId AND e.stream_ordering < @beforeStream AND e.origin_server_ts < @beforeTs AND e.state_key IS NULL
              AND NOT EXISTS (SELECT 1 FROM room_forward_extremities x WHERE x.room_id = e.room_id AND x.event_id = e.event_id)
              AND (@local IS NULL OR e.sender NOT LIKE @local ESCAPE '\')
            ORDER BY e.stream_ordering LIMIT @limit
            """, new { roomId, beforeStream, beforeTs, local = localSuffix is null ? null : "%" + Escape(localSuffix), limit })).ToList(), ct);

    /// <summary>The room the user gets server notices in, or null.</summary>
    public Task<string?> NoticeRoomAsync(string userId, CancellationToken ct = default) =>
        db.ReadAsync(c => c.ExecuteScalarAsync<string?>("SELECT room_id FROM server_notice_rooms WHERE user_id = @userId", new { userId }), ct);

    /// <summary>Records the user's server notices room.</summary>
    public Task SetNoticeRoomAsync(string userId, string roomId, long now, CancellationToken ct = default) =>
        db.WriteAsync(tx => tx.Connection!.ExecuteAsync(
            "INSERT INTO server_notice_rooms (user_id, room_id, created_ts) VALUES (@userId, @roomId, @now) ON CONFLICT (user_id) DO UPDATE SET room_id = @roomId, created_ts = @now",
            new { userId, roomId, now }, tx), ct);

    /// <summary>Local media the room's stored events name (via their <c>mxc://</c> URLs), in media ID order.</summary>
    public Task<List<string>> RoomMediaAsync(string roomId, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<string>(
            "SELECT DISTINCT r.media_id FROM media_references r JOIN events e ON e.event_id = r.event_id WHERE e.room_id = @roomId ORDER BY r.media_id",
            new { roomId })).ToList(), ct);

    private static string? Like(string? term) => term is null ? null : "%" + Escape(term.ToLowerInvariant()) + "%";

    private static string Escape(string text) =>
        text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal);
}
