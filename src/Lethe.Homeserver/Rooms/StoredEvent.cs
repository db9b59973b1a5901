using System.Buffers;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using Lethe.Storage;

namespace Lethe.Homeserver.Rooms;

/// <summary>An event as stored: its row (stream position, redaction, rejection, sending device) and its parsed PDU.</summary>
/// <remarks>When the event has been redacted, <see cref="Pdu"/> is the redacted form: that is what auth and state use.</remarks>
public sealed class StoredEvent
{
    private StoredEvent(EventRow row, Pdu pdu)
    {
        Row = row;
        Pdu = pdu;
    }

    /// <summary>The database row.</summary>
    public EventRow Row { get; }

    /// <summary>The event (redacted when <see cref="EventRow.RedactedBy"/> is set).</summary>
    public Pdu Pdu { get; }

    /// <summary>Event ID.</summary>
    public string EventId => Row.EventId;

    /// <summary>Stream position.</summary>
    public long StreamOrdering => Row.StreamOrdering;

    /// <summary>True when a redaction has been applied.</summary>
    public bool IsRedacted => Row.RedactedBy is not null;

    /// <summary>Parses a row for its room version.</summary>
    public static StoredEvent FromRow(EventRow row, RoomVersion version)
    {
        // The row passed Pdu.FromJson's checks when it was stored, and its ID is known: no need to validate and hash it again.
        if (row.RedactedBy is null)
        {
            return new StoredEvent(row, Pdu.FromStoredBytes(row.Json, version, row.EventId));
        }

        return new StoredEvent(row, RedactedPdu(CanonicalJson.ParseObject(row.Json), version, row.EventId));
    }

    /// <summary>The same event with its content redacted: how an expired event that must stay in the DAG, or an erased user's event, is served.</summary>
    public StoredEvent AsRedacted() =>
        IsExpiredView ? this : new StoredEvent(Row, RedactedPdu(Pdu.Json, Pdu.RoomVersion, EventId)) { IsExpiredView = true };

    private static Pdu RedactedPdu(System.Text.Json.Nodes.JsonObject json, RoomVersion version, string eventId)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        Redaction.WriteRedacted(buffer, json, version);
        return Pdu.FromStoredBytes(buffer.WrittenSpan.ToArray(), version, eventId);
    }

    /// <summary>True for a redacted view made by <see cref="AsRedacted"/>.</summary>
    public bool IsExpiredView { get; private init; }

    /// <summary>The same event with a compact <see cref="Pdu"/>, as caches keep it.</summary>
    public StoredEvent Compact() => Pdu.Compact() is var compact && ReferenceEquals(compact, Pdu) ? this : new StoredEvent(Row, compact);

    /// <summary>Wraps a freshly persisted event.</summary>
    public static StoredEvent Persisted(EventRow row, Pdu pdu) => new(row, pdu);
}
