using Dapper;

namespace Lethe.Storage;

/// <summary>One current state entry of a published room, with whether its event has been redacted.</summary>
public sealed record PublishedStateRow(string RoomId, string Type, string EventId, string? RedactedBy);

/// <summary>A user the directory search may return, with one room they are joined to (one row per room).</summary>
public sealed class UserDirectoryRow
{
    /// <summary>The user.</summary>
    public string UserId { get; init; } = "";

    /// <summary>Global display name, if set.</summary>
    public string? Displayname { get; init; }

    /// <summary>Global avatar URL, if set.</summary>
    public string? AvatarUrl { get; init; }

    /// <summary>A room the user is joined to.</summary>
    public string RoomId { get; init; } = "";

    /// <summary>The room's current <c>m.room.join_rules</c> event, if any.</summary>
    public string? JoinRulesId { get; init; }

    /// <summary>The room's current <c>m.room.history_visibility</c> event, if any.</summary>
    public string? HistoryVisibilityId { get; init; }

    /// <summary>Non-null when the searcher is joined to the same room.</summary>
    public string? SharedRoom { get; init; }
}

/// <summary>Reads for the room directory (published rooms) and the user directory.</summary>
public sealed class DirectoryStore(Database db)
{
    /// <summary>The current state entries of the given types (empty state key) of every published room.</summary>
    public Task<List<PublishedStateRow>> PublishedRoomStateAsync(string[] types, CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<PublishedStateRow>(
            $"""
            SELECT cs.room_id, cs.type, cs.event_id, e.redacted_by
            FROM rooms r
            JOIN current_state cs ON cs.room_id = r.room_id
            LEFT JOIN events e ON e.event_id = cs.event_id
            WHERE r.is_public AND cs.state_key = '' AND {db.In("cs.type", "types")}
            """, new { types = db.List(types) })).ToList(), ct);

    /// <summary>Every published room with its number of joined members (zero included).</summary>
    public Task<Dictionary<string, long>> PublishedJoinedCountsAsync(CancellationToken ct = default) =>
        db.ReadAsync(async c => (await c.QueryAsync<RoomCountRow>(
            """
            SELECT r.room_id, COUNT(cs.state_key) AS count
            FROM rooms r
            LEFT JOIN current_state cs ON cs.room_id = r.room_id AND cs.type = 'm.room.member' AND cs.membership = 'join'
            WHERE r.is_public
            GROUP BY r.room_id
            """)).ToDictionary(r => r.RoomId, r => r.Count, StringComparer.Ordinal), ct);

    /// <summary>
    /// Users the directory may list whose user ID or display name matches every one of <paramref name="likePatterns"/>
    /// (lower-case <c>LIKE</c> patterns, a superset the caller refines), at most <paramref name="maxUsers"/> of them:
    /// active accounts that are neither support nor application-service users and are joined to at least one room.
    /// One row per (user, joined room), carrying what the caller needs to decide visibility: the room's join rules and
    /// history visibility events, and whether <paramref name="searcher"/> is joined to it too.
    /// </summary>
    public Task<List<UserDirectoryRow>> SearchCandidatesAsync(string searcher, IReadOnlyList<string> likePatterns, int maxUsers, CancellationToken ct = default)
    {
        var args = new DynamicParameters();
        args.Add("searcher", searcher);
        args.Add("maxUsers", maxUsers);
        var matches = new System.Text.StringBuilder();
        for (var i = 0; i < likePatterns.Count; i++)
        {
            args.Add("w" + i, likePatterns[i]);
            matches.Append($" AND (LOWER(u.user_id) LIKE @w{i} OR LOWER(p.displayname) LIKE @w{i})");
        }

        // The candidate cap bounds the work per search, as Synapse's does; the rooms are joined after the cap.
        var sql = $"""
            WITH candidates AS (
                SELECT u.user_id, p.displayname, p.avatar_url
                FROM users u
                LEFT JOIN profiles p ON p.user_id = u.user_id
                WHERE NOT u.deactivated AND u.appservice_id IS NULL AND (u.user_type IS NULL OR u.user_type <> 'support')
                    {matches}
                    AND EXISTS (SELECT 1 FROM current_state j WHERE j.type = 'm.room.member' AND j.state_key = u.user_id AND j.membership = 'join')
                LIMIT @maxUsers
            )
            SELECT c.user_id, c.displayname, c.avatar_url, m.room_id,
                jr.event_id AS join_rules_id, hv.event_id AS history_visibility_id, s.room_id AS shared_room
            FROM candidates c
            JOIN current_state m ON m.type = 'm.room.member' AND m.state_key = c.user_id AND m.membership = 'join'
            LEFT JOIN current_state jr ON jr.room_id = m.room_id AND jr.type = 'm.room.join_rules' AND jr.state_key = ''
            LEFT JOIN current_state hv ON hv.room_id = m.room_id AND hv.type = 'm.room.history_visibility' AND hv.state_key = ''
            LEFT JOIN current_state s ON s.room_id = m.room_id AND s.type = 'm.room.member' AND s.state_key = @searcher AND s.membership = 'join'
            """;
        return db.ReadAsync(async c => (await c.QueryAsync<UserDirectoryRow>(sql, args)).ToList(), ct);
    }
}

internal readonly record struct RoomCountRow(string RoomId, long Count);
