using System.Text;
using System.Text.Json.Nodes;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Tests.Json;

public class CanonicalJsonTests
{
    private static string Canon(string json) => Encoding.UTF8.GetString(CanonicalJson.Encode(CanonicalJson.Parse(Encoding.UTF8.GetBytes(json))));

    // The examples from the spec's appendix "Canonical JSON".
    [Theory]
    [InlineData("{}", "{}")]
    [InlineData("{\n \"one\": 1,\n \"two\": \"Two\"\n}", "{\"one\":1,\"two\":\"Two\"}")]
    [InlineData("{\"b\": \"2\", \"a\": \"1\"}", "{\"a\":\"1\",\"b\":\"2\"}")]
    [InlineData("{\"b\":\"2\",\"a\":\"1\"}", "{\"a\":\"1\",\"b\":\"2\"}")]
    [InlineData("{\"auth\":{\"success\":true,\"mxid\":\"@john.doe:example.com\",\"profile\":{\"display_name\":\"John Doe\",\"three_pids\":[{\"medium\":\"email\",\"address\":\"john.doe@example.org\"},{\"medium\":\"msisdn\",\"address\":\"123456789\"}]}}}",
        "{\"auth\":{\"mxid\":\"@john.doe:example.com\",\"profile\":{\"display_name\":\"John Doe\",\"three_pids\":[{\"address\":\"john.doe@example.org\",\"medium\":\"email\"},{\"address\":\"123456789\",\"medium\":\"msisdn\"}]},\"success\":true}}")]
    [InlineData("{\"a\": \"日本語\"}", "{\"a\":\"日本語\"}")]
    [InlineData("{\"本\": 2, \"日\": 1}", "{\"日\":1,\"本\":2}")]
    [InlineData("{\"a\": \"\\u65E5\"}", "{\"a\":\"日\"}")]
    [InlineData("{\"a\": null}", "{\"a\":null}")]
    [InlineData("{\"a\": -0, \"b\": 1e10}", "{\"a\":0,\"b\":10000000000}")]
    public void SpecExamplesEncodeCanonically(string input, string expected) => Assert.Equal(expected, Canon(input));

    [Theory]
    [InlineData("{\"a\":\"\\u0001\\b\\t\\n\\f\\r\\u001f\\\"\\\\/\"}", "{\"a\":\"\\u0001\\b\\t\\n\\f\\r\\u001f\\\"\\\\/\"}")]
    [InlineData("{\"a\":\"\\u00e9\\u2028\\ud83d\\ude00<>&'\"}", "{\"a\":\"é\u2028😀<>&'\"}")]
    public void StringsUseMinimalEscapes(string input, string expected) => Assert.Equal(expected, Canon(input));

    [Fact]
    public void KeysSortByCodePointNotUtf16()
    {
        // U+FF61 is one UTF-16 unit above the surrogates that encode U+1F600, but U+1F600 is the larger code point.
        Assert.Equal("{\"｡\":1,\"😀\":2}", Canon("{\"😀\":2,\"｡\":1}"));
    }

    [Theory]
    [InlineData("{\"a\":1,\"a\":2}", "Duplicate key")]
    [InlineData("{\"a\":1.5}", "not an integer")]
    [InlineData("{\"a\":9007199254740992}", "out of range")]
    [InlineData("{\"a\":-9007199254740992}", "out of range")]
    [InlineData("{\"a\":1e400}", "out of range")]
    [InlineData("{\"a\":1,}", "Invalid JSON")]
    [InlineData("{\"a\":NaN}", "Invalid JSON")]
    [InlineData("{\"a\":1} x", "Invalid JSON")]
    [InlineData("", "Empty JSON")]
    public void RejectsWhatMatrixForbids(string input, string message)
    {
        var e = Assert.Throws<CanonicalJsonException>(() => CanonicalJson.Parse(Encoding.UTF8.GetBytes(input)));
        Assert.Contains(message, e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void AcceptsTheExtremesOfTheIntegerRange()
    {
        Assert.Equal("[9007199254740991,-9007199254740991]", Canon("[9007199254740991,-9007199254740991]"));
    }

    [Fact]
    public void RejectsInvalidUtf8()
    {
        var bytes = new byte[] { (byte)'"', 0xC3, 0x28, (byte)'"' };
        Assert.Throws<CanonicalJsonException>(() => CanonicalJson.Parse(bytes));
    }

    [Fact]
    public void RejectsExcessiveNesting()
    {
        var deep = new string('[', 200) + new string(']', 200);
        Assert.Throws<CanonicalJsonException>(() => CanonicalJson.Parse(Encoding.UTF8.GetBytes(deep)));
    }

    [Fact]
    public void EncodesNodesBuiltInCode()
    {
        var node = new JsonObject { ["z"] = 1, ["a"] = new JsonArray(true, false, null, "x", 5L) };
        Assert.Equal("{\"a\":[true,false,null,\"x\",5],\"z\":1}", Encoding.UTF8.GetString(CanonicalJson.Encode(node)));
    }

    [Fact]
    public void RefusesToEncodeFloats()
    {
        Assert.Throws<CanonicalJsonException>(() => CanonicalJson.Encode(new JsonObject { ["a"] = 1.5 }));
    }
}
