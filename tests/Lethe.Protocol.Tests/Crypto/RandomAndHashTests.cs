using System.Text;
using Lethe.Protocol.Crypto;

namespace Lethe.Protocol.Tests.Crypto;

/// <summary>SHA-256 and secure random numbers through libsodium.</summary>
public class RandomAndHashTests
{
    [Theory]
    [InlineData("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    [InlineData("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [InlineData("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")]
    public void Sha256MatchesTheStandardsVectors(string input, string hex) =>
        Assert.Equal(hex, Convert.ToHexStringLower(Sha256.Hash(Encoding.ASCII.GetBytes(input))));

    [Fact]
    public void Sha256OfALongInputMatchesTheStandardsMillionAVector() =>
        Assert.Equal("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", Convert.ToHexStringLower(Sha256.Hash(Encoding.ASCII.GetBytes(new string('a', 1_000_000)))));

    [Fact]
    public void RandomBytesDifferBetweenDraws()
    {
        var a = SecureRandom.Bytes(32);
        var b = SecureRandom.Bytes(32);
        Assert.Equal(32, a.Length);
        Assert.NotEqual(a, b);
        Assert.Contains(a, x => x != 0);
    }

    [Fact]
    public void RandomIntegersStayInTheirRangeAndCoverIt()
    {
        var seen = new HashSet<int>();
        for (var i = 0; i < 2_000; i++)
        {
            var n = SecureRandom.Int32(10);
            Assert.InRange(n, 0, 9);
            seen.Add(n);
            Assert.InRange(SecureRandom.Int32(10_000_000, 99_999_999), 10_000_000, 99_999_998);
        }

        Assert.Equal(10, seen.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => SecureRandom.Int32(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => SecureRandom.Int32(5, 5));
    }

    [Fact]
    public void RandomStringsUseOnlyTheirAlphabet()
    {
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        var s = SecureRandom.String(Alphabet, 500);
        Assert.Equal(500, s.Length);
        Assert.All(s, c => Assert.Contains(c, Alphabet));
        Assert.True(s.Distinct().Count() > 20);
    }
}
