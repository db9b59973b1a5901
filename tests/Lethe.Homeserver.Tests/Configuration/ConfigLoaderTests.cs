using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Storage;
using Npgsql;

namespace Lethe.Homeserver.Tests.Configuration;

public class ConfigLoaderTests
{
    private const string Minimal = "server_name: example.org\n";

    private static HomeserverConfig Load(string yaml) => ConfigLoader.Load(yaml, "/etc/lethe");

    private static ConfigException Invalid(string yaml) => Assert.Throws<ConfigException>(() => Load(yaml));

    // What Synapse's own --generate-config writes, plus every option the foundation supports.
    private const string SynapseStyle = """
        server_name: "example.org"
        public_baseurl: "https://matrix.example.org"
        pid_file: /data/homeserver.pid
        listeners:
          - port: 8008
            tls: false
            type: http
            x_forwarded: true
            bind_addresses: ['::1', '127.0.0.1']
            resources:
              - names: [client, federation]
                compress: false
        database:
          name: psycopg2
          txn_limit: 10000
          args:
            user: synapse_user
            password: secretpassword
            dbname: synapse
            host: db.internal
            port: 5433
            cp_min: 5
            cp_max: 10
        log_config: "/data/example.org.log.config"
        media_store_path: /data/media_store
        registration_shared_secret: "s3cret"
        report_stats: false
        macaroon_secret_key: "abc"
        form_secret: "def"
        signing_key_path: "/data/example.org.signing.key"
        trusted_key_servers:
          - server_name: "matrix.org"
        suppress_key_server_warning: true
        enable_registration: true
        registration_requires_token: true
        enable_registration_without_verification: false
        max_upload_size: 100M
        federation_verify_certificates: true
        federation_custom_ca_list: []
        app_service_config_files: []
        rc_message:
          per_second: 0.5
          burst_count: 15
        rc_login:
          address:
            per_second: 0.15
            burst_count: 5
        rc_federation:
          window_size: 750
          concurrent: 5
        retention:
          enabled: true
          default_policy:
            min_lifetime: 1d
            max_lifetime: 1y
          allowed_lifetime_min: 1d
          allowed_lifetime_max: 1y
          purge_jobs:
            - longest_max_lifetime: 3d
              interval: 12h
            - shortest_max_lifetime: 3d
              interval: 1d
        """;

    [Fact]
    public void ASynapseConfigLoadsWithoutWarnings()
    {
        var c = Load(SynapseStyle);
        Assert.Empty(c.Warnings);
        Assert.Equal("example.org", c.ServerName);
        Assert.Equal("https://matrix.example.org/", c.PublicBaseUrl);
        Assert.Equal("/data/homeserver.pid", c.PidFile);
        var listener = Assert.Single(c.Listeners);
        Assert.Equal(8008, listener.Port);
        Assert.Equal(["::1", "127.0.0.1"], listener.BindAddresses);
        Assert.True(listener.XForwarded);
        Assert.Superset(new HashSet<string> { "client", "federation", "media", "keys", "health" }, new HashSet<string>(listener.Resources));
        Assert.Equal(DatabaseEngine.Postgres, c.Database.Engine);
        var pg = new NpgsqlConnectionStringBuilder(c.Database.PostgresConnectionString);
        Assert.Equal(("synapse_user", "secretpassword", "synapse", "db.internal", 5433), (pg.Username, pg.Password, pg.Database, pg.Host, pg.Port));
        Assert.Equal((5, 10), (c.Database.MinPoolSize, c.Database.MaxPoolSize));
        Assert.Equal("/data/media_store", c.MediaStorePath);
        Assert.Equal("/data/example.org.signing.key", c.SigningKeyPath);
        Assert.Equal("s3cret", c.RegistrationSharedSecret);
        Assert.True(c.EnableRegistration);
        Assert.True(c.RegistrationRequiresToken);
        Assert.Equal(100L * 1024 * 1024, c.MaxUploadSize);
        Assert.Equal("matrix.org", Assert.Single(c.TrustedKeyServers).ServerName);
        Assert.Equal(new RateLimit(0.5, 15), c.RateLimits["rc_message"]);
        Assert.Equal(new RateLimit(0.15, 5), c.RateLimits["rc_login.address"]);
        Assert.Equal(new RateLimit(0.003, 5), c.RateLimits["rc_login.account"]);
        Assert.Equal(new RateLimit(0.5, 15), c.RateLimits["rc_admin_redaction"]);
        Assert.Equal(new FederationRateLimit(750, 10, 500, 50, 5), c.RateLimits.Federation);
        Assert.True(c.Retention.Enabled);
        Assert.Equal(86_400_000, c.Retention.DefaultMinLifetime);
        Assert.Equal(365L * 86_400_000, c.Retention.DefaultMaxLifetime);
        Assert.Equal([new PurgeJobConfig(null, 3 * 86_400_000L, 12 * 3_600_000L), new PurgeJobConfig(3 * 86_400_000L, null, 86_400_000)], c.Retention.PurgeJobs);
    }

