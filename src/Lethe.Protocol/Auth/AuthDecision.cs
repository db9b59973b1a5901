namespace Lethe.Protocol.Auth;

/// <summary>The outcome of an authorisation check: allowed or rejected, and the spec rule (numbered as in the room version's own spec page) that decided it.</summary>
public readonly record struct AuthDecision
{
    private AuthDecision(bool isAllowed, string rule, string reason)
    {
        IsAllowed = isAllowed;
        Rule = rule;
        Reason = reason;
    }

    /// <summary>True when the event is allowed.</summary>
    public bool IsAllowed { get; }

    /// <summary>True when the event is rejected.</summary>
    public bool IsRejected => !IsAllowed;

    /// <summary>The deciding rule, e.g. <c>"5.3.2"</c>, numbered as in the room version's authorisation rules.</summary>
    public string Rule { get; }

    /// <summary>A human-readable explanation of the decision.</summary>
    public string Reason { get; }

    /// <summary>An allow decided by <paramref name="rule"/>.</summary>
    public static AuthDecision Allow(string rule, string reason) => new(true, rule, reason);

    /// <summary>A rejection decided by <paramref name="rule"/>.</summary>
    public static AuthDecision Reject(string rule, string reason) => new(false, rule, reason);

    /// <inheritdoc />
    public override string ToString() => $"{(IsAllowed ? "allowed" : "rejected")} by rule {Rule}: {Reason}";
}
