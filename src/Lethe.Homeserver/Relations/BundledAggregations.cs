using System.Text.Json.Nodes;
using Lethe.Homeserver.Rooms;
using Lethe.Protocol.Events;
using Lethe.Storage;

namespace Lethe.Homeserver.Relations;

/// <summary>A thread summary (<c>m.thread</c> aggregation): the newest reply the reader may see, the reply count, and whether the reader took part.</summary>
public sealed record ThreadSummary(StoredEvent LatestEvent, long Count, bool CurrentUserParticipated);

/// <summary>What is bundled under <c>unsigned["m.relations"]</c> for one event; null parts are absent.</summary>
public sealed class Aggregation
{
    /// <summary>The most recent valid edit (<c>m.replace</c>).</summary>
    public StoredEvent? Edit { get; set; }

    /// <summary>The thread of which the event is the root (<c>m.thread</c>).</summary>
    public ThreadSummary? Thread { get; set; }

    /// <summary>Events referencing the event (<c>m.reference</c>), oldest first.</summary>
    public List<string>? References { get; set; }
}

/// <summary>
/// Computes bundled aggregations ("Aggregations of child events") for a batch of events served together, with a
/// fixed number of queries per batch rather than per event: one index-only probe for which events have children at
/// all (usually none), then at most three more for threads, edits and references. Every child event that is
/// bundled in full (an edit, a thread's latest reply) or by ID (references) passes the visibility gate for the reader.
/// Annotations are not aggregated (spec: <c>m.annotation</c> is not included in <c>m.relations</c>).
/// </summary>
public sealed class BundledAggregations(HomeserverServices hs)
{
    /// <summary>How many of each thread's newest replies are fetched as candidates for <c>latest_event</c>; more only when all are hidden.</summary>
    private const int LatestCandidates = 3;

    private static readonly string[] BundledTypes = [RelationTypes.Thread, RelationTypes.Replace, RelationTypes.Reference];
    private static readonly string[] EditAndReferenceTypes = [RelationTypes.Replace, RelationTypes.Reference];

    private readonly RelationStore _store = new(hs.Database);

    /// <summary>
    /// True when an event can carry bundled aggregations: not a state event (spec: state events do not receive them)
    /// and not itself an edit or an annotation (which cannot be the target of further relations that are bundled).
    /// </summary>
    public static bool CanHaveAggregations(StoredEvent e) =>
        !e.Pdu.IsState && Relation.Of(e.Pdu.Content)?.RelType is not (RelationTypes.Replace or RelationTypes.Annotation);

    /// <summary>The aggregations of the events that have any, keyed by event ID, as <paramref name="userId"/> may see them.</summary>
    public async Task<Dictionary<string, Aggregation>> ComputeAsync(IReadOnlyList<StoredEvent> events, string userId, CancellationToken ct)
    {
        var result = new Dictionary<string, Aggregation>(StringComparer.Ordinal);
        var parents = new Dictionary<string, StoredEvent>(StringComparer.Ordinal);
        foreach (var e in events)
        {
            if (CanHaveAggregations(e))
            {
                parents.TryAdd(e.EventId, e);
            }
        }

        if (parents.Count == 0)
        {
            return result;
        }

        var present = await _store.ChildTypesAsync(parents.Keys, BundledTypes, ct);
        if (present.Count == 0)
        {
            return result;
        }

        var ignored = await hs.IgnoredUsersAsync(userId, ct);

        // A thread can only be rooted at an event without a relation of its own (spec: "Validation of m.thread relationships").
        var roots = parents.Values.Where(p => present.Contains((p.EventId, RelationTypes.Thread)) && Relation.Of(p.Pdu.Content) is null).ToList();
        if (roots.Count > 0)
        {
            await AddThreadsAsync(roots, userId, ignored, result, ct);
        }

        var withOthers = parents.Values
            .Where(p => present.Contains((p.EventId, RelationTypes.Replace)) || present.Contains((p.EventId, RelationTypes.Reference)))
            .ToList();
        if (withOthers.Count > 0)
        {
            await AddEditsAndReferencesAsync(withOthers, userId, ignored, result, ct);
        }

        return result;
    }

    private async Task AddThreadsAsync(List<StoredEvent> roots, string userId, IReadOnlySet<string> ignored, Dictionary<string, Aggregation> result, CancellationToken ct)
    {
        var rootIds = roots.Select(r => r.EventId).ToList();
        var senders = await _store.ThreadSendersAsync(rootIds, ct);
        var candidates = await _store.LatestThreadRepliesAsync(rootIds, LatestCandidates, ct);
        var visible = await VisibleAsync(candidates, userId, ignored, ct);
        foreach (var root in roots)
        {
            // spec: count excludes ignored users; participation is sending the root or a reply.
            var mine = senders.Where(s => s.RootId == root.EventId).ToList();
            var count = mine.Where(s => !ignored.Contains(s.Sender)).Sum(s => s.Replies);
            if (count == 0)
            {
                continue;
            }

            var participated = root.Pdu.Sender == userId || mine.Any(s => s.Sender == userId);
            var latest = candidates
                .Where(c => c.RelatesToId == root.EventId && c.RoomId == root.Row.RoomId)
                .Select(c => visible.GetValueOrDefault(c.EventId))
                .FirstOrDefault(e => e is not null);
            var examined = candidates.Count(c => c.RelatesToId == root.EventId);
            if (latest is null && mine.Sum(s => s.Replies) > examined)
            {
                latest = await OlderVisibleReplyAsync(root, userId, ignored, ct);
            }

            // No reply the reader may see: no summary, rather than one pointing at a hidden event.
            if (latest is not null)
            {
                Get(result, root.EventId).Thread = new ThreadSummary(latest, count, participated);
            }
        }
    }

