namespace Lethe.Homeserver.Tests.Infrastructure;

/// <summary>Real time plus an offset the test can move forward: events get timestamps from it, so moving it ages them.</summary>
public sealed class TestClock : TimeProvider
{
    private long _offsetTicks;

    /// <summary>How far ahead of real time this clock runs.</summary>
    public TimeSpan Offset => TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

    /// <summary>Moves the clock forward.</summary>
    public void Advance(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Offset;

    /// <inheritdoc />
    /// <remarks>Moved with the clock too, so what measures elapsed time with it (the rate limiter) sees the time pass.</remarks>
    public override long GetTimestamp() => base.GetTimestamp() + (long)(Offset.Ticks * (double)TimestampFrequency / TimeSpan.TicksPerSecond);
}
