using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Json;

namespace Lethe.Homeserver.Retention;

/// <summary>
/// A retention policy in milliseconds (MSC1763 as Synapse implements it): events older than <see cref="MaxLifetime"/>
/// are hidden and purged; events younger than <see cref="MinLifetime"/> are never deleted by anything (a legal hold).
/// Null means "not set": no expiry, or no hold.
/// </summary>
public sealed record RetentionPolicy(long? MinLifetime, long? MaxLifetime)
{
    /// <summary>No expiry and no hold.</summary>
    public static readonly RetentionPolicy None = new(null, null);

    /// <summary>Events sent at or before this instant have expired (null when nothing expires).</summary>
    public long? ExpiryCutoff(long now) => MaxLifetime is { } max ? now - max : null;

    /// <summary>True when an event sent at <paramref name="originTs"/> may be deleted at <paramref name="now"/> (its hold, if any, has passed).</summary>
    public bool AllowsDeletion(long originTs, long now) => MinLifetime is not { } min || originTs + min <= now;

    /// <summary>The same policy with <c>max_lifetime ≥ min_lifetime</c> restored, as MSC1763 requires.</summary>
    public RetentionPolicy Normalised() =>
        MinLifetime is { } min && MaxLifetime is { } max && max < min ? this with { MaxLifetime = min } : this;

    /// <summary>Clamps both lifetimes into the server's allowed range, then normalises.</summary>
    public RetentionPolicy Clamped(RetentionConfig config)
    {
        long? Clamp(long? value)
        {
            if (value is not { } v)
            {
                return null;
            }

            if (config.AllowedLifetimeMin is { } lo && v < lo)
            {
                v = lo;
            }

            if (config.AllowedLifetimeMax is { } hi && v > hi)
            {
                v = hi;
            }

            return v;
        }

        return new RetentionPolicy(Clamp(MinLifetime), Clamp(MaxLifetime)).Normalised();
    }

    /// <summary>Reads an <c>m.room.retention</c> content leniently (as received): fields that are not non-negative integers are ignored.</summary>
    public static RetentionPolicy FromContent(JsonObject content)
    {
        static long? Read(JsonNode? node) => node.TryGetInt64(out var v) && v >= 0 ? v : null;
        return new RetentionPolicy(Read(content["min_lifetime"]), Read(content["max_lifetime"]));
    }

    /// <summary>
    /// Checks an <c>m.room.retention</c> content sent by a local client: <c>min_lifetime</c> and <c>max_lifetime</c>,
    /// when present, must be non-negative integers (milliseconds). Anything else is 400 M_BAD_JSON.
    /// </summary>
    public static void Validate(JsonObject content)
    {
        foreach (var key in new[] { "min_lifetime", "max_lifetime" })
        {
            if (content.TryGetPropertyValue(key, out var node) && node is not null
                && (!node.TryGetInt64(out var value) || value < 0))
            {
                throw MatrixException.BadJson($"{key} must be a non-negative integer number of milliseconds");
            }
        }
    }
}
