using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.Auth;

public class PowerLevelsTests
{
    private static RoomVersion V(int n) => RoomVersion.TryGet(n.ToString(System.Globalization.CultureInfo.InvariantCulture), out var v) ? v : throw new ArgumentOutOfRangeException(nameof(n));

    private static PowerLevels Levels(int version, string json, string creator = Alice) =>
        PowerLevels.FromState(new TestRoom(V(version), creator).Create, WithContent(version, json));

    private static Pdu? WithContent(int version, string? json)
    {
        if (json is null)
        {
            return null;
        }

        var room = new TestRoom(V(version));
        return room.Build(Alice, EventTypes.PowerLevels, "", CanonicalJson.ParseObject(json));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    [InlineData(11)]
    public void WithoutAnEventTheCreatorHas100AndOthersZero(int version)
    {
        var levels = PowerLevels.FromState(new TestRoom(V(version), Alice).Create, null);
        Assert.False(levels.HasPowerLevelsEvent);
        Assert.Equal(100, levels.GetUserLevel(Alice));
        Assert.Equal(0, levels.GetUserLevel(Bob));
    }

    [Fact]
    public void BeforeV11TheCreatorIsContentCreatorNotTheSender()
    {
        var create = new TestRoom(RoomVersion.V10, Alice, new JsonObject { ["creator"] = Bob }).Create;
        var levels = PowerLevels.FromState(create, null);
        Assert.Equal(100, levels.GetUserLevel(Bob));
        Assert.Equal(0, levels.GetUserLevel(Alice));
    }

    [Fact]
    public void FromV11TheCreatorIsTheSenderWhateverContentSays()
    {
        var create = new TestRoom(RoomVersion.V11, Alice, new JsonObject { ["creator"] = Bob }).Create;
        var levels = PowerLevels.FromState(create, null);
        Assert.Equal(100, levels.GetUserLevel(Alice));
        Assert.Equal(0, levels.GetUserLevel(Bob));
    }

    [Fact]
    public void WithoutAnEventTheSpecDefaultsApply()
    {
        var levels = PowerLevels.FromState(new TestRoom(RoomVersion.V11).Create, null);
        Assert.Equal(50, levels.Ban);
        Assert.Equal(50, levels.Kick);
        Assert.Equal(50, levels.Redact);
        Assert.Equal(0, levels.Invite);
        Assert.Equal(50, levels.StateDefault);
        Assert.Equal(0, levels.EventsDefault);
        Assert.Equal(0, levels.UsersDefault);
        Assert.Equal(50, levels.GetNotificationLevel("room"));
    }

    [Fact]
    public void EmptyContentUsesTheSameDefaultsButNobodyIsSpecial()
    {
        var levels = Levels(11, "{}");
        Assert.True(levels.HasPowerLevelsEvent);
        Assert.Equal(50, levels.Ban);
        Assert.Equal(50, levels.Kick);
        Assert.Equal(50, levels.Redact);
        Assert.Equal(0, levels.Invite);
        Assert.Equal(50, levels.StateDefault);
        Assert.Equal(0, levels.EventsDefault);
        Assert.Equal(0, levels.GetUserLevel(Alice));
    }

    [Fact]
    public void ExplicitValuesAreRead()
    {
        var levels = Levels(11, """{"ban":1,"kick":2,"redact":3,"invite":4,"state_default":5,"events_default":6,"users_default":7,"users":{"@bob:example.com":80},"notifications":{"room":9}}""");
        Assert.Equal((1, 2, 3, 4, 5, 6, 7), (levels.Ban, levels.Kick, levels.Redact, levels.Invite, levels.StateDefault, levels.EventsDefault, levels.UsersDefault));
        Assert.Equal(80, levels.GetUserLevel(Bob));
        Assert.Equal(7, levels.GetUserLevel(Charlie));
        Assert.Equal(9, levels.GetNotificationLevel("room"));
        Assert.Equal(new Dictionary<string, long> { [Bob] = 80 }, levels.Users);
    }

    [Fact]
    public void RequiredLevelUsesEventsThenStateOrEventsDefault()
    {
        var levels = Levels(11, """{"state_default":40,"events_default":10,"events":{"m.room.name":70,"m.reaction":5}}""");
        Assert.Equal(70, levels.GetRequiredLevel("m.room.name", isState: true));
        Assert.Equal(5, levels.GetRequiredLevel("m.reaction", isState: false));
        Assert.Equal(40, levels.GetRequiredLevel("m.room.topic", isState: true));
        Assert.Equal(10, levels.GetRequiredLevel("m.room.message", isState: false));
    }

    [Fact]
    public void UnknownNotificationKeysDefaultTo50()
    {
        Assert.Equal(50, Levels(11, """{"notifications":{"room":20}}""").GetNotificationLevel("other"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(9)]
    public void NumericStringsCountBeforeV10(int version)
    {
        var levels = Levels(version, """{"ban":"  +060 ","kick":"-5","users":{"@bob:example.com":"0100"},"events":{"m.room.name":"75"}}""");
        Assert.Equal(60, levels.Ban);
        Assert.Equal(-5, levels.Kick);
        Assert.Equal(100, levels.GetUserLevel(Bob));
        Assert.Equal(75, levels.GetRequiredLevel("m.room.name", true));
    }

    [Fact]
    public void NumericStringsAreIgnoredFromV10()
    {
        var levels = Levels(10, """{"ban":"60","users":{"@bob:example.com":"100"}}""");
        Assert.Equal(50, levels.Ban);
        Assert.Equal(0, levels.GetUserLevel(Bob));
    }

    [Theory]
    [InlineData("1.5")]
    [InlineData("abc")]
    [InlineData("")]
    [InlineData("1e3")]
    [InlineData("+")]
    [InlineData("1 0")]
    public void MalformedStringsCountAsAbsent(string value)
    {
        var content = new JsonObject { ["ban"] = value };
        var levels = PowerLevels.FromContent(content, RoomVersion.V5, RoomCreators.None);
        Assert.Equal(50, levels.Ban);
    }

    [Fact]
    public void HugeNumericStringsSaturateBelowTheCreatorLevel()
    {
        var levels = PowerLevels.FromContent(new JsonObject { ["users"] = new JsonObject { [Bob] = "99999999999999999999999" } }, RoomVersion.V9, RoomCreators.None);
        Assert.Equal(long.MaxValue - 1, levels.GetUserLevel(Bob));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    public void FloatsAreTruncatedInV1ToV5(int version)
    {
        var content = new JsonObject { ["users"] = new JsonObject { [Bob] = 50.57, [Alice] = 5.114698E4 } };
        var levels = PowerLevels.FromContent(content, V(version), RoomCreators.None);
        Assert.Equal(50, levels.GetUserLevel(Bob));
        Assert.Equal(51146, levels.GetUserLevel(Alice));
    }

    [Fact]
    public void FractionalFloatsAreIgnoredFromV6()
    {
        var content = new JsonObject { ["users"] = new JsonObject { [Bob] = 50.57 }, ["users_default"] = 3 };
        Assert.Equal(3, PowerLevels.FromContent(content, RoomVersion.V6, RoomCreators.None).GetUserLevel(Bob));
    }

    [Fact]
    public void NonFiniteFloatsAreIgnored()
    {
        var content = new JsonObject { ["ban"] = double.PositiveInfinity };
        Assert.Equal(50, PowerLevels.FromContent(content, RoomVersion.V1, RoomCreators.None).Ban);
    }

    [Fact]
    public void V12CreatorsHaveInfinitePowerWithOrWithoutAnEvent()
    {
        var create = new TestRoom(RoomVersion.V12, Alice, new JsonObject { ["additional_creators"] = new JsonArray(Bob) }).Create;
        foreach (var levels in new[] { PowerLevels.FromState(create, null), PowerLevels.FromContent(CanonicalJson.ParseObject("""{"users":{"@charlie:other.org":100}}"""), RoomVersion.V12, RoomCreators.FromCreateEvent(create)) })
        {
            Assert.Equal(PowerLevels.CreatorLevel, levels.GetUserLevel(Alice));
            Assert.Equal(PowerLevels.CreatorLevel, levels.GetUserLevel(Bob));
            Assert.True(levels.IsPrivilegedCreator(Bob));
            Assert.True(levels.GetUserLevel(Charlie) < levels.GetUserLevel(Alice));
        }
    }

    [Fact]
    public void V12WithoutAnEventNonCreatorsHaveZero()
    {
        var create = new TestRoom(RoomVersion.V12, Alice).Create;
        Assert.Equal(0, PowerLevels.FromState(create, null).GetUserLevel(Bob));
    }

    [Fact]
    public void V12InvalidAdditionalCreatorsAreNotCreators()
    {
        var create = new TestRoom(RoomVersion.V12, Alice, new JsonObject { ["additional_creators"] = new JsonArray("not-a-user", 5, Bob, Alice) }).Create;
        var creators = RoomCreators.FromCreateEvent(create);
        Assert.Equal([Alice, Bob], creators.All);
    }

    [Fact]
    public void V11CreatorsHaveNoSpecialPowerOnceLevelsExist()
    {
        var levels = PowerLevels.FromState(new TestRoom(RoomVersion.V11, Alice).Create, WithContent(11, "{}"));
        Assert.Equal(0, levels.GetUserLevel(Alice));
        Assert.False(levels.IsPrivilegedCreator(Alice));
    }

    [Fact]
    public void KickAndBanNeedTheLevelAndToOutrankTheTarget()
    {
        var levels = Levels(11, """{"users":{"@alice:example.com":100,"@bob:example.com":50,"@charlie:other.org":50}}""");
        Assert.True(levels.CanKick(Alice, Bob));
        Assert.True(levels.CanBan(Bob, Dave));
        Assert.False(levels.CanBan(Bob, Charlie));
        Assert.False(levels.CanKick(Dave, Zara));
    }

    [Fact]
    public void ConvenienceChecksCompareTheUserWithTheRequiredLevel()
    {
        var levels = Levels(11, """{"invite":50,"redact":60,"users":{"@bob:example.com":50}}""");
        Assert.True(levels.CanInvite(Bob));
        Assert.False(levels.CanInvite(Charlie));
        Assert.False(levels.CanRedactOthers(Bob));
        Assert.True(levels.CanSend(Bob, "m.room.topic", isState: true));
        Assert.False(levels.CanSend(Charlie, "m.room.topic", isState: true));
        Assert.True(levels.CanSend(Charlie, "m.room.message", isState: false));
    }
}
