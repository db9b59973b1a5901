using System.Text.Json.Nodes;
using Lethe.Homeserver.AccountData;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Ephemeral;
using Lethe.Homeserver.Rooms;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using Lethe.Storage;

namespace Lethe.Homeserver.Sync;

/// <summary>Builds one /sync response between a <c>since</c> token (or the beginning) and the current stream positions.</summary>
public sealed class SyncResponseBuilder(HomeserverServices hs, Requester requester, SyncFilter filter, bool fullState, CancellationToken ct)
{
    private const int DefaultTimelineLimit = 10;

    /// <summary>State keys shown to invitees and knockers before they join (Synapse's default room_prejoin_state).</summary>
    private static readonly string[] PrejoinStateTypes =
        [EventTypes.Create, EventTypes.JoinRules, EventTypes.Name, "m.room.avatar", EventTypes.CanonicalAlias, EventTypes.Encryption, EventTypes.Topic];

    private readonly ClientEventFormat.Viewer _viewer = new(requester.UserId, requester.DeviceId);
    private IReadOnlySet<string> _ignored = new HashSet<string>();

    /// <summary>True when the built response has anything for the client (an incremental sync with nothing new waits instead).</summary>
    public bool HasContent { get; private set; }

    /// <summary>Builds the response from <paramref name="since"/> (null for an initial sync) up to <paramref name="upTo"/>.</summary>
    public async Task<JsonObject> BuildAsync(SyncToken? since, SyncToken upTo)
    {
        _ignored = await hs.IgnoredUsersAsync(requester.UserId, ct);
        var join = new JsonObject();
        var invite = new JsonObject();
        var leave = new JsonObject();
        var knock = new JsonObject();
        var sinceEvents = since?.Events ?? 0;
        var rooms = await hs.Notifier.RoomsOfAsync(requester.UserId, ct);
        var forgotten = rooms.Values.Any(m => m is Membership.Leave or Membership.Ban) ? await hs.RoomStore.ForgottenAsync(requester.UserId, ct) : [];
        await LoadChangesAsync(rooms, since, upTo);

        foreach (var (roomId, membership) in rooms)
        {
            if (!filter.MatchesRoom(roomId) || !filter.Timeline.MatchesRoom(roomId))
            {
                continue;
            }

            // An incremental sync looks only at rooms where something happened: all in-memory checks, no query per room.
            var roomChanged = since is null || await hs.Notifier.RoomPositionAsync(roomId, ct) > sinceEvents;
            if (since is not null && !fullState && !roomChanged && !HasEphemeralOrAccountDataChanges(roomId, since.Value))
            {
                continue;
            }

            var membershipEvent = roomChanged ? await MembershipEventAsync(roomId, upTo.Events) : null;
            var membershipChangedSince = since is null || (membershipEvent is not null && membershipEvent.StreamOrdering > sinceEvents);
            switch (membership)
            {
                case Membership.Join:
                    var joined = await JoinedRoomAsync(roomId, since, upTo, roomChanged, newlyJoined: since is not null && membershipChangedSince);
                    if (joined is not null)
                    {
                        join[roomId] = joined;
                    }

                    break;
                // The spec: invites from ignored users are not sent to the client.
                case Membership.Invite when membershipChangedSince && membershipEvent is not null && !_ignored.Contains(membershipEvent.Pdu.Sender):
                    invite[roomId] = new JsonObject { ["invite_state"] = new JsonObject { ["events"] = await StrippedStateAsync(roomId, membershipEvent) } };
                    break;
                case Membership.Knock when membershipChangedSince && membershipEvent is not null:
                    knock[roomId] = new JsonObject { ["knock_state"] = new JsonObject { ["events"] = await StrippedStateAsync(roomId, membershipEvent) } };
                    break;
                case Membership.Leave or Membership.Ban when membershipEvent is not null && !forgotten.Contains(roomId)
                    && ((since is null && filter.IncludeLeave) || (since is not null && membershipChangedSince)):
                    leave[roomId] = await LeftRoomAsync(roomId, since, membershipEvent);
                    break;
            }
        }

        var response = new JsonObject
        {
            ["next_batch"] = upTo.ToString(),
            ["rooms"] = new JsonObject { ["join"] = join, ["invite"] = invite, ["leave"] = leave, ["knock"] = knock },
            ["account_data"] = new JsonObject { ["events"] = await GlobalAccountDataAsync(since, upTo) },
            ["presence"] = new JsonObject { ["events"] = await PresenceAsync(rooms, since, upTo) },
        };
        HasContent |= await Keys.E2eeSyncSection.AddToAsync(hs, requester, since, upTo, response, ct);
        HasContent |= join.Count + invite.Count + leave.Count + knock.Count > 0
            || response["account_data"]!["events"]!.AsArray().Count > 0
            || response["presence"]!["events"]!.AsArray().Count > 0;
        return response;
    }

