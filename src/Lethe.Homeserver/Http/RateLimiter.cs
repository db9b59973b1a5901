using System.Collections.Concurrent;
using Lethe.Homeserver.Configuration;

namespace Lethe.Homeserver.Http;

/// <summary>Token buckets keyed by (rc_* bucket, key), as Synapse's rate limiter: a burst up to burst_count, refilled at per_second.</summary>
public sealed class RateLimiter(RateLimitConfig config, TimeProvider clock)
{
    private readonly ConcurrentDictionary<(string Bucket, string Key), Bucket> _buckets = new();

    /// <summary>Takes one action from the bucket or throws 429 M_LIMIT_EXCEEDED with the wait until the next is allowed.</summary>
    public void Take(string bucket, string key)
    {
        if (!TryTake(bucket, key, out var retryAfterMs))
        {
            throw MatrixException.LimitExceeded(retryAfterMs);
        }
    }

    /// <summary>Throws 429 when the bucket is empty, without taking anything (for limits counted only on failure).</summary>
    public void EnsureAvailable(string bucket, string key)
    {
        if (!Update(bucket, key, consume: false, out var retryAfterMs))
        {
            throw MatrixException.LimitExceeded(retryAfterMs);
        }
    }

    /// <summary>Takes one action if allowed; otherwise reports how long until one is.</summary>
    public bool TryTake(string bucket, string key, out long retryAfterMs) => Update(bucket, key, consume: true, out retryAfterMs);

    private bool Update(string bucket, string key, bool consume, out long retryAfterMs)
    {
        var limit = config[bucket];
        retryAfterMs = 0;
        if (limit.PerSecond <= 0 && limit.BurstCount <= 0)
        {
            return true;
        }

        var now = clock.GetTimestamp() / (double)clock.TimestampFrequency;
        var b = _buckets.GetOrAdd((bucket, key), _ => new Bucket(limit.BurstCount, now));
        lock (b)
        {
            b.Tokens = Math.Min(limit.BurstCount, b.Tokens + ((now - b.Updated) * limit.PerSecond));
            b.Updated = now;
            if (b.Tokens >= 1)
            {
                if (consume)
                {
                    b.Tokens -= 1;
                }

                return true;
            }

            retryAfterMs = limit.PerSecond > 0 ? (long)Math.Ceiling((1 - b.Tokens) / limit.PerSecond * 1000) : 60_000;
            return false;
        }
    }

    /// <summary>Drops buckets that have been full for a while, so memory does not grow with every client ever seen.</summary>
    public void Prune()
    {
        var now = clock.GetTimestamp() / (double)clock.TimestampFrequency;
        foreach (var kv in _buckets)
        {
            if (now - kv.Value.Updated > 3600)
            {
                _buckets.TryRemove(kv.Key, out _);
            }
        }
    }

    private sealed class Bucket(double tokens, double updated)
    {
        public double Tokens = tokens;
        public double Updated = updated;
    }
}
