using System.Text.Json.Nodes;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.Auth;

/// <summary>The m.room.power_levels rule (10 in v1–5 and v12, 9 in v6–11).</summary>
public class PowerLevelsRulesTests
{
    // Alice 100, Bob 50 (a moderator who may send power levels), Charlie 0.
    private static TestRoom Room(int version = 11, string? extra = null)
    {
        var v = Expect.Version(version);
        var content = CanonicalJson.ParseObject(v.PrivilegedCreators
            ? """{"users":{"@bob:example.com":50},"events":{"m.room.power_levels":50}}"""
            : """{"users":{"@alice:example.com":100,"@bob:example.com":50},"events":{"m.room.power_levels":50}}""");
        if (extra is not null)
        {
            foreach (var (key, value) in CanonicalJson.ParseObject(extra))
            {
                content[key] = value?.DeepClone();
            }
        }

        var room = TestRoom.Standard(v, Alice, content);
        room.Join(Bob);
        room.Join(Charlie);
        return room;
    }

    private static Pdu PowerLevels(TestRoom room, string sender, string json) =>
        room.Build(sender, EventTypes.PowerLevels, "", CanonicalJson.ParseObject(json));

    private static Pdu PowerLevels(TestRoom room, string sender, JsonObject content) =>
        room.Build(sender, EventTypes.PowerLevels, "", content);

    private static JsonObject Current(TestRoom room) => (JsonObject)room.State[new StateKey(EventTypes.PowerLevels, "")].Content.DeepClone();

    [Theory]
    [InlineData(1, "10.2")]
    [InlineData(6, "9.2")]
    [InlineData(10, "9.4")]
    [InlineData(12, "10.5")]
    public void TheFirstPowerLevelsEventIsAllowed(int version, string rule)
    {
        var room = new TestRoom(Expect.Version(version));
        room.Join(Alice);
        Expect.Allowed(room.Check(room.Build(Alice, EventTypes.PowerLevels, "", new JsonObject { ["users"] = new JsonObject { [Bob] = 100 } })), rule);
    }

    [Fact]
    public void UsersMustBeAnObject()
    {
        var room = Room();
        Expect.Rejected(room.Check(PowerLevels(room, Alice, """{"users":[]}""")), "9.3");
    }

    [Fact]
    public void UsersKeysMustBeUserIds()
    {
        var room = Room();
        Expect.Rejected(room.Check(PowerLevels(room, Alice, """{"users":{"bob":10}}""")), "9.3");
    }

    [Fact]
    public void UsersValuesMustBeLevels()
    {
        var room = Room(9);
        Expect.Rejected(room.Check(PowerLevels(room, Alice, """{"users":{"@alice:example.com":100,"@bob:example.com":true}}""")), "9.1");
    }

    [Fact]
    public void BeforeV10NumericStringsAreValidLevels()
    {
        var room = Room(9);
        Expect.Allowed(room.Check(PowerLevels(room, Alice, """{"users":{"@alice:example.com":"100","@bob:example.com":" 20 "},"ban":"70"}""")), "9.8");
    }

    [Fact]
    public void FromV10StringUserLevelsAreRejected()
    {
        var room = Room(10);
        Expect.Rejected(room.Check(PowerLevels(room, Alice, """{"users":{"@alice:example.com":"100"}}""")), "9.3");
    }

    [Theory]
    [InlineData("""{"users":{"@alice:example.com":100},"ban":"50"}""")]
    [InlineData("""{"users":{"@alice:example.com":100},"invite":null}""")]
    [InlineData("""{"users":{"@alice:example.com":100},"state_default":true}""")]
    public void FromV10StringOrOtherNonIntegerFieldsAreRejected(string json)
    {
        var room = Room(10);
        Expect.Rejected(room.Check(PowerLevels(room, Alice, json)), "9.1");
    }

    [Theory]
    [InlineData("""{"users":{"@alice:example.com":100},"events":{"m.room.name":"50"}}""")]
    [InlineData("""{"users":{"@alice:example.com":100},"notifications":{"room":"50"}}""")]
    [InlineData("""{"users":{"@alice:example.com":100},"events":[]}""")]
    public void FromV10EventsAndNotificationsMustHoldIntegers(string json)
    {
        var room = Room(10);
        Expect.Rejected(room.Check(PowerLevels(room, Alice, json)), "9.2");
    }

    [Fact]
    public void BeforeV10StringEventLevelsAreAccepted()
    {
        var room = Room(9);
        Expect.Allowed(room.Check(PowerLevels(room, Alice, """{"users":{"@alice:example.com":100,"@bob:example.com":50},"events":{"m.room.name":"50","m.room.power_levels":50}}""")), "9.8");
    }

    [Fact]
    public void ARaiseAboveTheSendersLevelIsRejected()
    {
        var room = Room();
        var content = Current(room);
        content["users"]![Charlie] = 60;
        Expect.Rejected(room.Check(PowerLevels(room, Bob, content)), "9.9");
    }

    [Fact]
    public void ARaiseUpToTheSendersLevelIsAllowed()
    {
        var room = Room();
        var content = Current(room);
        content["users"]![Charlie] = 50;
        Expect.Allowed(room.Check(PowerLevels(room, Bob, content)), "9.10");
    }

    [Fact]
    public void DemotingAPeerIsRejected()
    {
        var room = Room(extra: """{"users":{"@alice:example.com":100,"@bob:example.com":50,"@charlie:other.org":50}}""");
        var content = Current(room);
        content["users"]![Charlie] = 0;
        Expect.Rejected(room.Check(PowerLevels(room, Bob, content)), "9.8");
    }

