using Lethe.Protocol.Events;
using Lethe.Protocol.Json;
using static Lethe.Protocol.Auth.AuthContext;

namespace Lethe.Protocol.Auth;

/// <summary>The <c>m.room.member</c> authorisation rules (rule 5 in v1–5 and v12, 4 in v6–11). Comments use v12's numbering.</summary>
internal static class MembershipRules
{
    private const string AuthoriserKey = "join_authorised_via_users_server";

    /// <summary>Applies the member rules to the event in <paramref name="ctx"/>.</summary>
    public static AuthDecision Check(AuthContext ctx, IEventSignatureCheck signatures)
    {
        var pdu = ctx.Pdu;
        var rules = ctx.Rules;

        // 5.1: a member event needs a state_key and a string membership.
        var membership = pdu.Membership;
        if (pdu.StateKey is null || membership is null)
        {
            return Reject(rules.Member + ".1", "member event has no state_key or no string membership");
        }

        // 5.2 (v8+): whoever authorised a restricted join must have signed the event.
        if (ctx.Version.RestrictedJoins && pdu.Content.ContainsKey(AuthoriserKey))
        {
            var server = pdu.Content.GetString(AuthoriserKey) is { } authoriser ? ServerOf(authoriser) : null;
            if (server is null || !signatures.IsSignedBy(pdu, server))
            {
                return Reject(rules.MemberSignature + ".1", $"event is not signed by the server of {AuthoriserKey}");
            }
        }

        return membership switch
        {
            Membership.Join => CheckJoin(ctx, pdu.StateKey),
            Membership.Invite => CheckInvite(ctx, pdu.StateKey),
            Membership.Leave => CheckLeave(ctx, pdu.StateKey),
            Membership.Ban => CheckBan(ctx, pdu.StateKey),
            Membership.Knock when ctx.Version.Knocking => CheckKnock(ctx, pdu.StateKey),

            // 5.8: anything else, including knock before v7.
            _ => Reject(rules.UnknownMembership, $"unknown membership '{membership}'"),
        };
    }

    // 5.3: membership join.
    private static AuthDecision CheckJoin(AuthContext ctx, string target)
    {
        var pdu = ctx.Pdu;
        var rules = ctx.Rules;

        // 5.3.1: the creator's own join straight after the create event.
        if (pdu.PrevEvents.Count == 1 && pdu.PrevEvents[0] == ctx.Create.EventId && target == ctx.Creators.Creator)
        {
            return Allow(rules.Join + ".1", "the creator joins right after the create event");
        }

        // 5.3.2
        if (pdu.Sender != target)
        {
            return Reject(rules.Join + ".2", "sender does not match state_key");
        }

        // 5.3.3
        var current = ctx.MembershipOf(pdu.Sender);
        if (current == Membership.Ban)
        {
            return Reject(rules.Join + ".3", "sender is banned");
        }

        var joinRule = ctx.JoinRuleValue();
        var invitedOrJoined = current is Membership.Invite or Membership.Join;

        // 5.3.4: invite (and from v7 knock) rooms admit only the invited and the already joined.
        if (joinRule == JoinRule.Invite || (ctx.Version.Knocking && joinRule == JoinRule.Knock))
        {
            if (invitedOrJoined)
            {
                return Allow(rules.Join + ".4", $"join rule is {joinRule} and sender is {current}");
            }

            return Reject(rules.JoinOtherwise, $"join rule is {joinRule} and sender is neither invited nor joined");
        }

        // 5.3.5 (v8+; knock_restricted from v10)
        if ((ctx.Version.RestrictedJoins && joinRule == JoinRule.Restricted) || (ctx.Version.KnockRestrictedJoinRule && joinRule == JoinRule.KnockRestricted))
        {
            // 5.3.5.1
            if (invitedOrJoined)
            {
                return Allow(rules.JoinRestricted + ".1", $"join rule is {joinRule} and sender is {current}");
            }

            // 5.3.5.2
            var authoriser = pdu.Content.GetString(AuthoriserKey);
            if (authoriser is null)
            {
                return Reject(rules.JoinRestricted + ".2", $"join rule is {joinRule} and {AuthoriserKey} is missing");
            }

            if (ctx.MembershipOf(authoriser) != Membership.Join)
            {
                return Reject(rules.JoinRestricted + ".2", $"{AuthoriserKey} {authoriser} is not joined");
            }

            if (ctx.Levels.GetUserLevel(authoriser) < ctx.Levels.Invite)
            {
                return Reject(rules.JoinRestricted + ".2", $"{AuthoriserKey} {authoriser} may not invite");
            }

            // 5.3.5.3
            return Allow(rules.JoinRestricted + ".3", $"join authorised by {authoriser}");
        }

        // 5.3.6
        if (joinRule == JoinRule.Public)
        {
            return Allow(rules.JoinPublic, "join rule is public");
        }

        // 5.3.7
        return Reject(rules.JoinOtherwise, $"join rule '{joinRule}' does not admit the sender");
    }