    private async Task<JsonObject?> JoinedRoomAsync(string roomId, SyncToken? since, SyncToken upTo, bool roomChanged, bool newlyJoined)
    {
        var sinceEvents = since?.Events ?? 0;
        var initial = since is null || newlyJoined;
        var limit = filter.Timeline.Limit ?? DefaultTimelineLimit;
        List<StoredEvent> timeline = [];
        var limited = false;
        long? prevBatch = null;
        if (initial || roomChanged)
        {
            (timeline, limited, prevBatch) = await TimelineAsync(roomId, initial ? long.MinValue : sinceEvents, upTo.Events, limit);
        }

        var ephemeral = await EphemeralAsync(roomId, since, upTo);
        var accountData = await RoomAccountDataAsync(roomId, since, upTo);
        var state = await StateSectionAsync(roomId, timeline, initial || fullState, limited, sinceEvents, upTo.Events);
        if (!initial && !fullState && timeline.Count == 0 && state.Count == 0 && ephemeral.Count == 0 && accountData.Count == 0)
        {
            return null;
        }

        HasContent |= timeline.Count > 0 || state.Count > 0 || ephemeral.Count > 0 || accountData.Count > 0;
        var room = new JsonObject
        {
            ["timeline"] = new JsonObject
            {
                ["events"] = await FormatAsync(timeline),
                ["limited"] = limited,
                ["prev_batch"] = SyncToken.Pagination(prevBatch ?? (timeline.Count > 0 ? timeline[0].StreamOrdering - 1 : upTo.Events)),
            },
            ["state"] = new JsonObject { ["events"] = await FormatAsync(state) },
            ["ephemeral"] = new JsonObject { ["events"] = ephemeral },
            ["account_data"] = new JsonObject { ["events"] = accountData },
        };
        var (unread, threadUnread) = await UnreadAsync(roomId);
        room["unread_notifications"] = unread;
        if (threadUnread is not null)
        {
            room["unread_thread_notifications"] = threadUnread;
        }

        if (initial || timeline.Any(e => e.Pdu.Type == EventTypes.Member) || state.Any(e => e.Pdu.Type == EventTypes.Member))
        {
            room["summary"] = await SummaryAsync(roomId);
        }

        return room;
    }

    /// <summary>The newest visible, filter-matching events in (after, upTo], oldest first, whether more exist, and where older ones start.</summary>
    private async Task<(List<StoredEvent> Events, bool Limited, long? PrevBatch)> TimelineAsync(string roomId, long after, long upTo, int limit)
    {
        var collected = new List<StoredEvent>();
        var position = upTo;
        var limited = false;
        for (var round = 0; round < 10; round++)
        {
            var batch = Math.Max(limit * 2, 20);
            var rows = await hs.EventStore.RoomPageAsync(roomId, after, position + 1, backwards: true, batch, ct);
            if (rows.Count == 0)
            {
                break;
            }

            var visible = await hs.Visibility.FilterAsync(requester.UserId, roomId, await hs.Events.FromRowsAsync(rows, ct), _ignored, ct);
            foreach (var e in visible)
            {
                if (!filter.Timeline.Matches(e.Pdu.Type, e.Pdu.Sender, e.Pdu.Content))
                {
                    continue;
                }

                if (collected.Count == limit)
                {
                    limited = true;
                    break;
                }

                collected.Add(e);
            }

            position = rows[^1].StreamOrdering - 1;
            if (limited || rows.Count < batch)
            {
                break;
            }
        }

        collected.Reverse();
        return (collected, limited, collected.Count > 0 ? collected[0].StreamOrdering - 1 : null);
    }

