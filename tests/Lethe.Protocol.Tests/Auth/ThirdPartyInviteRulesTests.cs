using System.Text.Json.Nodes;
using Lethe.Protocol.Auth;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Events;
using static Lethe.Protocol.Tests.Auth.Users;

namespace Lethe.Protocol.Tests.Auth;

/// <summary>Invites redeeming a third-party invite (v11 rule 4.4.1) and m.room.third_party_invite itself (v11 rule 6).</summary>
public class ThirdPartyInviteRulesTests
{
    private const string Token = "tok123";
    private static readonly SigningKey IdentityKey = SigningKey.Generate();
    private static readonly SigningKey OtherKey = SigningKey.Generate();

    private static TestRoom RoomWithInvite(string publicKeyField = "public_key", bool urlSafe = false, int version = 11)
    {
        var room = TestRoom.Standard(Expect.Version(version));
        var key = urlSafe ? Base64Unpadded.EncodeUrlSafe(IdentityKey.PublicKey) : IdentityKey.PublicKeyBase64;
        var content = new JsonObject { ["display_name"] = "b...@example.org", ["key_validity_url"] = "https://id.example/isvalid" };
        if (publicKeyField == "public_key")
        {
            content["public_key"] = key;
        }
        else
        {
            content["public_keys"] = new JsonArray(new JsonObject { ["public_key"] = "not base64!" }, new JsonObject { ["public_key"] = key });
        }

        room.Add(Alice, EventTypes.ThirdPartyInvite, Token, content);
        return room;
    }

    private static JsonObject Signed(string mxid = Bob, string token = Token, SigningKey? key = null)
    {
        var signed = new JsonObject { ["mxid"] = mxid, ["token"] = token, ["sender"] = Alice };
        JsonSigning.Sign(signed, "id.example", key ?? IdentityKey);
        return signed;
    }

    private static JsonObject Invite(JsonNode? thirdPartyInvite) =>
        new() { ["membership"] = Membership.Invite, ["third_party_invite"] = thirdPartyInvite };

    private static JsonObject WithSigned(JsonObject signed) => new() { ["display_name"] = "b...", ["signed"] = signed };

    private static Pdu Redeem(TestRoom room, JsonObject content, string sender = Alice, string target = Bob) =>
        room.Build(sender, EventTypes.Member, target, content);

    [Fact]
    public void ASignatureByTheInvitesKeyRedeemsIt()
    {
        var room = RoomWithInvite();
        Expect.Allowed(room.Check(Redeem(room, Invite(WithSigned(Signed())))), "4.4.1.7");
    }

    [Fact]
    public void KeysInPublicKeysCountToo()
    {
        var room = RoomWithInvite("public_keys");
        Expect.Allowed(room.Check(Redeem(room, Invite(WithSigned(Signed())))), "4.4.1.7");
    }

    [Fact]
    public void UrlSafeBase64KeysAreAccepted()
    {
        var room = RoomWithInvite(urlSafe: true);
        Expect.Allowed(room.Check(Redeem(room, Invite(WithSigned(Signed())))), "4.4.1.7");
    }

    [Theory]
    [InlineData(1, "5.3.1.7")]
    [InlineData(12, "5.4.1.7")]
    public void TheRuleHoldsInEveryVersion(int version, string rule)
    {
        var room = RoomWithInvite(version: version);
        Expect.Allowed(room.Check(Redeem(room, Invite(WithSigned(Signed())))), rule);
    }

    [Fact]
    public void BannedTargetsCannotBeInvited()
    {
        var room = RoomWithInvite();
        room.SetMembership(Alice, Bob, Membership.Ban);
        Expect.Rejected(room.Check(Redeem(room, Invite(WithSigned(Signed())))), "4.4.1.1");
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("{\"signed\":\"x\"}")]
    [InlineData("null")]
    public void AThirdPartyInviteWithoutSignedIsRejected(string json)
    {
        var room = RoomWithInvite();
        Expect.Rejected(room.Check(Redeem(room, Invite(JsonNode.Parse(json)))), "4.4.1.2");
    }

    [Fact]
    public void SignedNeedsMxidAndToken()
    {
        var room = RoomWithInvite();
        var signed = Signed();
        signed.Remove("token");
        Expect.Rejected(room.Check(Redeem(room, Invite(WithSigned(signed)))), "4.4.1.3");
    }

    [Fact]
    public void TheMxidMustBeTheTarget()
    {
        var room = RoomWithInvite();
        Expect.Rejected(room.Check(Redeem(room, Invite(WithSigned(Signed(mxid: Charlie))))), "4.4.1.4");
    }

    [Fact]
    public void TheTokenMustNameAThirdPartyInviteInTheState()
    {
        var room = RoomWithInvite();
        Expect.Rejected(room.Check(Redeem(room, Invite(WithSigned(Signed(token: "other"))))), "4.4.1.5");
    }

    [Fact]
    public void OnlyTheInvitesSenderMayRedeemIt()
    {
        var room = RoomWithInvite();
        room.Join(Charlie);
        Expect.Rejected(room.Check(Redeem(room, Invite(WithSigned(Signed())), sender: Charlie)), "4.4.1.6");
    }

    [Fact]
    public void ASignatureByAnotherKeyIsRejected()
    {
        var room = RoomWithInvite();
        Expect.Rejected(room.Check(Redeem(room, Invite(WithSigned(Signed(key: OtherKey))))), "4.4.1.8");
    }

    [Fact]
    public void TamperingWithSignedBreaksTheSignature()
    {
        var room = RoomWithInvite();
        var signed = Signed();
        signed["sender"] = Charlie;
        Expect.Rejected(room.Check(Redeem(room, Invite(WithSigned(signed)))), "4.4.1.8");
    }

    [Fact]
    public void SendingAThirdPartyInviteNeedsTheInviteLevel()
    {
        var room = TestRoom.Standard(RoomVersion.V11, Alice, new JsonObject { ["users"] = new JsonObject { [Alice] = 100 }, ["invite"] = 20 });
        room.Join(Bob);
        var content = new JsonObject { ["public_key"] = IdentityKey.PublicKeyBase64 };
        Expect.Allowed(room.Check(room.Build(Alice, EventTypes.ThirdPartyInvite, "t", content)), "6.1");
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.ThirdPartyInvite, "t", content)), "6.1");
    }

    [Fact]
    public void SendingAThirdPartyInviteNeedsMembership()
    {
        var room = TestRoom.Standard(RoomVersion.V11);
        Expect.Rejected(room.Check(room.Build(Bob, EventTypes.ThirdPartyInvite, "t", new JsonObject())), "5");
    }
}
