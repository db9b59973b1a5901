using Lethe.Protocol.Events;

namespace Lethe.Protocol.Auth;

/// <summary>An event as the server knows it: the PDU and whether it was rejected on receipt.</summary>
/// <param name="Event">The event.</param>
/// <param name="IsRejected">True when the event failed the checks performed on receipt of a PDU.</param>
public readonly record struct EventRecord(Pdu Event, bool IsRejected = false);
