using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.Auth;

/// <summary>Rule 1: m.room.create.</summary>
public class CreateRulesTests
{
    private static RoomVersion V(int n) => RoomVersion.TryGet(n.ToString(System.Globalization.CultureInfo.InvariantCulture), out var v) ? v : throw new ArgumentOutOfRangeException(nameof(n));

    private static Pdu Create(RoomVersion version, JsonObject content, string sender = Alice, string? roomId = null, string[]? prev = null) =>
        EventFactory.Build(version, version.RoomIdIsCreateEventHash ? null : roomId ?? "!r:example.com", sender, EventTypes.Create, "", content, prev ?? [], [], 1);

    private static AuthDecision Check(Pdu pdu) => EventAuthorizer.Default.CheckWithState(pdu, new Dictionary<StateKey, Pdu>());

    [Theory]
    [InlineData(1, "1.5")]
    [InlineData(6, "1.5")]
    [InlineData(10, "1.5")]
    [InlineData(11, "1.4")]
    [InlineData(12, "1.5")]
    public void AWellFormedCreateEventIsAllowed(int version, string rule)
    {
        var content = new JsonObject { ["room_version"] = version.ToString(System.Globalization.CultureInfo.InvariantCulture), ["creator"] = Alice };
        var decision = Check(Create(V(version), content));
        Assert.True(decision.IsAllowed, decision.ToString());
        Assert.Equal(rule, decision.Rule);
    }

    [Fact]
    public void PrevEventsAreRejected()
    {
        var decision = Check(Create(RoomVersion.V11, [], prev: ["$x"]));
        Assert.Equal(("1.1", false), (decision.Rule, decision.IsAllowed));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(11)]
    public void ARoomIdOnAnotherServerIsRejected(int version)
    {
        var decision = Check(Create(V(version), new JsonObject { ["creator"] = Alice }, roomId: "!r:other.org"));
        Assert.Equal(("1.2", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void AnUnknownRoomVersionIsRejected()
    {
        var decision = Check(Create(RoomVersion.V11, new JsonObject { ["room_version"] = "99" }));
        Assert.Equal(("1.3", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void ANonStringRoomVersionIsRejected()
    {
        var decision = Check(Create(RoomVersion.V11, new JsonObject { ["room_version"] = 11 }));
        Assert.Equal(("1.3", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void AnAbsentRoomVersionIsAllowed()
    {
        Assert.True(Check(Create(RoomVersion.V11, [])).IsAllowed);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    public void BeforeV11TheCreatorPropertyIsRequired(int version)
    {
        var decision = Check(Create(V(version), []));
        Assert.Equal(("1.4", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void FromV11TheCreatorPropertyIsNotRequired()
    {
        Assert.True(Check(Create(RoomVersion.V11, [])).IsAllowed);
    }

    [Fact]
    public void V12AcceptsValidAdditionalCreators()
    {
        Assert.True(Check(Create(RoomVersion.V12, new JsonObject { ["additional_creators"] = new JsonArray(Bob, Charlie) })).IsAllowed);
    }

    [Theory]
    [InlineData("\"@bob:example.com\"")]
    [InlineData("[5]")]
    [InlineData("[\"bob\"]")]
    [InlineData("[\"@bob:example.com\", null]")]
    public void V12RejectsMalformedAdditionalCreators(string json)
    {
        var content = new JsonObject { ["additional_creators"] = JsonNode.Parse(json) };
        var decision = Check(Create(RoomVersion.V12, content));
        Assert.Equal(("1.4", false), (decision.Rule, decision.IsAllowed));
    }

    [Fact]
    public void BeforeV12AdditionalCreatorsAreNotChecked()
    {
        Assert.True(Check(Create(RoomVersion.V11, new JsonObject { ["additional_creators"] = 5 })).IsAllowed);
    }

    [Fact]
    public void V12CreateEventsDeriveTheRoomIdFromTheirOwnId()
    {
        var create = Create(RoomVersion.V12, []);
        Assert.Equal("!" + create.EventId[1..], create.RoomId);
        Assert.False(create.Json.ContainsKey("room_id"));
    }

    [Fact]
    public void CreateEventsAreCheckedTheSameWayAgainstAuthEvents()
    {
        var decision = EventAuthorizer.Default.CheckWithAuthEvents(Create(RoomVersion.V11, [], prev: ["$x"]), []);
        Assert.Equal(("1.1", false), (decision.Rule, decision.IsAllowed));
    }
}
