using System.Text.Json.Nodes;
using Lethe.Storage;

namespace Lethe.Homeserver.Configuration;

/// <summary>The server's configuration, read from a Synapse-format homeserver.yaml by <see cref="ConfigLoader"/>.</summary>
public sealed record HomeserverConfig
{
    /// <summary>The public name of this server (the part after the colon in user IDs).</summary>
    public required string ServerName { get; init; }

    /// <summary>Where clients reach the server, ending in a slash.</summary>
    public required string PublicBaseUrl { get; init; }

    /// <summary>File to write the process ID to while running.</summary>
    public string? PidFile { get; init; }

    /// <summary>The sockets to serve on and what each serves.</summary>
    public required IReadOnlyList<ListenerConfig> Listeners { get; init; }

    /// <summary>Database engine and connection.</summary>
    public required DatabaseOptions Database { get; init; }

    /// <summary>Folder for uploaded and cached media.</summary>
    public required string MediaStorePath { get; init; }

    /// <summary>Synapse-format signing key file; generated on start if missing.</summary>
    public required string SigningKeyPath { get; init; }

    /// <summary>How long other servers may cache our signing key (ms); sets <c>valid_until_ts</c>.</summary>
    public long KeyRefreshInterval { get; init; } = 86_400_000;

    /// <summary>PEM certificate (chain) for listeners with <c>tls: true</c>.</summary>
    public string? TlsCertificatePath { get; init; }

    /// <summary>PEM private key for listeners with <c>tls: true</c>.</summary>
    public string? TlsPrivateKeyPath { get; init; }

    /// <summary>Serve Prometheus metrics on listeners with the <c>metrics</c> resource (Synapse's <c>enable_metrics</c>).</summary>
    public bool EnableMetrics { get; init; }

    /// <summary>Whether anyone may register an account through the client API.</summary>
    public bool EnableRegistration { get; init; }

    /// <summary>Allows open registration with no verification step at all.</summary>
    public bool EnableRegistrationWithoutVerification { get; init; }

    /// <summary>Registration needs a registration token.</summary>
    public bool RegistrationRequiresToken { get; init; }

    /// <summary>Lifetime (ms) of access tokens issued to clients that asked for a refresh token.</summary>
    public long RefreshableAccessTokenLifetime { get; init; } = 5 * 60_000;

    /// <summary>Secret for admin shared-secret registration; null disables it.</summary>
    public string? RegistrationSharedSecret { get; init; }

    /// <summary>Rate limits (<c>rc_*</c>).</summary>
    public required RateLimitConfig RateLimits { get; init; }

    /// <summary>Message retention (MSC1763).</summary>
    public required RetentionConfig Retention { get; init; }

    /// <summary><c>redaction_retention_period</c> (ms): how long the original content of a redacted event is kept; null keeps it forever. Default 7 days.</summary>
    public long? RedactionRetentionPeriod { get; init; } = 7 * 86_400_000L;

    /// <summary><c>forgotten_room_retention_period</c> (ms): how long after every local member has left and forgotten a room it is deleted; null (the default) keeps such rooms.</summary>
    public long? ForgottenRoomRetentionPeriod { get; init; }

    /// <summary><c>erase_delay</c> (ms): the grace period between an erasure and the deletion of the user's data; null deletes at once.</summary>
    public long? EraseDelay { get; init; }

    /// <summary><c>report_retention_period</c> (ms): how long content reports (with the reporter's ID and reason) are kept; null keeps them forever. Default 365 days.</summary>
    public long? ReportRetentionPeriod { get; init; } = 365 * 86_400_000L;

    /// <summary><c>user_ips_max_age</c> (ms): how long a device's last IP address and user agent are kept after it was last seen; null keeps them. Default 28 days.</summary>
    public long? UserIpsMaxAge { get; init; } = 28 * 86_400_000L;

    /// <summary>Privacy policy consent; null when not configured.</summary>
    public UserConsentConfig? UserConsent { get; init; }

    /// <summary><c>form_secret</c>: the key of the HMACs in consent links.</summary>
    public string? FormSecret { get; init; }

    /// <summary>Server notices; null when not configured (the admin API then refuses to send).</summary>
    public ServerNoticesConfig? ServerNotices { get; init; }

    /// <summary>Push notifications (the <c>push</c> block).</summary>
    public PushConfig Push { get; init; } = new();

    /// <summary>Outbound requests made on a user's behalf (push gateways, ...) never reach these ranges (<c>ip_range_blacklist</c>).</summary>
    public IReadOnlyList<System.Net.IPNetwork> IpRangeBlacklist { get; init; } = OutboundAddressRules.DefaultBlacklist;

    /// <summary>Exceptions to <see cref="IpRangeBlacklist"/> (<c>ip_range_whitelist</c>).</summary>
    public IReadOnlyList<System.Net.IPNetwork> IpRangeWhitelist { get; init; } = [];

    /// <summary>Largest upload accepted, in bytes.</summary>
    public long MaxUploadSize { get; init; } = 50L * 1024 * 1024;

