using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Http;

namespace Lethe.Homeserver.Privacy;

/// <summary>
/// Consent to the server's privacy policy (Synapse's <c>user_consent</c>): a consent link per user signed with
/// <c>form_secret</c>, the recorded version each user accepted, blocking event sends until the current version is
/// accepted (when <c>block_events_error</c> is set), and a server notice asking for it (<c>server_notice_content</c>).
/// </summary>
public sealed class Consent(HomeserverServices hs)
{
    // Users known to have accepted the current version, or to have been sent its notice: spares a read per sync and send.
    private readonly ConcurrentDictionary<string, bool> _consented = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _noticed = new(StringComparer.Ordinal);

    /// <summary>The HMAC that signs a consent link for a localpart (hex, as Synapse makes it).</summary>
    public string Mac(string localpart) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(hs.Config.FormSecret ?? ""), Encoding.UTF8.GetBytes(localpart)));

    /// <summary>True when <paramref name="mac"/> signs <paramref name="localpart"/> (compared in constant time).</summary>
    public bool Verify(string localpart, string mac) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Mac(localpart)), Encoding.ASCII.GetBytes(mac.ToLowerInvariant()));

    /// <summary>The page where the user reads and accepts the policy.</summary>
    public string UriFor(string userId)
    {
        var localpart = userId[1..userId.IndexOf(':', StringComparison.Ordinal)];
        return $"{hs.Config.PublicBaseUrl}_matrix/consent?u={Uri.EscapeDataString(localpart)}&h={Mac(localpart)}";
    }

    /// <summary>The policy page for anyone (no acceptance form), as registration links to it.</summary>
    public string PublicUri => $"{hs.Config.PublicBaseUrl}_matrix/consent?v={Uri.EscapeDataString(hs.Config.UserConsent!.Version)}";

    /// <summary>True when the user accepted the current version (always true when consent is not configured).</summary>
    public async Task<bool> HasConsentedAsync(string userId, CancellationToken ct)
    {
        if (hs.Config.UserConsent is not { } config || _consented.ContainsKey(userId))
        {
            return true;
        }

        if (await hs.Privacy.ConsentVersionAsync(userId, ct) == config.Version)
        {
            _consented[userId] = true;
            return true;
        }

        return false;
    }

    /// <summary>Throws 403 <c>M_CONSENT_NOT_GIVEN</c> with the consent link when sends are blocked for this user.</summary>
    public async Task RequireAsync(string userId, CancellationToken ct)
    {
        if (hs.Config.UserConsent?.BlockEventsError is not { } error || userId == hs.ServerNotices.SystemUserId || await HasConsentedAsync(userId, ct))
        {
            return;
        }

        var uri = UriFor(userId);
        throw MatrixException.Of(403, "M_CONSENT_NOT_GIVEN", error.Replace("%(consent_uri)s", uri, StringComparison.Ordinal), new JsonObject { ["consent_uri"] = uri });
    }

    /// <summary>Records the user's acceptance of a version.</summary>
    public async Task RecordAsync(string userId, string version, CancellationToken ct)
    {
        await hs.Privacy.SetConsentAsync(userId, version, hs.NowMs, ct);
        if (version == hs.Config.UserConsent?.Version)
        {
            _consented[userId] = true;
        }
    }

    /// <summary>Sends the consent server notice once per policy version to a user who has not accepted it (called as they sync).</summary>
    public async Task NoticeIfNeededAsync(string userId, CancellationToken ct)
    {
        if (hs.Config.UserConsent is not { ServerNoticeContent: { } content } config || hs.Config.ServerNotices is null
            || _noticed.ContainsKey(userId) || userId == hs.ServerNotices.SystemUserId || await HasConsentedAsync(userId, ct))
        {
            return;
        }

        _noticed[userId] = true;
        if (!await hs.Privacy.TryMarkConsentNoticeAsync(userId, config.Version, ct))
        {
            return;
        }

        var notice = (JsonObject)content.DeepClone();
        if (notice["body"] is JsonValue body && body.TryGetValue(out string? text))
        {
            notice["body"] = text.Replace("%(consent_uri)s", UriFor(userId), StringComparison.Ordinal);
        }

        await hs.ServerNotices.SendAsync(userId, "m.room.message", null, notice, null, ct);
    }

    /// <summary>The policy page: the operator's template (<c>template_dir/en/VERSION.html</c>) or a built-in one, with the acceptance form when the link is signed.</summary>
    public async Task<string> PageAsync(string version, string? localpart, string? mac, bool hasConsented, CancellationToken ct)
    {
        var config = hs.Config.UserConsent!;
        var form = localpart is null || mac is null || hasConsented
            ? ""
            : $"""
              <form method="post" action="consent">
                <input type="hidden" name="v" value="{WebUtility.HtmlEncode(version)}">
                <input type="hidden" name="u" value="{WebUtility.HtmlEncode(localpart)}">
                <input type="hidden" name="h" value="{WebUtility.HtmlEncode(mac)}">
                <button type="submit">I agree to the {WebUtility.HtmlEncode(config.PolicyName)}</button>
              </form>
              """;
        var status = hasConsented ? "<p>You have agreed to this version of the policy. Thank you.</p>" : "";
        if (config.TemplateDir is { } dir)
        {
            var template = await File.ReadAllTextAsync(Path.Combine(dir, "en", config.Version + ".html"), ct);
            return template.Replace("{{ consent_form }}", form, StringComparison.Ordinal)
                .Replace("{{ has_consented }}", hasConsented ? "true" : "false", StringComparison.Ordinal)
                .Replace("{{ version }}", WebUtility.HtmlEncode(version), StringComparison.Ordinal)
                .Replace("{{ user }}", WebUtility.HtmlEncode(localpart ?? ""), StringComparison.Ordinal);
        }

        var name = WebUtility.HtmlEncode(config.PolicyName);
        return $"""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>{name}</title></head>
            <body>
            <h1>{name} (version {WebUtility.HtmlEncode(config.Version)})</h1>
            <p>This server ({WebUtility.HtmlEncode(hs.ServerName)}) stores your account, your devices and the messages of the rooms you are in,
            for as long as each room's retention policy says. Redacted messages are deleted after a set period, client IP
            addresses and user agents after a set period, and you can download everything the server holds about you, or
            have your account erased. The details are available at <code>/_lethe/client/v1/privacy</code> once you are logged in.</p>
            <p>This server sends nothing about you to third parties.</p>
            {status}
            {form}
            </body></html>
            """;
    }
}
