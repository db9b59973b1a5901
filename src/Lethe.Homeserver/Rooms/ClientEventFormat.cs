using System.Text.Json.Nodes;
using Lethe.Protocol.Events;

namespace Lethe.Homeserver.Rooms;

/// <summary>Turns stored events into the client-server event format, with the <c>unsigned</c> data clients expect.</summary>
public sealed class ClientEventFormat(HomeserverServices hs)
{
    /// <summary>Who is reading: the transaction ID is echoed only to the device that sent the event.</summary>
    public readonly record struct Viewer(string UserId, string? DeviceId);

    /// <summary>The client form of one event.</summary>
    public async Task<JsonObject> ToClientAsync(StoredEvent e, Viewer viewer, bool includeRoomId, CancellationToken ct)
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
            unsigned["redacted_because"] = await ToClientAsync(redaction, viewer, includeRoomId: true, ct);
        }

        if (pdu.StateKey is not null)
        {
            var before = await hs.StateStore.GetGroupAsync(e.Row.StateGroup, ct);
            if (before.TryGetValue(pdu.StateMapKey, out var previousId) && await hs.Events.GetAsync(previousId, ct) is { } previous)
            {
                unsigned["replaces_state"] = previousId;
                unsigned["prev_content"] = previous.Pdu.Content.DeepClone();
                unsigned["prev_sender"] = previous.Pdu.Sender;
            }
        }

        json["unsigned"] = unsigned;
        return json;
    }

    /// <summary>The client form of several events, in order.</summary>
    public async Task<JsonArray> ToClientAsync(IEnumerable<StoredEvent> events, Viewer viewer, bool includeRoomId, CancellationToken ct)
    {
        var array = new JsonArray();
        foreach (var e in events)
        {
            array.Add(await ToClientAsync(e, viewer, includeRoomId, ct));
        }

        return array;
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
