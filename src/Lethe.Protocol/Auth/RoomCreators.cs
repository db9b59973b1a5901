using System.Text.Json.Nodes;
using Lethe.Protocol.Events;
using Lethe.Protocol.Identifiers;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Auth;

/// <summary>Who created a room, as its <c>m.room.create</c> event says, and whether they are privileged (room version 12).</summary>
public sealed class RoomCreators
{
    private readonly string[] _all;

    private RoomCreators(string? creator, string[] all, bool privileged)
    {
        Creator = creator;
        _all = all;
        All = Array.AsReadOnly(all);
        ArePrivileged = privileged;
    }

    /// <summary>No create event is known: nobody counts as creator.</summary>
    public static RoomCreators None { get; } = new(null, [], false);

    /// <summary>The original creator: <c>content.creator</c> in room versions 1–10, the create event's sender from 11. Null when absent.</summary>
    public string? Creator { get; }

    /// <summary>Every creator: from v12 the sender plus valid <c>additional_creators</c>; before, just <see cref="Creator"/>.</summary>
    public IReadOnlyList<string> All { get; }

    /// <summary>True from room version 12, where creators have infinite power and cannot appear in <c>users</c>.</summary>
    public bool ArePrivileged { get; }

    /// <summary>Reads the creators from a room's create event.</summary>
    public static RoomCreators FromCreateEvent(Pdu create)
    {
        var version = create.RoomVersion;
        var creator = version.ImplicitCreator ? create.Sender : create.Content.GetString("creator");
        if (!version.PrivilegedCreators)
        {
            return new RoomCreators(creator, creator is null ? [] : [creator], false);
        }

        var all = new List<string> { create.Sender };
        if (create.Content["additional_creators"] is JsonArray extra)
        {
            foreach (var item in extra)
            {
                if (item.AsString() is { } id && UserId.TryParse(id, out _) && !all.Contains(id))
                {
                    all.Add(id);
                }
            }
        }

        return new RoomCreators(creator, [.. all], true);
    }

    /// <summary>True when <paramref name="userId"/> is one of <see cref="All"/>.</summary>
    public bool Contains(string userId) => Array.IndexOf(_all, userId) >= 0;
}
