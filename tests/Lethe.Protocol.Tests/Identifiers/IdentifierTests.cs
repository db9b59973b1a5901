using Lethe.Protocol.Identifiers;

namespace Lethe.Protocol.Tests.Identifiers;

public class IdentifierTests
{
    [Theory]
    [InlineData("matrix.org", "matrix.org", null)]
    [InlineData("matrix.org:8888", "matrix.org", 8888)]
    [InlineData("1.2.3.4", "1.2.3.4", null)]
    [InlineData("1.2.3.4:1234", "1.2.3.4", 1234)]
    [InlineData("[1234:5678::abcd]", "[1234:5678::abcd]", null)]
    [InlineData("[1234:5678::abcd]:5678", "[1234:5678::abcd]", 5678)]
    [InlineData("localhost", "localhost", null)]
    [InlineData("[::1]:8448", "[::1]", 8448)]
    public void ValidServerNamesParse(string text, string host, int? port)
    {
        Assert.True(ServerName.TryParse(text, out var s));
        Assert.Equal(host, s.Host);
        Assert.Equal(port, s.Port);
        Assert.Equal(text, s.Value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("matrix.org:")]
    [InlineData("matrix.org:123456")]
    [InlineData("matrix.org:70000")]
    [InlineData("matrix_org")]
    [InlineData("[1234:5678::abcd")]
    [InlineData("[not-ipv6]")]
    [InlineData("[::1]x")]
    [InlineData("256.1.1.1")]
    [InlineData("exa mple.org")]
    [InlineData("matrix.org:80:80")]
    public void InvalidServerNamesAreRejected(string text) => Assert.False(ServerName.TryParse(text, out _));

    [Fact]
    public void ServerNameLongerThan255IsRejected() => Assert.False(ServerName.IsValid(new string('a', 256)));

    [Theory]
    [InlineData("@alice:example.org", "alice", "example.org", true)]
    [InlineData("@a.b-c=d_e/f+g:example.org:8448", "a.b-c=d_e/f+g", "example.org:8448", true)]
    [InlineData("@Alice:example.org", "Alice", "example.org", false)]
    [InlineData("@:example.org", "", "example.org", false)]
    [InlineData("@bob:[::1]", "bob", "[::1]", true)]
    public void UserIdsParse(string text, string localpart, string server, bool compliant)
    {
        Assert.True(UserId.TryParse(text, out var u));
        Assert.Equal(localpart, u.Localpart);
        Assert.Equal(server, u.Server.Value);
        Assert.Equal(compliant, u.IsCompliant);
        Assert.Equal(compliant, UserId.TryParseStrict(text, out _));
    }

    [Theory]
    [InlineData("alice:example.org")]
    [InlineData("@alice")]
    [InlineData("@alice:")]
    [InlineData("@alice:exa_mple.org")]
    [InlineData("@a\0b:example.org")]
    public void InvalidUserIdsAreRejected(string text) => Assert.False(UserId.TryParse(text, out _));

    [Fact]
    public void UserIdsOver255BytesAreRejected()
    {
        Assert.True(UserId.TryParse("@" + new string('a', 241) + ":example.org", out _));
        Assert.False(UserId.TryParse("@" + new string('a', 244) + ":example.org", out _));
    }

    [Fact]
    public void CreateRejectsBadLocalparts()
    {
        Assert.Equal("@bob:hs", UserId.Create("bob", ServerName.Parse("hs")).Value);
        Assert.Throws<FormatException>(() => UserId.Create("Bob", ServerName.Parse("hs")));
        Assert.Throws<FormatException>(() => UserId.Create("b ob", ServerName.Parse("hs")));
    }

    [Theory]
    [InlineData("!abc:example.org", true, "example.org")]
    [InlineData("!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM", true, null)]
    [InlineData("abc:example.org", false, null)]
    [InlineData("!", false, null)]
    [InlineData("!:example.org", false, null)]
    [InlineData("!abc:bad_server", false, null)]
    public void RoomIdsParse(string text, bool valid, string? server)
    {
        Assert.Equal(valid, RoomId.TryParse(text, out var r));
        if (valid)
        {
            Assert.Equal(server, r.Server?.Value);
        }
    }

    [Theory]
    [InlineData("$abc:example.org", true)]
    [InlineData("$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg", true)]
    [InlineData("$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk", true)]
    [InlineData("$", false)]
    [InlineData("abc", false)]
    [InlineData("$abc:", false)]
    public void EventIdsParse(string text, bool valid) => Assert.Equal(valid, EventId.TryParse(text, out _));

    [Theory]
    [InlineData("#room:example.org", true)]
    [InlineData("#ünïcode room:example.org", true)]
    [InlineData("#:example.org", true)]
    [InlineData("#room", false)]
    [InlineData("room:example.org", false)]
    [InlineData("#room:", false)]
    public void AliasesParse(string text, bool valid) => Assert.Equal(valid, RoomAlias.TryParse(text, out _));
}
