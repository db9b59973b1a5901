using Lethe.Protocol.Json;

namespace Lethe.Protocol.State;

/// <summary>The sort key both v2 orderings end with: a primary rank, then <c>origin_server_ts</c>, then event ID by code point.</summary>
internal readonly record struct TieBreak(long Rank, long OriginServerTs, string EventId);

/// <summary>Orders <see cref="TieBreak"/> keys ascending on every part.</summary>
internal sealed class TieBreakComparer : IComparer<TieBreak>
{
    /// <summary>The shared instance.</summary>
    public static readonly TieBreakComparer Instance = new();

    /// <summary>Compares rank, then timestamp, then event ID.</summary>
    public int Compare(TieBreak x, TieBreak y)
    {
        var c = x.Rank.CompareTo(y.Rank);
        if (c != 0)
        {
            return c;
        }

        c = x.OriginServerTs.CompareTo(y.OriginServerTs);
        return c != 0 ? c : CanonicalJson.CodePointComparer.Instance.Compare(x.EventId, y.EventId);
    }
}
