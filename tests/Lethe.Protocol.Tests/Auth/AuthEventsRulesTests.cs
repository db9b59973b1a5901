using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.Auth;

/// <summary>Rule 2 (v12: rules 2 and 3): the event's own auth_events.</summary>
public class AuthEventsRulesTests
{
    private static readonly JsonObject Text = new() { ["body"] = "hi" };

    private static List<EventRecord> Records(TestRoom room, Pdu pdu, Func<Pdu, bool>? rejected = null)
    {
        var records = new List<EventRecord>();
        foreach (var id in pdu.AuthEvents)
        {
            var e = room.Events.Find(x => x.EventId == id) ?? room.Create;
            records.Add(new EventRecord(e, rejected?.Invoke(e) ?? false));
        }

        return records;
    }

    private static AuthDecision Check(TestRoom room, Pdu pdu, Func<Pdu, bool>? rejected = null) =>
        EventAuthorizer.Default.CheckWithAuthEvents(pdu, Records(room, pdu, rejected), new EventRecord(room.Create));

    [Theory]
    [InlineData(1)]
    [InlineData(11)]
    [InlineData(12)]
    public void AMessageWithTheSelectedAuthEventsIsAllowed(int version)
    {
        RoomVersion.TryGet(version.ToString(System.Globalization.CultureInfo.InvariantCulture), out var v);
        var room = TestRoom.Standard(v!);
        var decision = Check(room, room.Build(Alice, "m.room.message", null, Text));
        Assert.True(decision.IsAllowed, decision.ToString());
    }

