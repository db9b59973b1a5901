using Dapper;

namespace Lethe.Storage;

/// <summary>A child event's relation with the event columns that aggregation needs (no JSON).</summary>
public sealed record RelationRow
{
    /// <summary>The child event.</summary>
    public required string EventId { get; init; }

    /// <summary>The parent event.</summary>
    public required string RelatesToId { get; init; }

    /// <summary>Relation type.</summary>
    public required string RelType { get; init; }

    /// <summary>Annotation key, if any.</summary>
    public string? AggregationKey { get; init; }

    /// <summary>The child's room.</summary>
    public required string RoomId { get; init; }

    /// <summary>The child's event type.</summary>
    public required string Type { get; init; }

    /// <summary>The child's sender.</summary>
    public required string Sender { get; init; }

    /// <summary>The child's stream position.</summary>
    public long StreamOrdering { get; init; }

    /// <summary>The child's timestamp.</summary>
    public long OriginServerTs { get; init; }
}

/// <summary>How many replies one sender made in one thread, and their newest reply's stream position.</summary>
public sealed record ThreadSenderRow
{
    /// <summary>The thread root.</summary>
    public required string RootId { get; init; }

    /// <summary>The sender.</summary>
    public required string Sender { get; init; }

    /// <summary>Their replies in the thread.</summary>
    public long Replies { get; init; }
}

/// <summary>
/// Queries over <c>event_relations</c> (written by the event pipeline) for /relations, /threads and bundled
/// aggregations. Children that were rejected or redacted are never returned: a redaction removes the relation
/// (the redacted content has no <c>m.relates_to</c> any more), as Synapse does by deleting the relation row.
/// </summary>
public sealed class RelationStore(Database db)
{
    private const string EventColumns = "e.event_id, e.stream_ordering, e.room_id, e.type, e.state_key, e.sender, e.origin_server_ts, e.depth, e.state_group, e.json, e.rejected_reason, e.redacted_by, e.received_ts, e.sender_device, e.txn_id";
    private const string RelationColumns = "r.event_id, r.relates_to_id, r.rel_type, r.aggregation_key, r.room_id, e.type, e.sender, e.stream_ordering, e.origin_server_ts";
    private const string LiveChild = "e.rejected_reason IS NULL AND e.redacted_by IS NULL";

    /// <summary>The (parent, relation type) pairs among <paramref name="parentIds"/> that have children of the given types: a cheap index-only probe before heavier queries.</summary>
    public async Task<HashSet<(string ParentId, string RelType)>> ChildTypesAsync(IReadOnlyCollection<string> parentIds, IReadOnlyCollection<string> relTypes, CancellationToken ct = default)
    {
        var result = new HashSet<(string, string)>();
        foreach (var chunk in parentIds.Distinct().Chunk(500))
        {
            var rows = await db.ReadAsync(c => c.QueryAsync<ParentTypeRow>(
                $"SELECT DISTINCT relates_to_id, rel_type FROM event_relations WHERE {db.In("relates_to_id", "chunk")} AND {db.In("rel_type", "types")}",
                new { chunk = db.List(chunk), types = db.List(relTypes) }), ct);
            result.UnionWith(rows.Select(r => (r.RelatesToId, r.RelType)));
        }

        return result;
    }

    /// <summary>Children of the given relation types of the given parents, oldest first.</summary>
    public async Task<List<RelationRow>> ChildrenAsync(IReadOnlyCollection<string> parentIds, IReadOnlyCollection<string> relTypes, CancellationToken ct = default)
    {
        var result = new List<RelationRow>();
        foreach (var chunk in parentIds.Distinct().Chunk(500))
        {
            result.AddRange(await db.ReadAsync(c => c.QueryAsync<RelationRow>(
                $"SELECT {RelationColumns} FROM event_relations r JOIN events e ON e.event_id = r.event_id WHERE {db.In("r.relates_to_id", "chunk")} AND {db.In("r.rel_type", "types")} AND {LiveChild}",
                new { chunk = db.List(chunk), types = db.List(relTypes) }), ct));
        }

        result.Sort((a, b) => a.StreamOrdering.CompareTo(b.StreamOrdering));
        return result;
    }

    /// <summary>Per thread root and sender, the number of <c>m.thread</c> replies: counts and participation without reading every reply.</summary>
    public async Task<List<ThreadSenderRow>> ThreadSendersAsync(IReadOnlyCollection<string> rootIds, CancellationToken ct = default)
    {
        var result = new List<ThreadSenderRow>();
        foreach (var chunk in rootIds.Distinct().Chunk(500))
        {
            result.AddRange(await db.ReadAsync(c => c.QueryAsync<ThreadSenderRow>(
                $"SELECT r.relates_to_id AS root_id, e.sender, COUNT(*) AS replies FROM event_relations r JOIN events e ON e.event_id = r.event_id WHERE {db.In("r.relates_to_id", "chunk")} AND r.rel_type = 'm.thread' AND {LiveChild} GROUP BY r.relates_to_id, e.sender",
                new { chunk = db.List(chunk) }), ct));
        }

        return result;
    }

    /// <summary>The newest <paramref name="perRoot"/> replies of each thread root, newest first per root.</summary>
    public async Task<List<RelationRow>> LatestThreadRepliesAsync(IReadOnlyCollection<string> rootIds, int perRoot, CancellationToken ct = default)
    {
        var result = new List<RelationRow>();
        foreach (var chunk in rootIds.Distinct().Chunk(500))
        {
            result.AddRange(await db.ReadAsync(c => c.QueryAsync<RelationRow>(
                $"""
                SELECT event_id, relates_to_id, rel_type, aggregation_key, room_id, type, sender, stream_ordering, origin_server_ts FROM (
                    SELECT {RelationColumns}, ROW_NUMBER() OVER (PARTITION BY r.relates_to_id ORDER BY e.stream_ordering DESC) AS rn
                    FROM event_relations r JOIN events e ON e.event_id = r.event_id
                    WHERE {db.In("r.relates_to_id", "chunk")} AND r.rel_type = 'm.thread' AND {LiveChild}
                ) ranked WHERE rn <= @perRoot
                """,
                new { chunk = db.List(chunk), perRoot }), ct));
        }

        result.Sort((a, b) => b.StreamOrdering.CompareTo(a.StreamOrdering));
        return result;
    }

