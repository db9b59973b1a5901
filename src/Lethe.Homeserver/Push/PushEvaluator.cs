using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Text;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Rooms;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using Lethe.Storage;

namespace Lethe.Homeserver.Push;

/// <summary>What evaluating one event gave: the row to store with it (null when nobody is notified) and the users with pushers to notify.</summary>
public sealed record PushEvaluation(PushActionRow? Row, IReadOnlyList<(string UserId, PushActions Actions)> ToPush);

/// <summary>
/// Evaluates an event against the push rules of every local member of its room (and of a local invitee), before it is
/// persisted. Cheap per member: the room's local members, display names and power levels are kept per room and
/// rebuilt only when its state changes, rules are compiled and cached, and the user-independent part of each
/// server-default rule is evaluated once per event.
/// </summary>
public sealed class PushEvaluator(HomeserverServices hs)
{
    private readonly ConcurrentDictionary<string, RoomMembers> _rooms = new(StringComparer.Ordinal);

    /// <summary>Evaluates <paramref name="pdu"/>, about to be persisted in the room described by <paramref name="snap"/> (its state before the event).</summary>
    public async Task<PushEvaluation> EvaluateAsync(Pdu pdu, RoomSnapshot snap, CancellationToken ct)
    {
        var members = await MembersAsync(snap, ct);
        var rulesVersion = hs.Push.Rules.Version;
        if (members.Rules is null || members.RulesVersion != rulesVersion)
        {
            var ids = new string[members.Local.Length];
            for (var i = 0; i < ids.Length; i++)
            {
                ids[i] = members.Local[i].UserId;
            }

            // Kept with the room's members until the room's state or anyone's rules change: no lookup per member per event.
            members.Rules = await hs.Push.Rules.CompiledAsync(ids, ct);
            members.RulesVersion = rulesVersion;
        }

        var users = new List<PushUser>(members.Local.Length + 1);
        var rules = new List<CompiledPushRules>(members.Local.Length + 1);
        for (var i = 0; i < members.Local.Length; i++)
        {
            if (members.Local[i].UserId != pdu.Sender)
            {
                users.Add(members.Local[i]);
                rules.Add(members.Rules[i]);
            }
        }

        if (pdu.Membership == Membership.Invite && pdu.StateKey is { } invitee && invitee != pdu.Sender && IsLocal(invitee)
            && snap.MembershipOf(invitee) != Membership.Join)
        {
            var name = pdu.Content["displayname"] is JsonValue v && v.TryGetValue<string>(out var n) ? n : null;
            users.Add(new PushUser(invitee, Localpart(invitee), name));
            rules.Add((await hs.Push.Rules.CompiledAsync([invitee], ct))[0]);
        }

        if (users.Count == 0)
        {
            return new PushEvaluation(null, []);
        }

        var pushUsers = await hs.Push.UsersWithPushersAsync(ct);
        var anyPushers = !pushUsers.IsEmpty;
        var e = new PushEvent(pdu, members.JoinedCount, () => members.PowerLevels);
        var outcomes = new byte[users.Count];
        Span<int> tally = stackalloc int[8];
        List<(string, PushActions)>? toPush = null;
        for (var i = 0; i < users.Count; i++)
        {
            var actions = rules[i].Evaluate(e, users[i]);
            outcomes[i] = actions.Outcome;
            tally[outcomes[i]]++;
            if (anyPushers && actions.Notify && pushUsers.Contains(users[i].UserId))
            {
                (toPush ??= []).Add((users[i].UserId, actions));
            }
        }

        if (tally[0] == users.Count)
        {
            return new PushEvaluation(null, []);
        }

        byte common = 0;
        for (byte o = 1; o < 8; o++)
        {
            if (tally[o] > tally[common])
            {
                common = o;
            }
        }

        var exceptions = new StringBuilder();
        for (var i = 0; i < users.Count; i++)
        {
            if (outcomes[i] != common)
            {
                exceptions.Append('\n').Append(users[i].UserId).Append('\t').Append((char)('0' + outcomes[i]));
            }
        }

        var thread = await ThreadOfAsync(pdu.Content, ct);
        var row = new PushActionRow(pdu.EventId, pdu.RoomId, 0, thread, common, exceptions.ToString());
        return new PushEvaluation(row, (IReadOnlyList<(string, PushActions)>?)toPush ?? []);
    }