    [Fact]
    public void DuplicateKeysAreRejected()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        var oldLevels = room.State[new StateKey(EventTypes.PowerLevels, "")];
        room.SetPowerLevels(Alice, new JsonObject { ["users"] = new JsonObject { [Alice] = 100 }, ["ban"] = 60 });
        var ids = new List<string>(AuthEventSelection.SelectEventIds(RoomVersion.V11, "m.room.message", Alice, null, Text, Ids(room))) { oldLevels.EventId };
        var decision = Check(room, room.Build(Alice, "m.room.message", null, Text, authEvents: ids));
        Assert.Equal(("2.1", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void KeysTheSelectionDoesNotPickAreRejected()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        var ids = new List<string>(AuthEventSelection.SelectEventIds(RoomVersion.V11, "m.room.message", Alice, null, Text, Ids(room)))
        {
            room.State[new StateKey(EventTypes.JoinRules, "")].EventId,
        };
        var decision = Check(room, room.Build(Alice, "m.room.message", null, Text, authEvents: ids));
        Assert.Equal(("2.2", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void NonStateAuthEventsAreRejected()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        var message = room.Apply(room.Build(Alice, "m.room.message", null, Text));
        var ids = new List<string>(AuthEventSelection.SelectEventIds(RoomVersion.V11, "m.room.message", Alice, null, Text, Ids(room))) { message.EventId };
        var decision = Check(room, room.Build(Alice, "m.room.message", null, Text, authEvents: ids));
        Assert.Equal(("2.2", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void RejectedAuthEventsAreRejected()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        var decision = Check(room, room.Build(Alice, "m.room.message", null, Text), e => e.Type == EventTypes.PowerLevels);
        Assert.Equal(("2.3", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void AMissingCreateEventIsRejectedBeforeV12()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        var ids = new List<string>(AuthEventSelection.SelectEventIds(RoomVersion.V11, "m.room.message", Alice, null, Text, Ids(room)));
        ids.Remove(room.Create.EventId);
        var decision = Check(room, room.Build(Alice, "m.room.message", null, Text, authEvents: ids));
        Assert.Equal(("2.4", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void AuthEventsFromAnotherRoomAreRejected()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        var other = TestRoom.Standard(RoomVersion.V11);
        var foreignMember = other.State[new StateKey(EventTypes.Member, Alice)];
        var ids = new List<string> { room.Create.EventId, room.State[new StateKey(EventTypes.PowerLevels, "")].EventId, foreignMember.EventId };
        var pdu = room.Build(Alice, "m.room.message", null, Text, authEvents: ids);
        var records = new List<EventRecord> { new(room.Create), new(room.State[new StateKey(EventTypes.PowerLevels, "")]), new(foreignMember) };
        var decision = EventAuthorizer.Default.CheckWithAuthEvents(pdu, records);
        Assert.Equal(("2.5", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void AnAuthEventTheCallerDidNotSupplyIsAnError()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        var pdu = room.Build(Alice, "m.room.message", null, Text);
        Assert.Throws<ArgumentException>(() => EventAuthorizer.Default.CheckWithAuthEvents(pdu, []));
    }

    [Fact]
    public void TheStateRulesRunAgainstTheAuthEvents()
    {
        // Bob's own membership is not among the auth events, so he is not in the room as far as they say.
        var room = TestRoom.Standard(RoomVersion.V11);
        room.Join(Bob);
        var ids = new List<string> { room.Create.EventId, room.State[new StateKey(EventTypes.PowerLevels, "")].EventId };
        var decision = Check(room, room.Build(Bob, "m.room.message", null, Text, authEvents: ids));
        Assert.Equal(("5", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void V12CitingTheCreateEventIsRejected()
    {
        var room = TestRoom.Standard(RoomVersion.V12);
        var ids = new List<string>(AuthEventSelection.SelectEventIds(RoomVersion.V12, "m.room.message", Alice, null, Text, Ids(room))) { room.Create.EventId };
        var decision = Check(room, room.Build(Alice, "m.room.message", null, Text, authEvents: ids));
        Assert.Equal(("3.2", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void V12NeedsTheCreateEventNamedByTheRoomId()
    {
        var room = TestRoom.Standard(RoomVersion.V12);
        var pdu = room.Build(Alice, "m.room.message", null, Text);
        var decision = EventAuthorizer.Default.CheckWithAuthEvents(pdu, Records(room, pdu), roomCreateEvent: null);
        Assert.Equal(("2", false), (decision.Rule, decision.IsAllowed));

        var otherCreate = new TestRoom(RoomVersion.V12).Create;
        decision = EventAuthorizer.Default.CheckWithAuthEvents(pdu, Records(room, pdu), new EventRecord(otherCreate));
        Assert.Equal(("2", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void V12RejectsEventsOfARoomWhoseCreateEventWasRejected()
    {
        var room = TestRoom.Standard(RoomVersion.V12);
        var pdu = room.Build(Alice, "m.room.message", null, Text);
        var decision = EventAuthorizer.Default.CheckWithAuthEvents(pdu, Records(room, pdu), new EventRecord(room.Create, IsRejected: true));
        Assert.Equal(("2", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void V12NumbersTheAuthEventsRulesAsRule3()
    {
        var room = TestRoom.Standard(RoomVersion.V12);
        var decision = Check(room, room.Build(Alice, "m.room.message", null, Text), e => e.Type == EventTypes.PowerLevels);
        Assert.Equal(("3.3", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void V12StateChecksNeedTheCreateEventInTheState()
    {
        var room = TestRoom.Standard(RoomVersion.V12);
        var pdu = room.Build(Alice, "m.room.message", null, Text);
        var state = new Dictionary<StateKey, Pdu>(room.State);
        state.Remove(new StateKey(EventTypes.Create, ""));
        var decision = EventAuthorizer.Default.CheckWithState(pdu, state);
        Assert.Equal(("2", false), (decision.Rule, decision.IsAllowed));
    }

    private static Dictionary<StateKey, string> Ids(TestRoom room)
    {
        var ids = new Dictionary<StateKey, string>();
        foreach (var (key, e) in room.State)
        {
            ids[key] = e.EventId;
        }

        return ids;
    }
}