    /// <summary>The media repository's other settings (authenticated media, thumbnails, limits, media retention).</summary>
    public global::Lethe.Homeserver.Media.MediaConfig Media { get; init; } = new();

    /// <summary>Notary servers trusted for other servers' keys. Empty by default: Lethe asks no third party.</summary>
    public IReadOnlyList<TrustedKeyServer> TrustedKeyServers { get; init; } = [];

    /// <summary>Check TLS certificates of other servers.</summary>
    public bool FederationVerifyCertificates { get; init; } = true;

    /// <summary>Extra CA certificates (PEM files) trusted for federation.</summary>
    public IReadOnlyList<string> FederationCustomCaList { get; init; } = [];

    /// <summary>Application service registration files.</summary>
    public IReadOnlyList<string> AppServiceConfigFiles { get; init; } = [];

    /// <summary>Serve <c>/.well-known/matrix/server</c> pointing at port 443 of the public base URL's host.</summary>
    public bool ServeServerWellKnown { get; init; }

    /// <summary>Extra members merged into <c>/.well-known/matrix/client</c>.</summary>
    public JsonObject? ExtraWellKnownClientContent { get; init; }

    /// <summary>Track and share presence (online/offline); Synapse's <c>presence.enabled</c>.</summary>
    public bool PresenceEnabled { get; init; } = true;

    /// <summary>The TURN server handed to VoIP clients (<c>turn_*</c> keys); <see cref="TurnConfig.Configured"/> is false without one.</summary>
    public TurnConfig Turn { get; init; } = new();

    /// <summary>Serve <c>GET /publicRooms</c> without an access token; Synapse's <c>allow_public_rooms_without_auth</c>.</summary>
    public bool AllowPublicRoomsWithoutAuth { get; init; }

    /// <summary>What the loader noticed but accepted (unknown keys, ignored options), to be logged at start.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>One listener: a TCP port (or Unix socket) and the resources served on it.</summary>
public sealed record ListenerConfig
{
    /// <summary>TCP port; 0 picks a free port (useful in tests).</summary>
    public int Port { get; init; }

    /// <summary>Addresses to bind; empty means all interfaces.</summary>
    public IReadOnlyList<string> BindAddresses { get; init; } = [];

    /// <summary>Unix socket path instead of a TCP port.</summary>
    public string? UnixSocketPath { get; init; }

    /// <summary>Serve TLS with the configured certificate.</summary>
    public bool Tls { get; init; }

    /// <summary>Trust X-Forwarded-For from a reverse proxy.</summary>
    public bool XForwarded { get; init; }

    /// <summary>Resource groups served, with implied ones already added (client ⇒ media; federation ⇒ media, keys).</summary>
    public required IReadOnlySet<string> Resources { get; init; }
}

/// <summary>A token bucket: <paramref name="PerSecond"/> refill rate and <paramref name="BurstCount"/> capacity.</summary>
public sealed record RateLimit(double PerSecond, double BurstCount);

/// <summary>The <c>rc_*</c> rate limits, with Synapse's defaults.</summary>
public sealed record RateLimitConfig
{
    /// <summary>Every <c>rc_*</c> bucket by dotted name (e.g. <c>rc_login.address</c>).</summary>
    public required IReadOnlyDictionary<string, RateLimit> Buckets { get; init; }

    /// <summary><c>rc_federation</c>: window_size (ms), sleep_limit, sleep_delay (ms), reject_limit, concurrent.</summary>
    public required FederationRateLimit Federation { get; init; }

    /// <summary>The bucket with the given dotted name.</summary>
    public RateLimit this[string name] => Buckets[name];
}

/// <summary>Synapse's federation rate limiting parameters.</summary>
public sealed record FederationRateLimit(long WindowSizeMs, int SleepLimit, long SleepDelayMs, int RejectLimit, int Concurrent);

/// <summary>The <c>retention</c> block: server default policy, allowed range and purge jobs.</summary>
public sealed record RetentionConfig
{
    /// <summary>Whether retention policies are enforced at all.</summary>
    public bool Enabled { get; init; }

    /// <summary>Default <c>min_lifetime</c> (ms) for rooms without a policy.</summary>
    public long? DefaultMinLifetime { get; init; }

    /// <summary>Default <c>max_lifetime</c> (ms) for rooms without a policy.</summary>
    public long? DefaultMaxLifetime { get; init; }

    /// <summary>Lower clamp (ms) applied to room policies.</summary>
    public long? AllowedLifetimeMin { get; init; }

    /// <summary>Upper clamp (ms) applied to room policies.</summary>
    public long? AllowedLifetimeMax { get; init; }

    /// <summary>Purge jobs; when none are configured, one daily job covers every room.</summary>
    public IReadOnlyList<PurgeJobConfig> PurgeJobs { get; init; } = [];

    /// <summary>
    /// Events deleted per transaction (Lethe's <c>purge_batch_size</c>): bounds how long a purge holds the writer
    /// (a batch of 500 takes ~10 ms; sends queued meanwhile commit before the next batch).
    /// </summary>
    public int PurgeBatchSize { get; init; } = 500;