    [Fact]
    public void RemovingAPeerIsRejected()
    {
        var room = Room(extra: """{"users":{"@alice:example.com":100,"@bob:example.com":50,"@charlie:other.org":50}}""");
        var content = Current(room);
        ((JsonObject)content["users"]!).Remove(Charlie);
        Expect.Rejected(room.Check(PowerLevels(room, Bob, content)), "9.8");
    }

    [Fact]
    public void DemotingOneselfIsAllowed()
    {
        var room = Room();
        var content = Current(room);
        content["users"]![Bob] = 10;
        Expect.Allowed(room.Check(PowerLevels(room, Bob, content)), "9.10");
    }

    [Fact]
    public void DemotingALesserUserIsAllowed()
    {
        var room = Room(extra: """{"users":{"@alice:example.com":100,"@bob:example.com":50,"@charlie:other.org":40}}""");
        var content = Current(room);
        content["users"]![Charlie] = 0;
        Expect.Allowed(room.Check(PowerLevels(room, Bob, content)), "9.10");
    }

    [Fact]
    public void ChangingAFieldAboveTheSendersLevelIsRejected()
    {
        var room = Room(extra: """{"kick":75}""");
        var content = Current(room);
        content["kick"] = 10;
        Expect.Rejected(room.Check(PowerLevels(room, Bob, content)), "9.5.1");
    }

    [Fact]
    public void SettingAFieldAboveTheSendersLevelIsRejected()
    {
        var room = Room();
        var content = Current(room);
        content["state_default"] = 60;
        Expect.Rejected(room.Check(PowerLevels(room, Bob, content)), "9.5.2");
    }

    [Fact]
    public void RemovingAFieldAboveTheSendersLevelIsRejected()
    {
        var room = Room(extra: """{"ban":75}""");
        var content = Current(room);
        content.Remove("ban");
        Expect.Rejected(room.Check(PowerLevels(room, Bob, content)), "9.5.1");
    }

    [Fact]
    public void AddingAFieldWithinTheSendersLevelIsAllowedEvenBelowItsDefault()
    {
        // Only present values are compared: "ban" was absent (default 50), and 40 is within Bob's 50.
        var room = Room();
        var content = Current(room);
        content["ban"] = 40;
        Expect.Allowed(room.Check(PowerLevels(room, Bob, content)), "9.10");
    }

    [Fact]
    public void RestatingAStringyFieldAsTheSameIntegerIsNoChange()
    {
        var room = Room(5, extra: """{"redact":"75"}""");
        var content = Current(room);
        content["redact"] = 75;
        Expect.Allowed(room.Check(PowerLevels(room, Bob, content)), "10.8");
    }

    [Fact]
    public void ChangingAnEventLevelAboveTheSendersIsRejected()
    {
        var room = Room(extra: """{"events":{"m.room.power_levels":50,"m.room.tombstone":100}}""");
        var content = Current(room);
        content["events"]!["m.room.tombstone"] = 50;
        Expect.Rejected(room.Check(PowerLevels(room, Bob, content)), "9.6");
    }

    [Fact]
    public void AddingAnEventLevelAboveTheSendersIsRejected()
    {
        var room = Room();
        var content = Current(room);
        content["events"]!["m.room.name"] = 60;
        Expect.Rejected(room.Check(PowerLevels(room, Bob, content)), "9.7");
    }

    [Fact]
    public void FromV6NotificationLevelsAreProtectedLikeEvents()
    {
        var room = Room(6, extra: """{"notifications":{"room":100}}""");
        var content = Current(room);
        content["notifications"]!["room"] = 0;
        Expect.Rejected(room.Check(PowerLevels(room, Bob, content)), "9.4");

        content["notifications"]!["room"] = 100;
        content["notifications"]!["other"] = 99;
        Expect.Rejected(room.Check(PowerLevels(room, Bob, content)), "9.5");
    }

    [Fact]
    public void BeforeV6NotificationLevelsAreNotProtected()
    {
        var room = Room(5, extra: """{"notifications":{"room":100}}""");
        var content = Current(room);
        content["notifications"]!["room"] = 0;
        Expect.Allowed(room.Check(PowerLevels(room, Bob, content)), "10.8");
    }

    [Fact]
    public void SendingPowerLevelsNeedsTheRequiredLevel()
    {
        var room = Room();
        Expect.Rejected(room.Check(PowerLevels(room, Charlie, Current(room))), "7");
    }

    [Fact]
    public void V12RejectsCreatorsInUsers()
    {
        var room = Room(12);
        var content = Current(room);
        content["users"]![Alice] = 100;
        Expect.Rejected(room.Check(PowerLevels(room, Alice, content)), "10.4");
    }

    [Fact]
    public void V12RejectsAdditionalCreatorsInUsers()
    {
        var room = TestRoom.Standard(RoomVersion.V12, Alice, createContent: new JsonObject { ["additional_creators"] = new JsonArray(Dave) });
        Expect.Rejected(room.Check(PowerLevels(room, Alice, """{"users":{"@dave:other.org":1}}""")), "10.4");
    }

    [Fact]
    public void V12CreatorsMayGrantAnyLevel()
    {
        var room = Room(12);
        var content = Current(room);
        content["users"]![Bob] = 9_000_000_000_000;
        content["ban"] = 9_000_000_000_000;
        Expect.Allowed(room.Check(PowerLevels(room, Alice, content)), "10.11");
    }
}