    [Fact]
    public void DefaultsArePrivateAndClosed()
    {
        var c = Load(Minimal);
        Assert.False(c.EnableRegistration);
        Assert.Null(c.RegistrationSharedSecret);
        Assert.Empty(c.TrustedKeyServers);
        Assert.True(c.FederationVerifyCertificates);
        Assert.False(c.Retention.Enabled);
        Assert.Equal(50L * 1024 * 1024, c.MaxUploadSize);
        Assert.Equal(DatabaseEngine.Sqlite, c.Database.Engine);
        Assert.Equal("/etc/lethe/homeserver.db", c.Database.SqlitePath);
        Assert.Equal("/etc/lethe/example.org.signing.key", c.SigningKeyPath);
        Assert.Equal("https://example.org/", c.PublicBaseUrl);
        Assert.Equal(new RateLimit(0.2, 10), c.RateLimits["rc_message"]);
        Assert.Equal(7 * 86_400_000L, c.RedactionRetentionPeriod);
        Assert.Equal(28 * 86_400_000L, c.UserIpsMaxAge);
        Assert.Null(c.ForgottenRoomRetentionPeriod);
        Assert.Empty(c.Warnings);
    }

    [Fact]
    public void PersonalDataPeriodsTakeDurationsOrNullForForever()
    {
        var c = Load(Minimal + "redaction_retention_period: 2d\nuser_ips_max_age: 12h\nforgotten_room_retention_period: 30d\n");
        Assert.Equal(30 * 86_400_000L, c.ForgottenRoomRetentionPeriod);
        Assert.Equal(2 * 86_400_000L, c.RedactionRetentionPeriod);
        Assert.Equal(12 * 3_600_000L, c.UserIpsMaxAge);
        Assert.Empty(c.Warnings);
        c = Load(Minimal + "redaction_retention_period: null\nuser_ips_max_age:\n");
        Assert.Null(c.RedactionRetentionPeriod);
        Assert.Null(c.UserIpsMaxAge);
        Assert.Empty(c.Warnings);
        Assert.Contains("redaction_retention_period", Invalid(Minimal + "redaction_retention_period: soon\n").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownKeysWarnOnceEachIncludingNestedOnes()
    {
        var c = Load(Minimal + "frobnicate: 1\nlisteners:\n  - port: 1\n    wibble: 2\n    resources: [{names: [client]}]\nrc_login:\n  adress: {per_second: 1}\n");
        Assert.Equal(["frobnicate: unknown option, ignored", "listeners[0].wibble: unknown option, ignored", "rc_login.adress: unknown option, ignored"], c.Warnings.Order());
    }

    [Fact]
    public void ListedApplicationServicesAreWarnedAboutUntilTheyAreSupported()
    {
        var file = Path.Combine(TestHomeserver.NewTempDir(), "bridge.yaml");
        File.WriteAllText(file, "id: bridge\n");
        var c = Load(Minimal + $"app_service_config_files: ['{file}']\n");
        Assert.Contains(c.Warnings, w => w.StartsWith("app_service_config_files: application services are not supported yet", StringComparison.Ordinal));
        Assert.Empty(Load(Minimal + "app_service_config_files: []\n").Warnings);
    }

    [Fact]
    public void MatrixOrgAsKeyNotaryIsWarnedAbout()
    {
        var c = Load(Minimal + "trusted_key_servers:\n  - server_name: matrix.org\n    verify_keys:\n      'ed25519:auto': Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw\n");
        Assert.Contains(c.Warnings, w => w.Contains("matrix.org is configured as a key notary", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("", "(file): the file is empty")]
    [InlineData("public_baseurl: https://x/", "server_name: is required")]
    [InlineData("server_name: 'bad name'", "server_name: 'bad name' is not a valid server name")]
    [InlineData(Minimal + "public_baseurl: ftp://x/", "public_baseurl:")]
    [InlineData(Minimal + "enable_registration: true", "enable_registration: open registration needs a verification step")]
    [InlineData(Minimal + "enable_registration: maybe", "enable_registration: must be true or false, not 'maybe'")]
    [InlineData(Minimal + "max_upload_size: lots", "max_upload_size: must be a size")]
    [InlineData(Minimal + "listeners:\n  - port: 70000", "listeners[0].port: must be between 0 and 65535, not 70000")]
    [InlineData(Minimal + "listeners:\n  - type: http", "listeners[0].port: is required")]
    [InlineData(Minimal + "listeners:\n  - port: 8008\n    type: gopher", "listeners[0].type: must be http")]
    [InlineData(Minimal + "listeners:\n  - port: 8008\n    resources: [{names: [clint]}]", "listeners[0].resources[0].names[0]: unknown resource 'clint'")]
    [InlineData(Minimal + "listeners:\n  - port: 8008\n    bind_addresses: ['example.org']", "listeners[0].bind_addresses[0]: 'example.org' is not an IP address")]
    [InlineData(Minimal + "listeners:\n  - port: 8008\n    tls: true", "tls_certificate_path: is required because a listener has tls: true")]
    [InlineData(Minimal + "listeners: 5", "listeners: must be a list")]
    [InlineData(Minimal + "database:\n  name: mysql", "database.name: must be sqlite3 or psycopg2, not 'mysql'")]
    [InlineData(Minimal + "database:\n  name: psycopg2", "database.args: is required for PostgreSQL")]
    [InlineData(Minimal + "database:\n  name: psycopg2\n  args:\n    user: u", "database.args.dbname: is required for PostgreSQL")]
    [InlineData(Minimal + "database:\n  name: psycopg2\n  args:\n    dbname: d\n    cp_min: 9\n    cp_max: 2", "database.args.cp_min: (9) must not exceed cp_max (2)")]
    [InlineData(Minimal + "rc_message:\n  per_second: fast", "rc_message.per_second: must be a number, not 'fast'")]
    [InlineData(Minimal + "rc_message:\n  burst_count: -1", "rc_message.burst_count: must be at least 0")]
    [InlineData(Minimal + "retention:\n  default_policy:\n    max_lifetime: forever", "retention.default_policy.max_lifetime: must be a duration")]
    [InlineData(Minimal + "retention:\n  default_policy:\n    min_lifetime: 2d\n    max_lifetime: 1d", "retention.default_policy.min_lifetime: must not exceed max_lifetime")]
    [InlineData(Minimal + "retention:\n  purge_jobs:\n    - shortest_max_lifetime: 1d", "retention.purge_jobs[0].interval: is required")]
    [InlineData(Minimal + "app_service_config_files: ['/nonexistent/bridge.yaml']", "app_service_config_files[0]: file '/nonexistent/bridge.yaml' does not exist")]
    [InlineData(Minimal + "trusted_key_servers:\n  - verify_keys: {}", "trusted_key_servers[0].server_name: is required")]
    [InlineData(Minimal + "trusted_key_servers:\n  - server_name: keys.example.org\n    verify_keys: {'auto': Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw}", "trusted_key_servers[0].verify_keys.auto: 'auto' is not an ed25519 key ID")]
    [InlineData(Minimal + "trusted_key_servers:\n  - server_name: keys.example.org\n    verify_keys: {'ed25519:a': 'not base64!'}", "trusted_key_servers[0].verify_keys.ed25519:a: must be an ed25519 public key")]
    [InlineData(Minimal + "trusted_key_servers:\n  - server_name: keys.example.org\n    verify_keys: {'ed25519:a': 'AAAA'}", "trusted_key_servers[0].verify_keys.ed25519:a: must be an ed25519 public key")]
    [InlineData("server_name: [a, b]", "server_name: must be a string, not a list")]
    [InlineData("server_name: x\n  bad: indent", "(file): not valid YAML")]
    [InlineData("- just\n- a list", "(file): the top level must be a mapping")]
    public void InvalidValuesAreRefusedNamingTheKey(string yaml, string message)
    {
        var e = Invalid(yaml);
        Assert.StartsWith(message, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("yes", true)]
    [InlineData("on", true)]
    [InlineData("True", true)]
    [InlineData("no", false)]
    [InlineData("off", false)]
    public void YamlOneOneBooleansAreAcceptedAsSynapseDoes(string value, bool expected) =>
        Assert.Equal(expected, Load(Minimal + "federation_verify_certificates: " + value).FederationVerifyCertificates);

    [Theory]
    [InlineData("1000", 1000L)]
    [InlineData("250ms", 250L)]
    [InlineData("30s", 30_000L)]
    [InlineData("10m", 600_000L)]
    [InlineData("12h", 43_200_000L)]
    [InlineData("7d", 604_800_000L)]
    [InlineData("2w", 1_209_600_000L)]
    [InlineData("1y", 31_536_000_000L)]
    public void DurationsUseSynapseUnits(string text, long ms) => Assert.Equal(ms, ConfigSection.ParseDuration(text));

    [Theory]
    [InlineData("1024", 1024L)]
    [InlineData("512K", 524_288L)]
    [InlineData("50M", 52_428_800L)]
    [InlineData("1G", 1_073_741_824L)]
    [InlineData("2T", 2_199_023_255_552L)]
    public void SizesUseBinaryMultiples(string text, long bytes) => Assert.Equal(bytes, ConfigSection.ParseSize(text));

    [Theory]
    [InlineData("")]
    [InlineData("5x")]
    [InlineData("-5d")]
    [InlineData("1.5d")]
    public void BadDurationsAreRejected(string text) => Assert.Null(ConfigSection.ParseDuration(text));

    [Fact]
    public void ClientAndFederationImplyTheirSubResources()
    {
        var c = Load(Minimal + "listeners:\n  - port: 1\n    resources: [{names: [client]}]\n  - port: 2\n    resources: [{names: [federation]}]\n");
        Assert.Equal(["client", "health", "media"], c.Listeners[0].Resources.Order());
        Assert.Equal(["federation", "health", "keys", "media"], c.Listeners[1].Resources.Order());
    }

    [Fact]
    public void SharedSecretCanComeFromAFile()
    {
        var file = Path.GetTempFileName();
        File.WriteAllText(file, "from-file\n");
        Assert.Equal("from-file", Load(Minimal + $"registration_shared_secret_path: {file}").RegistrationSharedSecret);
        Assert.StartsWith("registration_shared_secret_path: cannot be combined", Invalid(Minimal + $"registration_shared_secret: x\nregistration_shared_secret_path: {file}").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ManholeListenersAreSkippedWithAWarning()
    {
        var c = Load(Minimal + "listeners:\n  - port: 9000\n    type: manhole\n    bind_addresses: ['127.0.0.1']\n");
        Assert.Empty(c.Listeners);
        Assert.Contains(c.Warnings, w => w.StartsWith("listeners[0].type: 'manhole' listeners are not supported", StringComparison.Ordinal));
    }

    [Fact]
    public void AMetricsListenerServesOnlyMetricsAndOnlyWhenEnabled()
    {
        const string Listener = "listeners:\n  - port: 9000\n    type: metrics\n    bind_addresses: ['127.0.0.1']\n";
        var c = Load(Minimal + "enable_metrics: true\n" + Listener);
        Assert.True(c.EnableMetrics);
        Assert.Equal(["health", "metrics"], Assert.Single(c.Listeners).Resources.Order());
        Assert.Empty(c.Warnings);

        // Synapse's behaviour: without enable_metrics the listener is there but serves no metrics, and says so.
        var off = Load(Minimal + Listener);
        Assert.False(off.EnableMetrics);
        Assert.Contains(off.Warnings, w => w.StartsWith("enable_metrics: false", StringComparison.Ordinal));
    }

    [Fact]
    public void GeneratedConfigLoadsCleanly()
    {
        var c = Load(ConfigTemplate.Generate("chat.example.org", "/srv/lethe", 8448));
        Assert.Empty(c.Warnings);
        Assert.Equal("chat.example.org", c.ServerName);
        Assert.Equal("/srv/lethe/homeserver.db", c.Database.SqlitePath);
        Assert.Equal("/srv/lethe/chat.example.org.signing.key", c.SigningKeyPath);
        Assert.Equal(8448, Assert.Single(c.Listeners).Port);
        Assert.False(c.EnableRegistration);
    }
}
