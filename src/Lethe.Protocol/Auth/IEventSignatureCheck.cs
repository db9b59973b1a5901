using System.Text.Json.Nodes;
using Lethe.Protocol.Events;

namespace Lethe.Protocol.Auth;

/// <summary>Answers whether an event is validly signed by a server. Supplied by the caller, which holds the servers' keys.</summary>
public interface IEventSignatureCheck
{
    /// <summary>True when <paramref name="pdu"/> carries a valid signature from <paramref name="serverName"/>.</summary>
    bool IsSignedBy(Pdu pdu, string serverName);
}

/// <summary>A signature check for callers that verify every signature on an event before authorising it: a signature from the server only has to be present.</summary>
public sealed class PresentSignatureCheck : IEventSignatureCheck
{
    /// <summary>The shared instance.</summary>
    public static readonly PresentSignatureCheck Instance = new();

    private PresentSignatureCheck()
    {
    }

    /// <inheritdoc />
    public bool IsSignedBy(Pdu pdu, string serverName) =>
        pdu.Json["signatures"] is JsonObject signatures && signatures[serverName] is JsonObject mine && mine.Count > 0;
}