    /// <summary>
    /// A page of the children of <paramref name="parentId"/> in a room by stream position: newest first below
    /// <paramref name="before"/> (exclusive) when <paramref name="backwards"/>, else oldest first above
    /// <paramref name="after"/> (exclusive), bounded by the other limit. With <paramref name="depth"/> above 1,
    /// children of children are included down to that many levels; the type filters apply at every level.
    /// </summary>
    public Task<List<EventRow>> PageAsync(
        string roomId, string parentId, string? relType, string? eventType, int depth, long after, long before, bool backwards, int limit, CancellationToken ct = default)
    {
        var typeFilter = eventType is null ? "" : " AND e.type = @eventType";
        var order = backwards ? "DESC" : "ASC";
        // Each event has one relation, so the walk is a tree; the depth bound also stops any cycle of forged IDs.
        var sql = depth <= 1
            ? $"""
               SELECT {EventColumns} FROM event_relations r JOIN events e ON e.event_id = r.event_id
               WHERE r.relates_to_id = @parentId AND r.room_id = @roomId{(relType is null ? "" : " AND r.rel_type = @relType")}{typeFilter}
               AND {LiveChild} AND e.stream_ordering > @after AND e.stream_ordering < @before
               ORDER BY e.stream_ordering {order} LIMIT @limit
               """
            : $"""
               WITH RECURSIVE related (event_id, rel_type, depth) AS (
                   SELECT event_id, rel_type, 1 FROM event_relations WHERE relates_to_id = @parentId AND room_id = @roomId
                   UNION
                   SELECT c.event_id, c.rel_type, p.depth + 1 FROM event_relations c JOIN related p ON c.relates_to_id = p.event_id
                   WHERE p.depth < @depth AND c.room_id = @roomId
               )
               SELECT {EventColumns} FROM events e
               WHERE e.event_id IN (SELECT event_id FROM related{(relType is null ? "" : " WHERE rel_type = @relType")}){typeFilter}
               AND {LiveChild} AND e.stream_ordering > @after AND e.stream_ordering < @before
               ORDER BY e.stream_ordering {order} LIMIT @limit
               """;
        return db.ReadAsync(async c => (await c.QueryAsync<EventRow>(sql, new { roomId, parentId, relType, eventType, depth, after, before, limit })).ToList(), ct);
    }

    /// <summary>
    /// A page of a room's thread roots with their latest live reply's stream position, most recently active first,
    /// active before <paramref name="before"/> (exclusive). With <paramref name="participant"/>, only threads that
    /// user started or replied in.
    /// </summary>
    public Task<List<ThreadRootRow>> ThreadsAsync(string roomId, string? participant, long before, int limit, CancellationToken ct = default)
    {
        var participated = participant is null
            ? ""
            : """
              AND (EXISTS (SELECT 1 FROM events root WHERE root.event_id = r.relates_to_id AND root.sender = @participant)
                   OR EXISTS (SELECT 1 FROM event_relations r2 JOIN events e2 ON e2.event_id = r2.event_id
                              WHERE r2.relates_to_id = r.relates_to_id AND r2.rel_type = 'm.thread' AND e2.sender = @participant
                              AND e2.rejected_reason IS NULL AND e2.redacted_by IS NULL))
              """;
        return db.ReadAsync(async c => (await c.QueryAsync<ThreadRootRow>(
            $"""
            SELECT r.relates_to_id AS root_id, MAX(e.stream_ordering) AS latest FROM event_relations r JOIN events e ON e.event_id = r.event_id
            WHERE r.room_id = @roomId AND r.rel_type = 'm.thread' AND {LiveChild} {participated}
            GROUP BY r.relates_to_id HAVING MAX(e.stream_ordering) < @before
            ORDER BY latest DESC LIMIT @limit
            """,
            new { roomId, participant, before, limit })).ToList(), ct);
    }

    /// <summary>True when <paramref name="sender"/> already has a live annotation of <paramref name="parentId"/> with this event type and key.</summary>
    public Task<bool> HasAnnotatedAsync(string parentId, string type, string key, string sender, CancellationToken ct = default) =>
        db.ReadAsync(async c => await c.ExecuteScalarAsync<long?>(
            $"SELECT 1 FROM event_relations r JOIN events e ON e.event_id = r.event_id WHERE r.relates_to_id = @parentId AND r.rel_type = 'm.annotation' AND r.aggregation_key = @key AND e.type = @type AND e.sender = @sender AND {LiveChild} LIMIT 1",
            new { parentId, type, key, sender }) is not null, ct);

    /// <summary>True when some stored event relates to <paramref name="eventId"/> (so a client may know of it without this server having it).</summary>
    public Task<bool> IsRelationTargetAsync(string eventId, CancellationToken ct = default) =>
        db.ReadAsync(async c => await c.ExecuteScalarAsync<long?>("SELECT 1 FROM event_relations WHERE relates_to_id = @eventId LIMIT 1", new { eventId }) is not null, ct);
}

internal readonly record struct ParentTypeRow(string RelatesToId, string RelType);

/// <summary>A thread root and its latest live reply's stream position.</summary>
public readonly record struct ThreadRootRow(string RootId, long Latest);
