using System.Collections.Concurrent;

namespace Lethe.Homeserver.Ephemeral;

/// <summary>Who is typing in which room, in memory only: typing is ephemeral and never stored. Each change advances a stream position.</summary>
public sealed class TypingNotifications(TimeProvider clock)
{
    private readonly ConcurrentDictionary<string, Room> _rooms = new(StringComparer.Ordinal);
    private long _position;

    /// <summary>The newest typing position.</summary>
    public long Current => Interlocked.Read(ref _position);

    /// <summary>Marks a user as typing until <paramref name="timeoutMs"/> from now, or as stopped. Returns true when the room's typing set changed.</summary>
    public bool Set(string roomId, string userId, bool typing, long timeoutMs)
    {
        var room = _rooms.GetOrAdd(roomId, _ => new Room());
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        lock (room)
        {
            var was = room.Expiry.TryGetValue(userId, out var until) && until > now;
            if (typing)
            {
                room.Expiry[userId] = now + timeoutMs;
            }
            else
            {
                room.Expiry.Remove(userId);
            }

            if (was == typing)
            {
                return false;
            }

            room.Position = Interlocked.Increment(ref _position);
            return true;
        }
    }

    /// <summary>The users typing in a room now, and the position of the room's last change.</summary>
    public (List<string> Users, long Position) Get(string roomId)
    {
        if (!_rooms.TryGetValue(roomId, out var room))
        {
            return ([], 0);
        }

        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        lock (room)
        {
            var expired = room.Expiry.Where(kv => kv.Value <= now).Select(kv => kv.Key).ToList();
            foreach (var user in expired)
            {
                room.Expiry.Remove(user);
            }

            if (expired.Count > 0)
            {
                room.Position = Interlocked.Increment(ref _position);
            }

            return (room.Expiry.Keys.Order(StringComparer.Ordinal).ToList(), room.Position);
        }
    }

    /// <summary>The soonest moment a typing notification in any of these rooms expires (ms), so long-polls can wake for it.</summary>
    public long? NextExpiry(IEnumerable<string> roomIds)
    {
        long? next = null;
        foreach (var roomId in roomIds)
        {
            if (_rooms.TryGetValue(roomId, out var room))
            {
                lock (room)
                {
                    foreach (var until in room.Expiry.Values)
                    {
                        next = next is null ? until : Math.Min(next.Value, until);
                    }
                }
            }
        }

        return next;
    }

    private sealed class Room
    {
        public Dictionary<string, long> Expiry { get; } = new(StringComparer.Ordinal);

        public long Position { get; set; }
    }
}
