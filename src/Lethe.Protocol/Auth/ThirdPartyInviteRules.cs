using System.Text.Json.Nodes;
using Lethe.Protocol.Crypto;
using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using static Lethe.Protocol.Auth.AuthContext;

namespace Lethe.Protocol.Auth;

/// <summary>The rules for an invite that redeems a third-party invite (rule 5.4.1 in v12's numbering).</summary>
internal static class ThirdPartyInviteRules
{
    /// <summary>Applies the third-party invite rules to an invite of <paramref name="target"/>.</summary>
    public static AuthDecision Check(AuthContext ctx, string target)
    {
        var pdu = ctx.Pdu;
        var rule = ctx.Rules.Invite + ".1";

        // 5.4.1.1
        if (ctx.MembershipOf(target) == Membership.Ban)
        {
            return Reject(rule + ".1", "target is banned");
        }

        // 5.4.1.2
        if (pdu.Content["third_party_invite"] is not JsonObject invite || invite["signed"] is not JsonObject signed)
        {
            return Reject(rule + ".2", "third_party_invite has no signed object");
        }

        // 5.4.1.3
        var mxid = signed.GetString("mxid");
        var token = signed.GetString("token");
        if (mxid is null || token is null)
        {
            return Reject(rule + ".3", "signed has no mxid or token");
        }

        // 5.4.1.4
        if (mxid != target)
        {
            return Reject(rule + ".4", "signed.mxid does not match state_key");
        }

        // 5.4.1.5
        var thirdPartyInvite = ctx.Get(EventTypes.ThirdPartyInvite, token);
        if (thirdPartyInvite is null)
        {
            return Reject(rule + ".5", "no m.room.third_party_invite event matches the token");
        }

        // 5.4.1.6
        if (thirdPartyInvite.Sender != pdu.Sender)
        {
            return Reject(rule + ".6", "sender did not send the m.room.third_party_invite event");
        }

        // 5.4.1.7
        if (AnySignatureMatches(signed, thirdPartyInvite.Content))
        {
            return Allow(rule + ".7", "signed carries a signature by a key of the third-party invite");
        }

        // 5.4.1.8
        return Reject(rule + ".8", "no signature in signed matches a public key of the third-party invite");
    }

    private static bool AnySignatureMatches(JsonObject signed, JsonObject inviteContent)
    {
        var keys = PublicKeys(inviteContent);
        if (keys.Count == 0 || signed["signatures"] is not JsonObject signatures)
        {
            return false;
        }

        foreach (var (entity, node) in signatures)
        {
            if (node is not JsonObject entitySignatures)
            {
                continue;
            }

            foreach (var (keyId, _) in entitySignatures)
            {
                if (!keyId.StartsWith("ed25519:", StringComparison.Ordinal))
                {
                    continue;
                }

                foreach (var key in keys)
                {
                    if (JsonSigning.Verify(signed, entity, keyId, key))
                    {
                        return true;
                    }
                }
            }
        }

        return false;
    }

    // The keys sit in content.public_key and content.public_keys[].public_key, in either Base64 alphabet.
    private static List<byte[]> PublicKeys(JsonObject content)
    {
        var keys = new List<byte[]>();
        AddKey(keys, content.GetString("public_key"));
        if (content["public_keys"] is JsonArray list)
        {
            foreach (var item in list)
            {
                if (item is JsonObject entry)
                {
                    AddKey(keys, entry.GetString("public_key"));
                }
            }
        }

        return keys;
    }

    private static void AddKey(List<byte[]> keys, string? text)
    {
        if (text is null)
        {
            return;
        }

        if (Base64Unpadded.TryDecode(text, out var bytes) || Base64Unpadded.TryDecodeUrlSafe(text, out bytes))
        {
            if (bytes.Length == Ed25519.PublicKeyLength)
            {
                keys.Add(bytes);
            }
        }
    }
}
