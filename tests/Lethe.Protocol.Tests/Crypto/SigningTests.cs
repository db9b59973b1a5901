using System.Text;
using System.Text.Json.Nodes;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;

namespace Lethe.Protocol.Tests.Crypto;

/// <summary>The spec's "Cryptographic Test Vectors" appendix, checked byte for byte.</summary>
public class SigningTests
{
    private static SigningKey SpecKey()
    {
        Assert.True(Base64Unpadded.TryDecode("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1", out var seed));
        return new SigningKey("ed25519:1", seed);
    }

    [Fact]
    public void SignsEmptyObjectAsTheSpecSays()
    {
        var obj = new JsonObject();
        JsonSigning.Sign(obj, "domain", SpecKey());
        Assert.Equal("K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ", obj["signatures"]!["domain"]!["ed25519:1"]!.GetValue<string>());
    }

    [Fact]
    public void SignsObjectWithValuesAsTheSpecSays()
    {
        var obj = CanonicalJson.ParseObject("{\"one\":1,\"two\":\"Two\"}");
        JsonSigning.Sign(obj, "domain", SpecKey());
        Assert.Equal("KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw", obj["signatures"]!["domain"]!["ed25519:1"]!.GetValue<string>());
        Assert.True(JsonSigning.Verify(obj, "domain", "ed25519:1", SpecKey().PublicKey));
    }

    [Fact]
    public void VerificationFailsWhenSignedDataChanges()
    {
        var obj = CanonicalJson.ParseObject("{\"one\":1,\"two\":\"Two\"}");
        JsonSigning.Sign(obj, "domain", SpecKey());
        obj["two"] = "Three";
        Assert.False(JsonSigning.Verify(obj, "domain", "ed25519:1", SpecKey().PublicKey));
        Assert.False(JsonSigning.Verify(obj, "other", "ed25519:1", SpecKey().PublicKey));
    }

    [Fact]
    public void UnsignedDataIsNotCovered()
    {
        var obj = CanonicalJson.ParseObject("{\"one\":1}");
        JsonSigning.Sign(obj, "domain", SpecKey());
        obj["unsigned"] = new JsonObject { ["age"] = 5 };
        Assert.True(JsonSigning.Verify(obj, "domain", "ed25519:1", SpecKey().PublicKey));
    }

    [Fact]
    public void HashesAndSignsMinimalEventAsTheSpecSays()
    {
        var ev = CanonicalJson.ParseObject("""
            {"room_id":"!x:domain","sender":"@a:domain","origin":"domain","origin_server_ts":1000000,"signatures":{},"hashes":{},
             "type":"X","content":{},"prev_events":[],"auth_events":[],"depth":3,"unsigned":{"age_ts":1000000}}
            """);
        EventHashing.HashAndSign(ev, RoomVersion.V1, "domain", SpecKey());
        Assert.Equal("5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos", ev["hashes"]!["sha256"]!.GetValue<string>());
        Assert.Equal("KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg", ev["signatures"]!["domain"]!["ed25519:1"]!.GetValue<string>());
        Assert.True(EventHashing.CheckContentHash(ev));
    }

    [Fact]
    public void HashesAndSignsRedactableEventAsTheSpecSays()
    {
        var ev = CanonicalJson.ParseObject("""
            {"content":{"body":"Here is the message content"},"event_id":"$0:domain","origin":"domain","origin_server_ts":1000000,
             "type":"m.room.message","room_id":"!r:domain","sender":"@u:domain","signatures":{},"unsigned":{"age_ts":1000000}}
            """);
        EventHashing.HashAndSign(ev, RoomVersion.V1, "domain", SpecKey());
        Assert.Equal("onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g", ev["hashes"]!["sha256"]!.GetValue<string>());
        Assert.Equal("Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA", ev["signatures"]!["domain"]!["ed25519:1"]!.GetValue<string>());

        // The signature covers only the redacted form, so it still verifies once the body is gone; the content hash does not.
        Assert.True(EventHashing.VerifySignature(ev, RoomVersion.V1, "domain", "ed25519:1", SpecKey().PublicKey));
        ev["content"]!["body"] = "tampered";
        Assert.True(EventHashing.VerifySignature(ev, RoomVersion.V1, "domain", "ed25519:1", SpecKey().PublicKey));
        Assert.False(EventHashing.CheckContentHash(ev));
    }

    [Fact]
    public void SynapseKeyFileRoundTrips()
    {
        var key = SigningKey.Generate();
        var parsed = SigningKey.ParseSynapseKeyFile(key.ToSynapseKeyFile());
        Assert.Equal(key.KeyId, parsed.KeyId);
        Assert.Equal(key.PublicKey, parsed.PublicKey);
        Assert.StartsWith("ed25519 a_", key.ToSynapseKeyFile(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("rsa a_b AAAA")]
    [InlineData("ed25519 a_b notbase64!")]
    [InlineData("ed25519 a_b AAAA")]
    public void MalformedKeyFilesAreRejected(string text) => Assert.Throws<FormatException>(() => SigningKey.ParseSynapseKeyFile(text));

    [Fact]
    public void PasswordHashIsArgon2idAndVerifies()
    {
        var hash = PasswordHash.Hash("correct horse");
        Assert.StartsWith("$argon2id$", hash, StringComparison.Ordinal);
        Assert.True(PasswordHash.Verify(hash, "correct horse"));
        Assert.False(PasswordHash.Verify(hash, "correct horsf"));
        Assert.NotEqual(hash, PasswordHash.Hash("correct horse"));
    }

    [Theory]
    [InlineData("", "")]
    [InlineData("f", "Zg")]
    [InlineData("fo", "Zm8")]
    [InlineData("foo", "Zm9v")]
    [InlineData("foob", "Zm9vYg")]
    public void UnpaddedBase64MatchesSpec(string plain, string encoded)
    {
        Assert.Equal(encoded, Base64Unpadded.Encode(Encoding.UTF8.GetBytes(plain)));
        Assert.True(Base64Unpadded.TryDecode(encoded, out var back));
        Assert.Equal(plain, Encoding.UTF8.GetString(back));
    }
}