    /// <summary>The newest visible reply when the newest few were all hidden from the reader: pages back through the thread.</summary>
    private async Task<StoredEvent?> OlderVisibleReplyAsync(StoredEvent root, string userId, IReadOnlySet<string> ignored, CancellationToken ct)
    {
        var before = long.MaxValue;
        for (var round = 0; round < 20; round++)
        {
            var rows = await _store.PageAsync(root.Row.RoomId, root.EventId, RelationTypes.Thread, null, 1, long.MinValue, before, backwards: true, 50, ct);
            if (rows.Count == 0)
            {
                return null;
            }

            var page = await hs.Events.FromRowsAsync(rows, ct);
            var visible = await hs.Visibility.FilterAsync(userId, root.Row.RoomId, page, ignored, ct);
            if (visible.Count > 0)
            {
                return visible[0];
            }

            before = rows[^1].StreamOrdering;
        }

        return null;
    }

    private async Task AddEditsAndReferencesAsync(List<StoredEvent> parents, string userId, IReadOnlySet<string> ignored, Dictionary<string, Aggregation> result, CancellationToken ct)
    {
        var rows = await _store.ChildrenAsync(parents.Select(p => p.EventId).ToList(), EditAndReferenceTypes, ct);
        var visible = await VisibleAsync(rows, userId, ignored, ct);
        foreach (var parent in parents)
        {
            StoredEvent? edit = null;
            List<string>? references = null;
            foreach (var row in rows)
            {
                if (row.RelatesToId != parent.EventId || row.RoomId != parent.Row.RoomId || !visible.TryGetValue(row.EventId, out var child))
                {
                    continue;
                }

                if (row.RelType == RelationTypes.Reference)
                {
                    (references ??= []).Add(child.EventId);
                }
                else if (IsValidEdit(parent, child) && (edit is null || IsMoreRecent(child, edit)))
                {
                    edit = child;
                }
            }

            if (edit is not null)
            {
                Get(result, parent.EventId).Edit = edit;
            }

            if (references is not null)
            {
                Get(result, parent.EventId).References = references;
            }
        }
    }

    /// <summary>
    /// The spec's "Validity of replacement events": same room (checked by the caller), same sender, same type, neither
    /// is a state event, the original is not itself an edit, and the edit carries <c>m.new_content</c> (unless
    /// encrypted, where it is inside the ciphertext). A redacted original has no edits bundled (spec: a redacted
    /// event's edits would leak its content).
    /// </summary>
    public static bool IsValidEdit(StoredEvent original, StoredEvent edit) =>
        !original.IsRedacted
        && !original.Pdu.IsState
        && !edit.Pdu.IsState
        && edit.Pdu.Sender == original.Pdu.Sender
        && edit.Pdu.Type == original.Pdu.Type
        && Relation.Of(original.Pdu.Content)?.RelType != RelationTypes.Replace
        && (edit.Pdu.Type == "m.room.encrypted" || edit.Pdu.Content["m.new_content"] is JsonObject);

    /// <summary>The spec's "most recent" edit: later origin_server_ts, ties broken by the lexicographically larger event ID.</summary>
    private static bool IsMoreRecent(StoredEvent a, StoredEvent b) =>
        a.Pdu.OriginServerTs != b.Pdu.OriginServerTs
            ? a.Pdu.OriginServerTs > b.Pdu.OriginServerTs
            : string.CompareOrdinal(a.EventId, b.EventId) > 0;

    /// <summary>Loads the child events of <paramref name="rows"/> and keeps those the reader may see, per room.</summary>
    private async Task<Dictionary<string, StoredEvent>> VisibleAsync(List<RelationRow> rows, string userId, IReadOnlySet<string> ignored, CancellationToken ct)
    {
        var result = new Dictionary<string, StoredEvent>(StringComparer.Ordinal);
        if (rows.Count == 0)
        {
            return result;
        }

        var loaded = await hs.Events.GetManyAsync(rows.Where(r => !ignored.Contains(r.Sender)).Select(r => r.EventId), ct);
        foreach (var room in loaded.Values.GroupBy(e => e.Row.RoomId))
        {
            var ordered = room.OrderBy(e => e.StreamOrdering).ToList();
            foreach (var e in await hs.Visibility.FilterAsync(userId, room.Key, ordered, ignored, ct))
            {
                result[e.EventId] = e;
            }
        }

        return result;
    }

    private static Aggregation Get(Dictionary<string, Aggregation> result, string eventId)
    {
        if (!result.TryGetValue(eventId, out var a))
        {
            a = new Aggregation();
            result[eventId] = a;
        }

        return a;
    }
}
