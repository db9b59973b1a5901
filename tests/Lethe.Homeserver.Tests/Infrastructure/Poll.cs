namespace Lethe.Homeserver.Tests.Infrastructure;

/// <summary>Waiting on conditions with a deadline, instead of sleeping and hoping.</summary>
public static class Poll
{
    /// <summary>Re-evaluates <paramref name="condition"/> until it holds or <paramref name="timeout"/> passes, then fails with <paramref name="what"/>.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (await condition())
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds}s waiting for: {what}");
            }

            await Task.Delay(25);
        }
    }
}
