namespace Lethe.Protocol.Auth;

/// <summary>Values of <c>join_rule</c> in <c>m.room.join_rules</c>.</summary>
public static class JoinRule
{
    /// <summary><c>public</c>: anyone may join.</summary>
    public const string Public = "public";

    /// <summary><c>invite</c>: only invited users may join; also what a room without join rules behaves as.</summary>
    public const string Invite = "invite";

    /// <summary><c>knock</c> (room version 7+): users may ask to be invited.</summary>
    public const string Knock = "knock";

    /// <summary><c>restricted</c> (room version 8+): members of allowed rooms may join through a resident server.</summary>
    public const string Restricted = "restricted";

    /// <summary><c>knock_restricted</c> (room version 10+): both <c>knock</c> and <c>restricted</c>.</summary>
    public const string KnockRestricted = "knock_restricted";

    /// <summary><c>private</c>: reserved, behaves as a rule nobody can join by.</summary>
    public const string Private = "private";
}
