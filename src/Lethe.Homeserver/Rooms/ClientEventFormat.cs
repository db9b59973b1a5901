using System.Text.Json.Nodes;
using Lethe.Homeserver.Relations;
using Lethe.Protocol.Events;

namespace Lethe.Homeserver.Rooms;

/// <summary>
/// Turns stored events into the client-server event format, with the <c>unsigned</c> data clients expect, including
/// bundled aggregations (<c>unsigned["m.relations"]</c>) computed once per batch of events served together.
/// </summary>
public sealed class ClientEventFormat(HomeserverServices hs)
{
    private readonly BundledAggregations _aggregations = new(hs);

    /// <summary>Who is reading: the transaction ID is echoed only to the device that sent the event.</summary>
    public readonly record struct Viewer(string UserId, string? DeviceId);

    /// <summary>The client form of one event.</summary>
    public async Task<JsonObject> ToClientAsync(StoredEvent e, Viewer viewer, bool includeRoomId, CancellationToken ct)
    {
        var relations = await RelationsAsync([e], viewer, includeRoomId, nested: false, ct);
        return await FormatAsync(e, viewer, includeRoomId, relations.GetValueOrDefault(e.EventId), ct);
    }

    /// <summary>The client form of several events, in order.</summary>
    public async Task<JsonArray> ToClientAsync(IEnumerable<StoredEvent> events, Viewer viewer, bool includeRoomId, CancellationToken ct)
    {
        var list = events as IReadOnlyList<StoredEvent> ?? events.ToList();
        var relations = await RelationsAsync(list, viewer, includeRoomId, nested: false, ct);
        var array = new JsonArray();
        foreach (var e in list)
        {
            array.Add((JsonNode)await FormatAsync(e, viewer, includeRoomId, relations.GetValueOrDefault(e.EventId), ct));
        }

        return array;
    }

    /// <summary>
    /// The <c>m.relations</c> object of each event that has bundled aggregations. A thread's latest event is served
    /// in full with its own aggregations (spec: "child events of the latest_event should themselves be aggregated");
    /// it has a thread relation, so it cannot root a thread itself, and <paramref name="nested"/> stops there.
    /// </summary>
    private async Task<Dictionary<string, JsonObject>> RelationsAsync(IReadOnlyList<StoredEvent> events, Viewer viewer, bool includeRoomId, bool nested, CancellationToken ct)
    {
        var result = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        var aggregations = await _aggregations.ComputeAsync(events, viewer.UserId, ct);
        if (aggregations.Count == 0)
        {
            return result;
        }

        var latest = aggregations.Values.Select(a => a.Thread?.LatestEvent).OfType<StoredEvent>().ToList();
        var latestRelations = latest.Count > 0 && !nested
            ? await RelationsAsync(latest, viewer, includeRoomId, nested: true, ct)
            : new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var (eventId, aggregation) in aggregations)
        {
            var relations = new JsonObject();
            if (aggregation.Thread is { } thread)
            {
                relations[RelationTypes.Thread] = new JsonObject
                {
                    ["latest_event"] = await FormatAsync(thread.LatestEvent, viewer, includeRoomId, latestRelations.GetValueOrDefault(thread.LatestEvent.EventId), ct),
                    ["count"] = thread.Count,
                    ["current_user_participated"] = thread.CurrentUserParticipated,
                };
            }

            if (aggregation.Edit is { } edit)
            {
                // The edit itself, formatted as any event (spec 1.7+); the original's content is left as it is.
                relations[RelationTypes.Replace] = await FormatAsync(edit, viewer, includeRoomId, null, ct);
            }

            if (aggregation.References is { } references)
            {
                relations[RelationTypes.Reference] = new JsonObject
                {
                    ["chunk"] = new JsonArray(references.Select(id => (JsonNode)new JsonObject { ["event_id"] = id }).ToArray()),
                };
            }

            result[eventId] = relations;
        }

        return result;
    }

    private async Task<JsonObject> FormatAsync(StoredEvent e, Viewer viewer, bool includeRoomId, JsonObject? relations, CancellationToken ct)
    {
        var pdu = e.Pdu;
        var json = new JsonObject
        {
            ["content"] = pdu.Content.DeepClone(),
            ["event_id"] = pdu.EventId,
            ["origin_server_ts"] = pdu.OriginServerTs,
            ["sender"] = pdu.Sender,
            ["type"] = pdu.Type,
        };
        if (includeRoomId)
        {
            json["room_id"] = pdu.RoomId;
        }

        if (pdu.StateKey is not null)
        {
            json["state_key"] = pdu.StateKey;
        }

        if (pdu.Redacts is not null)
        {
            // Room versions 11+ carry redacts in content; clients of every version still read the top-level copy.
            json["redacts"] = pdu.Redacts;
        }

        var unsigned = new JsonObject { ["age"] = Math.Max(0, hs.NowMs - pdu.OriginServerTs) };
        if (e.Row.TxnId is not null && e.Row.SenderDevice == viewer.DeviceId && pdu.Sender == viewer.UserId)
        {
            unsigned["transaction_id"] = e.Row.TxnId;
        }

        if (e.Row.RedactedBy is { } redactionId && await hs.Events.GetAsync(redactionId, ct) is { } redaction)
        {
            unsigned["redacted_because"] = await FormatAsync(redaction, viewer, includeRoomId: true, null, ct);
        }

        if (pdu.StateKey is not null)
        {
            var before = await hs.StateStore.GetGroupAsync(e.Row.StateGroup, ct);
            if (before.TryGetValue(pdu.StateMapKey, out var previousId) && await hs.Events.GetAsync(previousId, ct) is { } stored
                && (hs.Erasure.IsErased(stored.Pdu.Sender) ? await hs.Visibility.ViewAsync(viewer.UserId, stored, ct) : stored) is { } previous)
            {
                // An erased user's earlier state is shown as the gate shows that event itself (redacted to newcomers).
                unsigned["replaces_state"] = previousId;
                unsigned["prev_content"] = previous.Pdu.Content.DeepClone();
                unsigned["prev_sender"] = previous.Pdu.Sender;
            }
        }

        if (relations is not null)
        {
            // The same event can appear twice in one batch; a JSON node has one parent.
            unsigned["m.relations"] = relations.Parent is null ? relations : relations.DeepClone();
        }

        json["unsigned"] = unsigned;
        return json;
    }

    /// <summary>The stripped form of a state event (type, state_key, sender, content), as invites and knocks show room state.</summary>
    public static JsonObject Stripped(Pdu pdu) => new()
    {
        ["type"] = pdu.Type,
        ["state_key"] = pdu.StateKey,
        ["sender"] = pdu.Sender,
        ["content"] = pdu.Content.DeepClone(),
    };
}