    // 5.4: membership invite.
    private static AuthDecision CheckInvite(AuthContext ctx, string target)
    {
        var pdu = ctx.Pdu;
        var rules = ctx.Rules;

        // 5.4.1
        if (pdu.Content.ContainsKey("third_party_invite"))
        {
            return ThirdPartyInviteRules.Check(ctx, target);
        }

        // 5.4.2
        if (ctx.MembershipOf(pdu.Sender) != Membership.Join)
        {
            return Reject(rules.Invite + ".2", "sender is not joined");
        }

        // 5.4.3
        var targetMembership = ctx.MembershipOf(target);
        if (targetMembership is Membership.Join or Membership.Ban)
        {
            return Reject(rules.Invite + ".3", $"target is {targetMembership}");
        }

        // 5.4.4
        if (ctx.Levels.GetUserLevel(pdu.Sender) >= ctx.Levels.Invite)
        {
            return Allow(rules.Invite + ".4", "sender reaches the invite level");
        }

        // 5.4.5
        return Reject(rules.Invite + ".5", "sender is below the invite level");
    }

    // 5.5: membership leave (leaving, rejecting an invite, retracting a knock, kicking, unbanning).
    private static AuthDecision CheckLeave(AuthContext ctx, string target)
    {
        var pdu = ctx.Pdu;
        var rules = ctx.Rules;
        var senderMembership = ctx.MembershipOf(pdu.Sender);

        // 5.5.1
        if (pdu.Sender == target)
        {
            var canLeave = senderMembership is Membership.Invite or Membership.Join
                || (ctx.Version.Knocking && senderMembership == Membership.Knock);
            return canLeave
                ? Allow(rules.Leave + ".1", $"sender leaves from {senderMembership}")
                : Reject(rules.Leave + ".1", $"sender cannot leave from {senderMembership ?? "no membership"}");
        }

        // 5.5.2
        if (senderMembership != Membership.Join)
        {
            return Reject(rules.Leave + ".2", "sender is not joined");
        }

        // 5.5.3
        var senderLevel = ctx.Levels.GetUserLevel(pdu.Sender);
        if (ctx.MembershipOf(target) == Membership.Ban && senderLevel < ctx.Levels.Ban)
        {
            return Reject(rules.Leave + ".3", "target is banned and sender is below the ban level");
        }

        // 5.5.4
        if (senderLevel >= ctx.Levels.Kick && ctx.Levels.GetUserLevel(target) < senderLevel)
        {
            return Allow(rules.Leave + ".4", "sender reaches the kick level and outranks the target");
        }

        // 5.5.5
        return Reject(rules.Leave + ".5", "sender is below the kick level or does not outrank the target");
    }

    // 5.6: membership ban.
    private static AuthDecision CheckBan(AuthContext ctx, string target)
    {
        var pdu = ctx.Pdu;
        var rules = ctx.Rules;

        // 5.6.1
        if (ctx.MembershipOf(pdu.Sender) != Membership.Join)
        {
            return Reject(rules.Ban + ".1", "sender is not joined");
        }

        // 5.6.2
        var senderLevel = ctx.Levels.GetUserLevel(pdu.Sender);
        if (senderLevel >= ctx.Levels.Ban && ctx.Levels.GetUserLevel(target) < senderLevel)
        {
            return Allow(rules.Ban + ".2", "sender reaches the ban level and outranks the target");
        }

        // 5.6.3
        return Reject(rules.Ban + ".3", "sender is below the ban level or does not outrank the target");
    }

    // 5.7 (v7+): membership knock.
    private static AuthDecision CheckKnock(AuthContext ctx, string target)
    {
        var pdu = ctx.Pdu;
        var rules = ctx.Rules;

        // 5.7.1
        var joinRule = ctx.JoinRuleValue();
        if (joinRule != JoinRule.Knock && !(ctx.Version.KnockRestrictedJoinRule && joinRule == JoinRule.KnockRestricted))
        {
            return Reject(rules.Knock + ".1", $"join rule '{joinRule}' does not allow knocking");
        }

        // 5.7.2
        if (pdu.Sender != target)
        {
            return Reject(rules.Knock + ".2", "sender does not match state_key");
        }

        // 5.7.3
        var current = ctx.MembershipOf(pdu.Sender);
        if (current is not (Membership.Ban or Membership.Invite or Membership.Join))
        {
            return Allow(rules.Knock + ".3", "sender may knock");
        }

        // 5.7.4
        return Reject(rules.Knock + ".4", $"sender is already {current}");
    }
}
