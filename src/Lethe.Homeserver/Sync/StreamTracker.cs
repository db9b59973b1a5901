using System.Collections.Concurrent;
using Lethe.Storage;

namespace Lethe.Homeserver.Sync;

/// <summary>The newest committed position of each stream, in memory; advanced after each commit.</summary>
/// <remarks>
/// Positions of one stream commit in allocation order (see <see cref="StreamPositions"/>), so once position N has
/// committed every smaller position has too: reading a stream up to <see cref="Current"/> never misses anything.
/// </remarks>
public sealed class StreamTracker
{
    /// <summary>Room events.</summary>
    public const string Events = "events";

    /// <summary>Account data (global and per room).</summary>
    public const string AccountData = "account_data";

    /// <summary>Read receipts.</summary>
    public const string Receipts = "receipts";

    /// <summary>Presence.</summary>
    public const string Presence = "presence";

    /// <summary>To-device messages.</summary>
    public const string ToDevice = "to_device";

    /// <summary>Device list changes.</summary>
    public const string DeviceLists = "device_lists";

    private readonly ConcurrentDictionary<string, long> _current = new(StringComparer.Ordinal);

    /// <summary>Loads the committed positions from the database at start-up.</summary>
    public async Task LoadAsync(Database db, CancellationToken ct)
    {
        foreach (var stream in new[] { Events, AccountData, Receipts, Presence, ToDevice, DeviceLists })
        {
            _current[stream] = await StreamPositions.CurrentAsync(db, stream, ct);
        }
    }

    /// <summary>The newest committed position of a stream.</summary>
    public long Current(string stream) => _current.TryGetValue(stream, out var p) ? p : 0;

    /// <summary>Records that <paramref name="position"/> has committed.</summary>
    public void Advance(string stream, long position) =>
        _current.AddOrUpdate(stream, position, (_, old) => Math.Max(old, position));
}
