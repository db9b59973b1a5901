using System.Collections.Immutable;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Sync;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using Lethe.Storage;

namespace Lethe.Homeserver.Rooms;

/// <summary>An event a local user asks to send: what the client said, plus who sent it from which device and transaction.</summary>
public sealed record LocalEvent(string RoomId, string Sender, string Type, string? StateKey, JsonObject Content)
{
    /// <summary>The sending device (echoed as <c>unsigned.transaction_id</c> to it).</summary>
    public string? SenderDevice { get; init; }

    /// <summary>Transaction scope (endpoint and room) for idempotency.</summary>
    public string? TxnScope { get; init; }

    /// <summary>Client transaction ID.</summary>
    public string? TxnId { get; init; }

    /// <summary>For redactions: the event redacted (top-level <c>redacts</c> before room version 11, in content after).</summary>
    public string? Redacts { get; init; }
}

/// <summary>
/// The one write path for room events: build (prev_events, auth_events, depth, hashes, signature) → check format and
/// size → authorize against the room's current state → persist atomically with its stream position and state →
/// update caches → notify. Events of one room go through one at a time.
/// </summary>
public sealed class RoomEventPipeline(
    HomeserverServices hs,
    RoomLocks locks,
    RoomSnapshots snapshots,
    EventCache events,
    StateStore state,
    RoomDirectory directory,
    StreamTracker streams,
    SyncNotifier notifier)
{
    private static readonly KeyValuePair<string, object?> LocalOrigin = new("origin", "local");

    /// <summary>Most prev_events a new local event cites (the spec allows 20; fewer keeps events small).</summary>
    private const int MaxPrevEvents = 10;

    /// <summary>Creates a room: its row and its <c>m.room.create</c> event. Everything else is sent with <see cref="SendAsync"/>.</summary>
    public async Task<StoredEvent> CreateRoomAsync(RoomVersion version, string creator, JsonObject createContent, CancellationToken ct)
    {
        var now = hs.NowMs;
        var json = new JsonObject
        {
            ["sender"] = creator,
            ["type"] = EventTypes.Create,
            ["state_key"] = "",
            ["content"] = createContent,
            ["origin_server_ts"] = now,
            ["depth"] = 1L,
            ["prev_events"] = new JsonArray(),
            ["auth_events"] = new JsonArray(),
        };
        if (!version.RoomIdIsCreateEventHash)
        {
            json["room_id"] = "!" + RandomId(18) + ":" + hs.ServerName;
        }

        Stamp(json, version);
        var pdu = ToPdu(json, version, EventHashing.HashAndSign(json, version, hs.ServerName, hs.SigningKey));
        var decision = EventAuthorizer.Default.CheckWithState(pdu, new Dictionary<StateKey, Pdu>());
        if (!decision.IsAllowed)
        {
            throw MatrixException.BadJson("Invalid create event: " + decision.Reason);
        }

        var roomId = pdu.RoomId;
        using var held = await locks.AcquireAsync(roomId, ct);
        var stateAfter = ImmutableDictionary<StateKey, string>.Empty.Add(pdu.StateMapKey, pdu.EventId);
        var (row, group) = await hs.Database.WriteAsync(async tx =>
        {
            await RoomStore.InsertAsync(tx, new RoomRecord { RoomId = roomId, RoomVersion = version.Identifier, Creator = creator, CreatedTs = now });
            var emptyGroup = await state.CreateGroupAsync(tx, roomId, null, ImmutableDictionary<StateKey, string>.Empty, ImmutableDictionary<StateKey, string>.Empty);
            var groupAfter = await state.CreateGroupAsync(tx, roomId, emptyGroup, stateAfter, stateAfter);
            var r = await InsertAsync(tx, pdu, emptyGroup, null);
            await StateStore.SetCurrentAsync(tx, roomId, pdu.StateMapKey, pdu.EventId, null);
            await RoomStore.SetCurrentStateGroupAsync(tx, roomId, groupAfter);
            await EventStore.UpdateForwardExtremitiesAsync(tx, roomId, [], pdu.EventId);
            return (r, groupAfter);
        }, ct);
        directory.Add(roomId, version);
        var stored = StoredEvent.Persisted(row, pdu);
        events.Put(stored);
        snapshots.Set(new RoomSnapshot(roomId, version, stateAfter, group, [pdu.EventId], 1, ImmutableDictionary.Create<string, string>(StringComparer.Ordinal)));
        streams.Advance(StreamTracker.Events, row.StreamOrdering);
        notifier.EventPersisted(pdu, row.StreamOrdering, ImmutableDictionary<string, string>.Empty);
        hs.Metrics.EventsPersisted.Add(1, LocalOrigin);
        return stored;
    }

    /// <summary>Holds the room's write lock: no event is persisted in the room until the returned handle is disposed.</summary>
    public Task<IDisposable> LockAsync(string roomId, CancellationToken ct) => locks.AcquireAsync(roomId, ct);

    /// <summary>Builds, authorizes and persists a local event. A repeated transaction ID returns the original event.</summary>
    /// <exception cref="MatrixException">404 for an unknown room, 403 when the auth rules reject the event, 400/413 for a malformed or oversized one.</exception>
    /// <remarks>
    /// The transaction ID is claimed first inside the write transaction, so a send costs no separate read. A retry whose
    /// original succeeded still returns the original event when building or authorizing it again fails (the sender
    /// has left since, say): the failure path looks the transaction ID up before reporting the error.
    /// </remarks>
    public async Task<StoredEvent> SendAsync(LocalEvent request, CancellationToken ct)
    {
        using var held = await locks.AcquireAsync(request.RoomId, ct);
        string? earlier;
        try
        {
            var (stored, repeated) = await BuildAndPersistAsync(request, ct);
            if (stored is not null)
            {
                return stored;
            }

            earlier = repeated;
        }
        catch (MatrixException) when (request is { TxnId: not null, TxnScope: not null, SenderDevice: not null })
        {
            earlier = await hs.RoomStore.GetTxnAsync(request.Sender, request.SenderDevice, request.TxnScope, request.TxnId, ct);
            if (earlier is null)
            {
                throw;
            }
        }

        return await events.GetAsync(earlier!, ct) ?? throw MatrixException.Internal();
    }

    /// <summary>
    /// The body of <see cref="SendAsync"/>, under the room's lock: the persisted event, or (null, the earlier event's
    /// ID) when the transaction ID turns out to have been used already, in which case nothing is written.
    /// </summary>
    private async Task<(StoredEvent? Stored, string? Earlier)> BuildAndPersistAsync(LocalEvent request, CancellationToken ct)
    {
        var snap = await snapshots.GetAsync(request.RoomId, ct) ?? throw MatrixException.NotFound("Unknown room");
        var version = snap.Version;
        var json = new JsonObject
        {
            ["room_id"] = snap.RoomId,
            ["sender"] = request.Sender,
            ["type"] = request.Type,
            ["content"] = request.Content,
            ["origin_server_ts"] = hs.NowMs,
            ["depth"] = snap.Depth + 1,
        };
        if (request.StateKey is not null)
        {
            json["state_key"] = request.StateKey;
        }

        if (request.Redacts is not null && !version.RedactsInContent)
        {
            json["redacts"] = request.Redacts;
        }

        var prevIds = snap.ForwardExtremities.Count <= MaxPrevEvents ? snap.ForwardExtremities : snap.ForwardExtremities.Take(MaxPrevEvents).ToList();
        var authIds = AuthEventSelection.SelectEventIds(version, request.Type, request.Sender, request.StateKey, request.Content, snap.State);
        var referenced = await events.GetManyAsync(prevIds.Concat(authIds).Append(snap.StateEventId(EventTypes.Create)!), ct);
        json["prev_events"] = References(prevIds, referenced, version);
        json["auth_events"] = References(authIds, referenced, version);
        Stamp(json, version);
        var pdu = ToPdu(json, version, EventHashing.HashAndSign(json, version, hs.ServerName, hs.SigningKey));

        var authState = new Dictionary<StateKey, Pdu>();
        foreach (var id in authIds.Append(snap.StateEventId(EventTypes.Create)!))
        {
            var e = referenced[id].Pdu;
            authState[e.StateMapKey] = e;
        }

        var decision = EventAuthorizer.Default.CheckWithState(pdu, authState);
        if (!decision.IsAllowed)
        {
            throw MatrixException.Forbidden(decision.Reason ?? "Event not allowed");
        }

        var redactionTarget = pdu.Type == EventTypes.Redaction ? await RedactionTargetAsync(pdu, snap, authState, ct) : null;
        var stateAfter = snap.State;
        var groupAfter = snap.StateGroup;
        var memberships = snap.Memberships;
        var txn = request is { TxnId: { } txnId, TxnScope: { } scope, SenderDevice: { } device } ? (txnId, scope, device) : default;
        var push = await hs.Push.Evaluator.EvaluateAsync(pdu, snap, ct);
        string? earlier = null;
        var row = await hs.Database.WriteAsync(async tx =>
        {
            if (txn.txnId is not null && !await RoomStore.TryInsertTxnAsync(tx, request.Sender, txn.device, txn.scope, txn.txnId, pdu.EventId, hs.NowMs))
            {
                earlier = await RoomStore.GetTxnAsync(tx, request.Sender, txn.device, txn.scope, txn.txnId);
                return null;
            }

            if (pdu.IsState)
            {
                stateAfter = snap.State.SetItem(pdu.StateMapKey, pdu.EventId);
                var delta = new Dictionary<StateKey, string> { [pdu.StateMapKey] = pdu.EventId };
                groupAfter = await state.CreateGroupAsync(tx, snap.RoomId, snap.StateGroup, delta, stateAfter);
                await StateStore.SetCurrentAsync(tx, snap.RoomId, pdu.StateMapKey, pdu.EventId, pdu.Membership);
                await RoomStore.SetCurrentStateGroupAsync(tx, snap.RoomId, groupAfter);
            }

            var r = await InsertAsync(tx, pdu, snap.StateGroup, request);
            await EventStore.UpdateForwardExtremitiesAsync(tx, snap.RoomId, pdu.PrevEvents, pdu.EventId);
            if (Relation.Of(pdu.Content) is { } rel)
            {
                await EventStore.InsertRelationAsync(tx, pdu.EventId, snap.RoomId, rel.EventId, rel.RelType, rel.Key);
            }

            if (redactionTarget is not null)
            {
                await EventStore.MarkRedactedAsync(tx, redactionTarget, pdu.EventId, r.ReceivedTs);
            }

            // In the same transaction as the event, so a crash cannot leave a self-destructing message without its timer.
            if (Retention.SelfDestruct.DueTime(pdu) is { } due)
            {
                await RetentionStore.ScheduleExpiryAsync(tx, pdu.EventId, snap.RoomId, due);
            }

            if (push.Row is { } pushRow)
            {
                await PushStore.InsertActionsAsync(tx, pushRow with { StreamOrdering = r.StreamOrdering });
            }

            return r;
        }, ct);

        if (row is null)
        {
            return (null, earlier);
        }

        if (pdu.Membership is { } membership)
        {
            memberships = memberships.SetItem(pdu.StateKey!, membership);
        }

        var stored = StoredEvent.Persisted(row, pdu);
        events.Put(stored);
        if (redactionTarget is not null)
        {
            events.Forget(redactionTarget);
            hs.Push.Counts.RecountRoom(snap.RoomId);
        }

        var after = new RoomSnapshot(snap.RoomId, version, stateAfter, groupAfter, [pdu.EventId], pdu.Depth, memberships);
        snapshots.Set(after);
        streams.Advance(StreamTracker.Events, row.StreamOrdering);
        notifier.EventPersisted(pdu, row.StreamOrdering, after.Memberships);
        hs.Metrics.EventsPersisted.Add(1, LocalOrigin);
        hs.Push.Persisted(stored, snap, push);
        return (stored, null);
    }

    /// <summary>
    /// The event a redaction applies to, if it applies (server-server "Handling redactions"): the target is in the room
    /// and the redacter either has the redact power level or sent the target (same user, so same server).
    /// </summary>
    private async Task<string?> RedactionTargetAsync(Pdu redaction, RoomSnapshot snap, Dictionary<StateKey, Pdu> authState, CancellationToken ct)
    {
        if (redaction.Redacts is not { } targetId || await events.GetAsync(targetId, ct) is not { } target || target.Row.RoomId != snap.RoomId)
        {
            return null;
        }

        if (target.Pdu.Type == EventTypes.Create)
        {
            return null;
        }

        if (target.Pdu.Sender == redaction.Sender)
        {
            return targetId;
        }

        var levels = PowerLevels.FromState(authState[new StateKey(EventTypes.Create, "")], authState.GetValueOrDefault(new StateKey(EventTypes.PowerLevels, "")));
        return levels.GetUserLevel(redaction.Sender) >= levels.Redact ? targetId : null;
    }

    private async Task<EventRow> InsertAsync(System.Data.Common.DbTransaction tx, Pdu pdu, long stateGroupBefore, LocalEvent? request)
    {
        var stream = await StreamPositions.NextAsync(tx, StreamTracker.Events);
        var row = new EventRow
        {
            EventId = pdu.EventId,
            StreamOrdering = stream,
            RoomId = pdu.RoomId,
            Type = pdu.Type,
            StateKey = pdu.StateKey,
            Sender = pdu.Sender,
            OriginServerTs = pdu.OriginServerTs,
            Depth = pdu.Depth,
            StateGroup = stateGroupBefore,
            Json = pdu.ToCanonicalBytes(),
            ReceivedTs = hs.NowMs,
            SenderDevice = request?.SenderDevice,
            TxnId = request?.TxnId,
        };
        await EventStore.InsertAsync(tx, row);
        await MediaStore.RecordReferencesAsync(tx, row.EventId, row.Json, hs.ServerName);
        return row;
    }

    /// <summary>Fields some room versions expect that are not part of the client's request.</summary>
    private void Stamp(JsonObject json, RoomVersion version)
    {
        // Rooms before v11 keep "origin" through redaction, so servers of that era expect it.
        if (!version.RedactsInContent)
        {
            json["origin"] = hs.ServerName;
        }

        if (version.EventIdFormat == EventIdFormat.Opaque)
        {
            json["event_id"] = "$" + RandomId(18) + ":" + hs.ServerName;
        }
    }

    private static JsonArray References(IEnumerable<string> ids, Dictionary<string, StoredEvent> referenced, RoomVersion version)
    {
        var array = new JsonArray();
        foreach (var id in ids)
        {
            if (version.EventIdFormat == EventIdFormat.Opaque)
            {
                // v1–v2 cite events as [event_id, {sha256: reference hash}].
                var hash = Base64Unpadded.Encode(EventHashing.ReferenceHash(referenced[id].Pdu.Json, version));
                array.Add((JsonNode)new JsonArray(id, new JsonObject { ["sha256"] = hash }));
            }
            else
            {
                array.Add((JsonNode)id);
            }
        }

        return array;
    }

    private static Pdu ToPdu(JsonObject json, RoomVersion version, byte[] referenceHash)
    {
        try
        {
            return Pdu.FromJson(json, version, referenceHash);
        }
        catch (EventFormatException e) when (e.Message.Contains("the limit is", StringComparison.Ordinal))
        {
            throw MatrixException.TooLarge("Event is too large: " + e.Message);
        }
        catch (EventFormatException e)
        {
            throw MatrixException.BadJson(e.Message);
        }
    }

    private static string RandomId(int length)
    {
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        return SecureRandom.String(Alphabet, length);
    }
}

/// <summary>The <c>m.relates_to</c> of an event content: relation type, target and (for annotations) key.</summary>
public sealed record Relation(string RelType, string EventId, string? Key)
{
    /// <summary>The relation in <paramref name="content"/>, or null (replies without rel_type are not relations).</summary>
    public static Relation? Of(JsonObject content)
    {
        if (content["m.relates_to"] is not JsonObject relatesTo
            || relatesTo["rel_type"].AsString() is not { } relType
            || relatesTo["event_id"].AsString() is not { } target)
        {
            return null;
        }

        return new Relation(relType, target, relatesTo["key"].AsString());
    }
}