    /// <summary>Pause between purge batches (ms; Lethe's <c>purge_batch_delay</c>): none by default, since sends queued during a batch go first anyway; a pause caps the purge's share of the disk.</summary>
    public long PurgeBatchDelay { get; init; }

    /// <summary>The purge jobs in force: the configured ones, or Synapse's default of one daily job for every room.</summary>
    public IReadOnlyList<PurgeJobConfig> EffectivePurgeJobs => PurgeJobs.Count > 0 ? PurgeJobs : [new PurgeJobConfig(null, null, 86_400_000)];
}

/// <summary>The <c>push</c> block, as Synapse's.</summary>
public sealed record PushConfig
{
    /// <summary>Whether push gateways are called at all (<c>push.enabled</c>).</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Whether notifications to push gateways carry the event content (<c>push.include_content</c>); never for encrypted rooms.</summary>
    public bool IncludeContent { get; init; } = true;
}

/// <summary>Consent to a privacy policy (Synapse's <c>user_consent</c> block).</summary>
public sealed record UserConsentConfig
{
    /// <summary>The current policy version; users who consented to another version are asked again.</summary>
    public required string Version { get; init; }

    /// <summary>Folder with <c>en/VERSION.html</c>, the policy page; null for the built-in page.</summary>
    public string? TemplateDir { get; init; }

    /// <summary>The server notice sent to users who have not consented (<c>%(consent_uri)s</c> is replaced), or null.</summary>
    public System.Text.Json.Nodes.JsonObject? ServerNoticeContent { get; init; }

    /// <summary>When set, users who have not consented cannot send events; this is the error (<c>%(consent_uri)s</c> is replaced).</summary>
    public string? BlockEventsError { get; init; }

    /// <summary>Registration asks for consent (the <c>m.login.terms</c> stage).</summary>
    public bool RequireAtRegistration { get; init; }

    /// <summary>The policy's name, as registration shows it.</summary>
    public string PolicyName { get; init; } = "Privacy Policy";
}

/// <summary>Server notices (Synapse's <c>server_notices</c> block): messages from the server to a user, in a room of their own.</summary>
public sealed record ServerNoticesConfig
{
    /// <summary>Localpart of the user the notices come from (<c>system_mxid_localpart</c>).</summary>
    public required string SystemMxidLocalpart { get; init; }

    /// <summary>That user's display name.</summary>
    public string? SystemMxidDisplayName { get; init; }

    /// <summary>That user's avatar.</summary>
    public string? SystemMxidAvatarUrl { get; init; }

    /// <summary>Name of the notices room.</summary>
    public string RoomName { get; init; } = "Server Notices";

    /// <summary>Topic of the notices room.</summary>
    public string? RoomTopic { get; init; }

    /// <summary>Avatar of the notices room.</summary>
    public string? RoomAvatarUrl { get; init; }

    /// <summary>Join the user to the room instead of inviting them.</summary>
    public bool AutoJoin { get; init; }
}

/// <summary>
/// The TURN server of <c>/voip/turnServer</c>, with Synapse's keys: <c>turn_uris</c>, and either a shared secret (time-limited
/// credentials by the TURN REST API scheme, as coturn's <c>use-auth-secret</c> checks them) or a fixed username and password.
/// </summary>
public sealed record TurnConfig
{
    /// <summary><c>turn_uris</c>: the <c>turn:</c>/<c>turns:</c>/<c>stun:</c> URIs clients use.</summary>
    public IReadOnlyList<string> Uris { get; init; } = [];

    /// <summary><c>turn_shared_secret</c> (or the contents of <c>turn_shared_secret_path</c>); never logged.</summary>
    public string? SharedSecret { get; init; }

    /// <summary><c>turn_username</c>, used when there is no shared secret.</summary>
    public string? Username { get; init; }

    /// <summary><c>turn_password</c>, used with <see cref="Username"/>; never logged.</summary>
    public string? Password { get; init; }

    /// <summary><c>turn_user_lifetime</c> (ms): how long credentials are valid, answered as <c>ttl</c>.</summary>
    public long UserLifetime { get; init; } = 3_600_000;

    /// <summary><c>turn_allow_guests</c>: guest accounts may fetch credentials too.</summary>
    public bool AllowGuests { get; init; } = true;

    /// <summary>True when clients get a TURN server: URIs plus a secret or a username and password.</summary>
    public bool Configured => Uris.Count > 0 && (SharedSecret is not null || (Username is not null && Password is not null));
}

/// <summary>A purge job for rooms whose max_lifetime lies in (shortest, longest].</summary>
public sealed record PurgeJobConfig(long? ShortestMaxLifetime, long? LongestMaxLifetime, long Interval);

/// <summary>A notary server trusted for other servers' signing keys.</summary>
public sealed record TrustedKeyServer(string ServerName, IReadOnlyDictionary<string, string> VerifyKeys, bool AcceptKeysInsecurely);
