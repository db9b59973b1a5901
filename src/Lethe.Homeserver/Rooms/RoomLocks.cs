using System.Collections.Concurrent;

namespace Lethe.Homeserver.Rooms;

/// <summary>One write lock per room: events of a room are built and persisted one at a time, so prev_events and state stay consistent.</summary>
public sealed class RoomLocks
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);

    /// <summary>Takes the room's lock; dispose the result to release it.</summary>
    public async Task<IDisposable> AcquireAsync(string roomId, CancellationToken ct)
    {
        var semaphore = _locks.GetOrAdd(roomId, _ => new SemaphoreSlim(1, 1));
        await semaphore.WaitAsync(ct);
        return new Releaser(semaphore);
    }

    private sealed class Releaser(SemaphoreSlim semaphore) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                semaphore.Release();
            }
        }
    }
}