    /// <summary>
    /// The state section: for an initial (or full_state) sync, the state at the start of the timeline; for a limited
    /// incremental timeline, the state events that happened in the gap before it; otherwise nothing (the timeline has them).
    /// Lazy-loading filters keep only the member events of the timeline's senders (and the user's own).
    /// </summary>
    private async Task<List<StoredEvent>> StateSectionAsync(string roomId, List<StoredEvent> timeline, bool full, bool limited, long since, long upTo)
    {
        var lazy = filter.State.LazyLoadMembers || filter.Timeline.LazyLoadMembers;
        IReadOnlyDictionary<StateKey, string>? atStart = null; // the state at the timeline's start, once loaded
        Dictionary<StateKey, string> state;
        if (full)
        {
            if (timeline.Count > 0)
            {
                state = new Dictionary<StateKey, string>(await hs.StateStore.GetGroupAsync(timeline[0].Row.StateGroup, ct));
            }
            else
            {
                var snap = await hs.Snapshots.GetAsync(roomId, ct);
                state = snap is null ? [] : new Dictionary<StateKey, string>(snap.State);
            }
        }
        else if (limited && timeline.Count > 0)
        {
            // State changes between since and the timeline's start: compare the state then and at the timeline's start.
            var at = atStart = await hs.StateStore.GetGroupAsync(timeline[0].Row.StateGroup, ct);
            var sinceRows = await hs.EventStore.RoomPageAsync(roomId, long.MinValue, since + 1, backwards: true, 1, ct);
            IReadOnlyDictionary<StateKey, string> before = new Dictionary<StateKey, string>();
            if (sinceRows.Count > 0)
            {
                var last = (await hs.Events.FromRowsAsync(sinceRows, ct))[0];
                var map = new Dictionary<StateKey, string>(await hs.StateStore.GetGroupAsync(last.Row.StateGroup, ct));
                if (last.Pdu.IsState)
                {
                    map[last.Pdu.StateMapKey] = last.EventId;
                }

                before = map;
            }

            state = at.Where(kv => !before.TryGetValue(kv.Key, out var old) || old != kv.Value).ToDictionary(kv => kv.Key, kv => kv.Value);
        }
        else if (lazy && timeline.Count > 0)
        {
            state = [];
        }
        else
        {
            return [];
        }

        var inTimeline = timeline.Select(e => e.EventId).ToHashSet(StringComparer.Ordinal);
        if (lazy)
        {
            var timelineSenders = timeline.Select(e => e.Pdu.Sender).ToHashSet(StringComparer.Ordinal);
            var senders = timelineSenders.Append(requester.UserId).ToHashSet(StringComparer.Ordinal);
            state = state.Where(kv => kv.Key.Type != EventTypes.Member || senders.Contains(kv.Key.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
            if (!full && timeline.Count > 0)
            {
                // An incremental sync: a lazy-loading client was only ever sent the members of earlier timelines, so this
                // timeline's senders come with their member events (as of the timeline's start) even when those did not
                // change. Lethe keeps no per-device record of what it sent, so with include_redundant_members false they
                // may repeat; the spec has clients tolerate that.
                atStart ??= await hs.StateStore.GetGroupAsync(timeline[0].Row.StateGroup, ct);
                foreach (var sender in timelineSenders)
                {
                    var key = new StateKey(EventTypes.Member, sender);
                    if (atStart.TryGetValue(key, out var memberId))
                    {
                        state.TryAdd(key, memberId);
                    }
                }
            }
        }

        var events = await hs.Events.GetManyAsync(state.Values.Where(id => !inTimeline.Contains(id)), ct);
        return events.Values
            .Where(e => e.StreamOrdering <= upTo && filter.State.Matches(e.Pdu.Type, e.Pdu.Sender))
            .OrderBy(e => e.StreamOrdering)
            .ToList();
    }

    private async Task<JsonObject> LeftRoomAsync(string roomId, SyncToken? since, StoredEvent leaveEvent)
    {
        var limit = filter.Timeline.Limit ?? DefaultTimelineLimit;
        var (timeline, limited, prevBatch) = await TimelineAsync(roomId, since?.Events ?? long.MinValue, leaveEvent.StreamOrdering, limit);
        var state = await StateSectionAsync(roomId, timeline, full: true, limited, since?.Events ?? 0, leaveEvent.StreamOrdering);
        HasContent = true;
        return new JsonObject
        {
            ["timeline"] = new JsonObject
            {
                ["events"] = await FormatAsync(timeline),
                ["limited"] = limited,
                ["prev_batch"] = SyncToken.Pagination(prevBatch ?? leaveEvent.StreamOrdering),
            },
            ["state"] = new JsonObject { ["events"] = await FormatAsync(state) },
            ["account_data"] = new JsonObject { ["events"] = new JsonArray() },
        };
    }

    /// <summary>The user's current membership event in the room, if it is at or before <paramref name="upTo"/>.</summary>
    private async Task<StoredEvent?> MembershipEventAsync(string roomId, long upTo)
    {
        var snap = await hs.Snapshots.GetAsync(roomId, ct);
        if (snap?.StateEventId(EventTypes.Member, requester.UserId) is not { } id || await hs.Events.GetAsync(id, ct) is not { } e)
        {
            return null;
        }

        return e.StreamOrdering <= upTo ? e : null;
    }

    private async Task<JsonArray> StrippedStateAsync(string roomId, StoredEvent membershipEvent)
    {
        var snap = await hs.Snapshots.GetAsync(roomId, ct);
        var result = new JsonArray();
        if (snap is not null)
        {
            var ids = PrejoinStateTypes.Select(t => snap.StateEventId(t)).OfType<string>();
            foreach (var e in (await hs.Events.GetManyAsync(ids, ct)).Values.OrderBy(e => e.StreamOrdering))
            {
                result.Add((JsonNode)ClientEventFormat.Stripped(e.Pdu));
            }

            if (snap.StateEventId(EventTypes.Member, membershipEvent.Pdu.Sender) is { } senderId && senderId != membershipEvent.EventId
                && await hs.Events.GetAsync(senderId, ct) is { } sender)
            {
                result.Add((JsonNode)ClientEventFormat.Stripped(sender.Pdu));
            }
        }

        // The invite itself goes last, in client format, so clients can show who invited them and when.
        result.Add((JsonNode)await hs.Format.ToClientAsync(membershipEvent, _viewer, includeRoomId: false, ct));
        HasContent = true;
        return result;
    }

    private async Task<JsonArray> EphemeralAsync(string roomId, SyncToken? since, SyncToken upTo)
    {
        var events = new JsonArray();
        var (typing, typingPosition) = hs.Typing.Get(roomId);
        var typingSince = since is { } s && s.Typing <= hs.Typing.Current ? s.Typing : 0;
        if ((since is null && typing.Count > 0) || (since is not null && typingPosition > typingSince))
        {
            if (filter.Ephemeral.Matches("m.typing", ""))
            {
                events.Add((JsonNode)new JsonObject
                {
                    ["type"] = "m.typing",
                    ["content"] = new JsonObject { ["user_ids"] = new JsonArray(typing.Where(u => !_ignored.Contains(u)).Select(u => (JsonNode)u).ToArray()) },
                });
            }
        }

        if (filter.Ephemeral.Matches("m.receipt", ""))
        {
            var receipts = since is null
                ? await hs.Receipts.ChangedAsync([roomId], 0, upTo.Receipts, ct)
                : _receiptsByRoom.GetValueOrDefault(roomId) ?? [];
            var content = new JsonObject();
            foreach (var r in receipts)
            {
                if ((r.ReceiptType == "m.read.private" && r.UserId != requester.UserId) || _ignored.Contains(r.UserId))
                {
                    continue;
                }

                var byEvent = content[r.EventId] as JsonObject ?? (JsonObject)(content[r.EventId] = new JsonObject());
                var byType = byEvent[r.ReceiptType] as JsonObject ?? (JsonObject)(byEvent[r.ReceiptType] = new JsonObject());
                var info = new JsonObject { ["ts"] = r.Ts };
                if (r.ThreadId.Length > 0)
                {
                    info["thread_id"] = r.ThreadId;
                }

                byType[r.UserId] = info;
            }

            if (content.Count > 0)
            {
                events.Add((JsonNode)new JsonObject { ["type"] = "m.receipt", ["content"] = content });
            }
        }

        return events;
    }

    private async Task<JsonArray> RoomAccountDataAsync(string roomId, SyncToken? since, SyncToken upTo)
    {
        var result = new JsonArray();
        foreach (var row in await AccountDataSinceAsync(since, upTo))
        {
            if (row.RoomId == roomId && filter.RoomAccountData.Matches(row.Type, requester.UserId))
            {
                result.Add((JsonNode)new JsonObject { ["type"] = row.Type, ["content"] = AccountDataJson.Parse(row.Content) });
            }
        }

        return result;
    }

    private async Task<JsonArray> GlobalAccountDataAsync(SyncToken? since, SyncToken upTo)
    {
        var result = new JsonArray();
        var pushRulesSeen = false;
        foreach (var row in await AccountDataSinceAsync(since, upTo))
        {
            if (row.RoomId.Length == 0 && filter.AccountData.Matches(row.Type, requester.UserId))
            {
                // Push rules are shown as the current server defaults plus the user's changes, never a stale copy.
                var content = row.Type == "m.push_rules"
                    ? Push.PushRuleSet.FromStored(requester.UserId, AccountDataJson.Parse(row.Content)).ToAccountData()
                    : AccountDataJson.Parse(row.Content);
                pushRulesSeen |= row.Type == "m.push_rules";
                result.Add((JsonNode)new JsonObject { ["type"] = row.Type, ["content"] = content });
            }
        }

        // Clients read their push rules from the initial sync; a user who never changed one has none stored.
        if (since is null && !pushRulesSeen && filter.AccountData.Matches("m.push_rules", requester.UserId))
        {
            result.Add((JsonNode)new JsonObject { ["type"] = "m.push_rules", ["content"] = Push.PushRuleStore.DefaultAccountData(requester.UserId) });
        }

        return result;
    }

    private List<AccountDataRow>? _accountData;

    private async Task<List<AccountDataRow>> AccountDataSinceAsync(SyncToken? since, SyncToken upTo) =>
        _accountData ??= await hs.AccountData.ChangedAsync(requester.UserId, since?.AccountData ?? 0, upTo.AccountData, ct);

    private async Task<JsonArray> PresenceAsync(System.Collections.Immutable.ImmutableDictionary<string, string> rooms, SyncToken? since, SyncToken upTo)
    {
        var result = new JsonArray();
        if (!hs.Config.PresenceEnabled)
        {
            return result;
        }

        // Incremental: the few changes since the token, read before the rooms, which are only needed to filter them
        // (going through 1,000 joined rooms on every sync with nothing changed cost ~10 % of it).
        List<PresenceRow> incremental = [];
        if (since is { } from)
        {
            incremental = from.Presence < upTo.Presence ? await hs.Presence.ChangedSinceAsync(from.Presence, upTo.Presence, ct) : [];
            if (incremental.Count == 0)
            {
                return result;
            }
        }

        var joinedRooms = new List<RoomSnapshot>();
        foreach (var (roomId, membership) in rooms)
        {
            if (membership == Membership.Join && await hs.Snapshots.GetAsync(roomId, ct) is { } snap)
            {
                joinedRooms.Add(snap);
            }
        }

        bool SharesRoom(string user) => user == requester.UserId || joinedRooms.Any(r => r.MembershipOf(user) == Membership.Join);

        List<PresenceRow> changes;
        if (since is null)
        {
            // Initial sync: everyone the user shares a joined room with, and themselves.
            var users = new HashSet<string>(StringComparer.Ordinal) { requester.UserId };
            foreach (var snap in joinedRooms)
            {
                foreach (var (user, m) in snap.Memberships)
                {
                    if (m == Membership.Join)
                    {
                        users.Add(user);
                    }
                }
            }

            changes = await hs.Presence.ChangedAsync(users, 0, upTo.Presence, ct);
        }
        else
        {
            // Kept if their user shares a room (cost follows changes, not rooms).
            changes = incremental.Where(r => SharesRoom(r.UserId)).ToList();
        }

        foreach (var row in changes)
        {
            if (!_ignored.Contains(row.UserId) && filter.Presence.Matches("m.presence", row.UserId))
            {
                result.Add((JsonNode)new JsonObject { ["type"] = "m.presence", ["sender"] = row.UserId, ["content"] = EphemeralEndpoints.PresenceContent(hs, row, row.UserId) });
            }
        }

        return result;
    }

    private Dictionary<string, List<ReceiptRow>> _receiptsByRoom = new(StringComparer.Ordinal);

    /// <summary>For an incremental sync, reads the receipt and account data changes since the token once, for all rooms.</summary>
    private async Task LoadChangesAsync(System.Collections.Immutable.ImmutableDictionary<string, string> rooms, SyncToken? since, SyncToken upTo)
    {
        await AccountDataSinceAsync(since, upTo);
        if (since is { } s)
        {
            _receiptsByRoom = (await hs.Receipts.ChangedSinceAsync(s.Receipts, upTo.Receipts, ct))
                .Where(r => rooms.ContainsKey(r.RoomId))
                .GroupBy(r => r.RoomId, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        }
    }

    private bool HasEphemeralOrAccountDataChanges(string roomId, SyncToken since)
    {
        var typingSince = since.Typing <= hs.Typing.Current ? since.Typing : 0;
        return hs.Typing.Get(roomId).Position > typingSince
            || _receiptsByRoom.ContainsKey(roomId)
            || (_accountData?.Any(a => a.RoomId == roomId) ?? false);
    }

    /// <summary>
    /// Unread counts from the push rule outcomes stored with each event (see <see cref="Push.NotificationCounts"/>). With
    /// <c>unread_thread_notifications</c> in the filter, threads are counted separately.
    /// </summary>
    private async Task<(JsonObject Main, JsonObject? Threads)> UnreadAsync(string roomId)
    {
        var separate = filter.Timeline.UnreadThreadNotifications;
        var counts = await hs.Push.Counts.CountAsync(requester.UserId, roomId, _ignored, separate, () => JoinedAtAsync(roomId), ct);
        JsonObject? threads = null;
        if (separate)
        {
            threads = [];
            foreach (var (thread, count) in counts.Threads)
            {
                threads[thread] = count.ToJson();
            }
        }

        return (counts.Main.ToJson(), threads);
    }

    private async Task<long> JoinedAtAsync(string roomId)
    {
        var membership = await MembershipEventAsync(roomId, long.MaxValue);
        return membership?.StreamOrdering ?? 0;
    }

    private async Task<JsonObject> SummaryAsync(string roomId)
    {
        var snap = await hs.Snapshots.GetAsync(roomId, ct);
        if (snap is null)
        {
            return [];
        }

        var joined = snap.Memberships.Count(m => m.Value == Membership.Join);
        var invited = snap.Memberships.Count(m => m.Value == Membership.Invite);
        var summary = new JsonObject { ["m.joined_member_count"] = joined, ["m.invited_member_count"] = invited };
        if (snap.StateEventId(EventTypes.Name) is null && snap.StateEventId(EventTypes.CanonicalAlias) is null)
        {
            var heroes = snap.Memberships
                .Where(m => m.Key != requester.UserId && m.Value is Membership.Join or Membership.Invite)
                .Select(m => m.Key)
                .Order(StringComparer.Ordinal)
                .Take(5)
                .Select(u => (JsonNode)u)
                .ToArray();
            summary["m.heroes"] = new JsonArray(heroes);
        }

        return summary;
    }

    private async Task<JsonArray> FormatAsync(IEnumerable<StoredEvent> events)
    {
        var array = await hs.Format.ToClientAsync(events, _viewer, includeRoomId: false, ct);
        if (filter.EventFields is { } fields)
        {
            for (var i = 0; i < array.Count; i++)
            {
                array[i] = Project((JsonObject)array[i]!, fields);
            }
        }

        return array;
    }

    /// <summary>Keeps only the dotted paths listed in the filter's event_fields.</summary>
    private static JsonObject Project(JsonObject e, IReadOnlyList<string> fields)
    {
        var result = new JsonObject();
        foreach (var field in fields)
        {
            var parts = field.Split('.');
            JsonNode? source = e;
            var target = result;
            for (var i = 0; i < parts.Length && source is JsonObject obj; i++)
            {
                if (!obj.TryGetPropertyValue(parts[i], out var next))
                {
                    break;
                }

                if (i == parts.Length - 1)
                {
                    target[parts[i]] = next?.DeepClone();
                }
                else
                {
                    target = target[parts[i]] as JsonObject ?? (JsonObject)(target[parts[i]] = new JsonObject());
                    source = next;
                }
            }
        }

        return result;
    }
}