    /// <summary>
    /// The thread an event belongs to for counting: its own m.thread relation, or, for an event relating to another
    /// (a reaction to a thread reply, say), that event's thread, following at most 3 hops as the spec recommends.
    /// </summary>
    private async Task<string?> ThreadOfAsync(JsonObject content, CancellationToken ct)
    {
        var rel = Relation.Of(content);
        for (var hop = 0; rel is not null && hop < 3; hop++)
        {
            if (rel.RelType == "m.thread")
            {
                return rel.EventId;
            }

            if (await hs.Events.GetAsync(rel.EventId, ct) is not { } target)
            {
                return null;
            }

            rel = Relation.Of(target.Pdu.Content);
        }

        return null;
    }

    private bool IsLocal(string userId) => userId.EndsWith(":" + hs.ServerName, StringComparison.Ordinal);

    private static string Localpart(string userId)
    {
        var colon = userId.IndexOf(':', StringComparison.Ordinal);
        return colon > 1 ? userId[1..colon] : userId.TrimStart('@');
    }

    /// <summary>The room's local joined members with their display names, joined count and power levels, for the snapshot's state.</summary>
    private async Task<RoomMembers> MembersAsync(RoomSnapshot snap, CancellationToken ct)
    {
        if (_rooms.TryGetValue(snap.RoomId, out var cached) && ReferenceEquals(cached.State, snap.State))
        {
            return cached;
        }

        var previous = cached?.Names ?? new Dictionary<string, (string, string?)>(StringComparer.Ordinal);
        var names = new Dictionary<string, (string EventId, string? Name)>(StringComparer.Ordinal);
        var toFetch = new List<string>();
        var joined = 0;
        foreach (var (userId, membership) in snap.Memberships)
        {
            if (membership != Membership.Join)
            {
                continue;
            }

            joined++;
            if (!IsLocal(userId) || snap.StateEventId(EventTypes.Member, userId) is not { } eventId)
            {
                continue;
            }

            if (previous.TryGetValue(userId, out var known) && known.Item1 == eventId)
            {
                names[userId] = known;
            }
            else
            {
                names[userId] = (eventId, null);
                toFetch.Add(eventId);
            }
        }

        if (toFetch.Count > 0)
        {
            var events = await hs.Events.GetManyAsync(toFetch, ct);
            foreach (var (userId, (eventId, _)) in names.ToList())
            {
                if (events.TryGetValue(eventId, out var member))
                {
                    var name = member.Pdu.Content["displayname"] is JsonValue v && v.TryGetValue<string>(out var n) ? n : null;
                    names[userId] = (eventId, name);
                }
            }
        }

        PowerLevels? levels = null;
        if (snap.StateEventId(EventTypes.Create) is { } createId)
        {
            var stateEvents = await hs.Events.GetManyAsync(
                snap.StateEventId(EventTypes.PowerLevels) is { } plId ? [createId, plId] : [createId], ct);
            if (stateEvents.TryGetValue(createId, out var create))
            {
                var pl = snap.StateEventId(EventTypes.PowerLevels) is { } id && stateEvents.TryGetValue(id, out var p) ? p.Pdu : null;
                levels = PowerLevels.FromState(create.Pdu, pl);
            }
        }

        var local = new PushUser[names.Count];
        var i = 0;
        foreach (var (userId, (_, name)) in names)
        {
            local[i++] = new PushUser(userId, Localpart(userId), name);
        }

        var built = new RoomMembers(snap.State, names, local, joined, levels);
        _rooms[snap.RoomId] = built;
        return built;
    }

    private sealed record RoomMembers(
        ImmutableDictionary<StateKey, string> State,
        Dictionary<string, (string EventId, string? Name)> Names,
        PushUser[] Local,
        int JoinedCount,
        PowerLevels? PowerLevels)
    {
        /// <summary>The compiled rules of <see cref="Local"/>, index for index, as of <see cref="RulesVersion"/>.</summary>
        public CompiledPushRules[]? Rules { get; set; }

        /// <summary>The rule store's version the rules were read at.</summary>
        public long RulesVersion { get; set; }
    }
}
