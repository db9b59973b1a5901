using Lethe.Protocol.Identifiers;
using Lethe.Storage;
using Npgsql;

namespace Lethe.Homeserver.Configuration;

/// <summary>Reads a Synapse-format homeserver.yaml into a <see cref="HomeserverConfig"/>, refusing values it cannot use.</summary>
public static class ConfigLoader
{
    /// <summary>Resource names a listener may serve.</summary>
    public static readonly IReadOnlySet<string> KnownResources = new HashSet<string>(StringComparer.Ordinal)
    {
        "client", "federation", "keys", "media", "health", "metrics", "openid", "consent", "static", "replication",
    };

    /// <summary>Resources Lethe serves today; the others are accepted with a warning.</summary>
    public static readonly IReadOnlySet<string> ServedResources = new HashSet<string>(StringComparer.Ordinal)
    {
        "client", "federation", "keys", "media", "health", "metrics", "consent",
    };

    // Keys Synapse's own generate-config writes that Lethe has no use for; accepted silently so a Synapse file starts cleanly.
    private static readonly string[] AcceptedForCompatibility = ["macaroon_secret_key", "log_config"];

    /// <summary>Defaults for every rate limit bucket, from Synapse's documentation.</summary>
    public static readonly IReadOnlyDictionary<string, RateLimit> DefaultRateLimits = new Dictionary<string, RateLimit>(StringComparer.Ordinal)
    {
        ["rc_message"] = new(0.2, 10),
        ["rc_registration"] = new(0.17, 3),
        ["rc_registration_token_validity"] = new(0.1, 5),
        ["rc_login.address"] = new(0.003, 5),
        ["rc_login.account"] = new(0.003, 5),
        ["rc_login.failed_attempts"] = new(0.17, 3),
        ["rc_admin_redaction"] = new(0.2, 10),
        ["rc_joins.local"] = new(0.1, 10),
        ["rc_joins.remote"] = new(0.01, 10),
        ["rc_joins_per_room"] = new(1, 10),
        ["rc_3pid_validation"] = new(0.003, 5),
        ["rc_invites.per_room"] = new(0.3, 10),
        ["rc_invites.per_user"] = new(0.003, 5),
        ["rc_invites.per_issuer"] = new(0.3, 10),
        ["rc_third_party_invite"] = new(0.2, 10),
        ["rc_media_create"] = new(10, 50),
        ["rc_presence.per_user"] = new(0.1, 1),
        ["rc_delayed_event_mgmt"] = new(1, 5),
        ["rc_reports"] = new(1, 5),
        ["rc_room_creation"] = new(0.016, 10),
        ["rc_user_directory"] = new(0.016, 200),

        // Lethe's own: a user's request for a full export of their data (a heavy read), three an hour.
        ["rc_export"] = new(1.0 / 1200, 3),

        // Lethe's own: URL previews that miss the cache (each an outbound fetch) per user: a burst of 10, then one every 2 s.
        ["rc_url_preview"] = new(0.5, 10),
    };

    /// <summary>Loads and validates a config file.</summary>
    /// <exception cref="ConfigException">The file is unusable; the message names the key.</exception>
    public static HomeserverConfig LoadFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException("(file)", $"cannot read {path}: {e.Message}");
        }

        return Load(text, Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Loads and validates config text; <paramref name="configDir"/> anchors default file locations, as in Synapse.</summary>
    public static HomeserverConfig Load(string yaml, string configDir)
    {
        var root = ConfigSection.Parse(yaml);
        var warnings = new List<string>();

        var serverName = root.RequiredString("server_name");
        if (!ServerName.IsValid(serverName))
        {
            throw new ConfigException("server_name", $"'{serverName}' is not a valid server name (a host name or IP literal, optionally with :port)");
        }

        var publicBaseUrl = root.String("public_baseurl") ?? $"https://{serverName}/";
        if (!Uri.TryCreate(publicBaseUrl, UriKind.Absolute, out var baseUri) || baseUri.Scheme is not ("http" or "https"))
        {
            throw new ConfigException("public_baseurl", $"'{publicBaseUrl}' must be an absolute http or https URL");
        }

        if (!publicBaseUrl.EndsWith('/'))
        {
            publicBaseUrl += "/";
        }

        var enableRegistration = root.Bool("enable_registration", false);
        var withoutVerification = root.Bool("enable_registration_without_verification", false);
        var requiresToken = root.Bool("registration_requires_token", false);
        if (enableRegistration && !withoutVerification && !requiresToken)
        {
            // Synapse refuses this too: open registration with no verification invites spam accounts.
            throw new ConfigException("enable_registration",
                "open registration needs a verification step: set registration_requires_token: true, or enable_registration_without_verification: true if you really want anyone to register");
        }

        var sharedSecret = root.String("registration_shared_secret");
        if (root.String("registration_shared_secret_path") is { } secretPath)
        {
            if (sharedSecret is not null)
            {
                throw new ConfigException("registration_shared_secret_path", "cannot be combined with registration_shared_secret");
            }

            sharedSecret = ReadSecretFile("registration_shared_secret_path", secretPath);
        }

        var reportStats = root.Bool("report_stats", false);
        if (reportStats)
        {
            warnings.Add("report_stats: Lethe never sends usage statistics anywhere; the setting is ignored");
        }

        foreach (var key in AcceptedForCompatibility)
        {
            root.Accept(key);
        }

        var tlsCert = root.String("tls_certificate_path");
        var tlsKey = root.String("tls_private_key_path");
        var enableMetrics = root.Bool("enable_metrics", false);
        var listeners = ReadListeners(root, warnings);
        if (!enableMetrics && listeners.Any(l => l.Resources.Contains("metrics")))
        {
            warnings.Add("enable_metrics: false, so the metrics resource a listener names is not served");
        }

        if (listeners.Any(l => l.Tls))
        {
            RequireFile("tls_certificate_path", tlsCert, "a listener has tls: true");
            RequireFile("tls_private_key_path", tlsKey, "a listener has tls: true");
            CheckTlsPair(tlsCert!, tlsKey!, warnings);
        }

        var federationVerify = root.Bool("federation_verify_certificates", true);
        if (!federationVerify)
        {
            warnings.Add("federation_verify_certificates: false: other servers' TLS certificates will not be checked");
        }

        var caList = root.StringList("federation_custom_ca_list");
        for (var i = 0; i < caList.Count; i++)
        {
            RequireFile($"federation_custom_ca_list[{i}]", caList[i], "it is listed");
        }

        var appServiceFiles = root.StringList("app_service_config_files");
        for (var i = 0; i < appServiceFiles.Count; i++)
        {
            RequireFile($"app_service_config_files[{i}]", appServiceFiles[i], "it is listed");
        }

        if (appServiceFiles.Count > 0)
        {
            warnings.Add($"app_service_config_files: application services are not supported yet; the {appServiceFiles.Count} registration file(s) listed are not loaded and their bridges will not work");
        }

        var config = new HomeserverConfig
        {
            ServerName = serverName,
            PublicBaseUrl = publicBaseUrl,
            PidFile = root.String("pid_file"),
            Listeners = listeners,
            EnableMetrics = enableMetrics,
            Database = ReadDatabase(root, configDir, warnings),
            MediaStorePath = root.String("media_store_path", "media_store")!,
            SigningKeyPath = root.String("signing_key_path") ?? Path.Combine(configDir, serverName + ".signing.key"),
            KeyRefreshInterval = root.Duration("key_refresh_interval", 86_400_000)!.Value,
            TlsCertificatePath = tlsCert,
            TlsPrivateKeyPath = tlsKey,
            EnableRegistration = enableRegistration,
            EnableRegistrationWithoutVerification = withoutVerification,
            RegistrationRequiresToken = requiresToken,
            RegistrationSharedSecret = sharedSecret,
            RefreshableAccessTokenLifetime = root.Duration("refreshable_access_token_lifetime", 5 * 60_000)!.Value,
            RateLimits = ReadRateLimits(root),
            Retention = ReadRetention(root),
            RedactionRetentionPeriod = root.IsExplicitNull("redaction_retention_period") ? null : root.Duration("redaction_retention_period", 7 * 86_400_000L),
            ForgottenRoomRetentionPeriod = root.Duration("forgotten_room_retention_period", null),
            EraseDelay = root.Duration("erase_delay", null),
            ReportRetentionPeriod = root.IsExplicitNull("report_retention_period") ? null : root.Duration("report_retention_period", 365 * 86_400_000L),
            UserIpsMaxAge = root.IsExplicitNull("user_ips_max_age") ? null : root.Duration("user_ips_max_age", 28 * 86_400_000L),
            Push = ReadPush(root),
            ServerNotices = ReadServerNotices(root),
            UserConsent = ReadUserConsent(root),
            FormSecret = root.String("form_secret"),
            IpRangeBlacklist = root.Has("ip_range_blacklist") ? ReadIpRanges(root, "ip_range_blacklist") : OutboundAddressRules.DefaultBlacklist,
            IpRangeWhitelist = ReadIpRanges(root, "ip_range_whitelist"),
            MaxUploadSize = root.Size("max_upload_size", 50L * 1024 * 1024),
            Media = global::Lethe.Homeserver.Media.MediaConfig.Read(root, warnings),
            TrustedKeyServers = ReadTrustedKeyServers(root, warnings),
            FederationVerifyCertificates = federationVerify,
            FederationCustomCaList = caList,
            AppServiceConfigFiles = appServiceFiles,
            ServeServerWellKnown = root.Bool("serve_server_wellknown", false),
            PresenceEnabled = root.Section("presence")?.Bool("enabled", true) ?? true,
            Turn = ReadTurn(root, warnings),
            AllowPublicRoomsWithoutAuth = root.Bool("allow_public_rooms_without_auth", false),
            ExtraWellKnownClientContent = root.Json("extra_well_known_client_content") switch
            {
                null => null,
                System.Text.Json.Nodes.JsonObject o => o,
                _ => throw new ConfigException("extra_well_known_client_content", "must be a mapping"),
            },
            Warnings = warnings,
        };

        foreach (var key in root.UnreadKeys())
        {
            warnings.Add($"{key}: unknown option, ignored");
        }

        return config;
    }

    private static List<ListenerConfig> ReadListeners(ConfigSection root, List<string> warnings)
    {
        var result = new List<ListenerConfig>();
        foreach (var l in root.SectionList("listeners"))
        {
            var type = l.String("type", "http")!;
            if (type is "manhole")
            {
                warnings.Add($"{l.KeyPath("type")}: '{type}' listeners are not supported; this listener is not started");
                l.AcceptAll();
                continue;
            }

            if (type is not "http" and not "metrics")
            {
                throw new ConfigException(l.KeyPath("type"), $"must be http, metrics or manhole, not '{type}'");
            }

            var path = l.String("path");
            var port = path is null ? (int)l.Integer("port", -1, 0, 65535) : 0;
            if (path is null && port < 0)
            {
                throw new ConfigException(l.KeyPath("port"), "is required (or give a Unix socket path)");
            }

            // A Synapse "metrics" listener serves the metrics (and, like every listener, health) and nothing else.
            var resources = new HashSet<string>(StringComparer.Ordinal);
            if (type == "metrics")
            {
                resources.Add("metrics");
            }

            foreach (var r in type == "metrics" ? [] : l.SectionList("resources"))
            {
                var names = r.StringList("names");
                for (var i = 0; i < names.Count; i++)
                {
                    if (!KnownResources.Contains(names[i]))
                    {
                        throw new ConfigException($"{r.KeyPath("names")}[{i}]", $"unknown resource '{names[i]}' (known: {string.Join(", ", KnownResources.Order())})");
                    }

                    if (!ServedResources.Contains(names[i]))
                    {
                        warnings.Add($"{r.KeyPath("names")}[{i}]: Lethe does not serve the '{names[i]}' resource yet");
                    }

                    resources.Add(names[i]);
                }

                r.Accept("compress");
            }

            // As in Synapse: client implies media; federation implies media and keys; health is on every HTTP listener.
            if (resources.Contains("client"))
            {
                resources.Add("media");
            }

            if (resources.Contains("federation"))
            {
                resources.Add("media");
                resources.Add("keys");
            }

            resources.Add("health");
            var bind = l.StringList("bind_addresses");
            for (var i = 0; i < bind.Count; i++)
            {
                if (!System.Net.IPAddress.TryParse(bind[i], out _) && bind[i] != "localhost")
                {
                    throw new ConfigException($"{l.KeyPath("bind_addresses")}[{i}]", $"'{bind[i]}' is not an IP address");
                }
            }

            l.Accept("tag");
            l.Accept("request_id_header");
            l.Accept("mode");
            result.Add(new ListenerConfig
            {
                Port = port,
                BindAddresses = bind,
                UnixSocketPath = path,
                Tls = l.Bool("tls", false),
                XForwarded = l.Bool("x_forwarded", path is not null),
                Resources = resources,
            });
        }

        return result;
    }

    private static DatabaseOptions ReadDatabase(ConfigSection root, string configDir, List<string> warnings)
    {
        var db = root.Section("database");
        var name = db?.String("name", "sqlite3") ?? "sqlite3";
        var args = db?.Section("args");
        db?.Accept("txn_limit");
        db?.Accept("allow_unsafe_locale");
        switch (name)
        {
            case "sqlite3":
                var file = args?.String("database") ?? Path.Combine(configDir, "homeserver.db");
                if (file == ":memory:")
                {
                    throw new ConfigException("database.args.database", "':memory:' is not supported; give a file path");
                }

                return new DatabaseOptions { Engine = DatabaseEngine.Sqlite, SqlitePath = file };
            case "psycopg2" or "psycopg":
                return ReadPostgres(args);
            default:
                throw new ConfigException("database.name", $"must be sqlite3 or psycopg2, not '{name}'");
        }
    }

    /// <summary>The PostgreSQL database options. A method of its own so that a server on SQLite never loads Npgsql (~0.9 MiB of resident memory).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static DatabaseOptions ReadPostgres(ConfigSection? args)
    {
        if (args is null)
        {
            throw new ConfigException("database.args", "is required for PostgreSQL (user, password, dbname, host, port)");
        }

        var builder = new NpgsqlConnectionStringBuilder
        {
            Username = args.String("user"),
            Password = args.String("password"),
            Database = args.String("dbname") ?? args.String("database"),
            Host = args.String("host", "localhost"),
            Port = (int)args.Integer("port", 5432, 1, 65535),
        };
        if (args.String("options") is { } pgOptions)
        {
            builder.Options = pgOptions;
        }

        if (args.String("sslmode") is { } sslMode)
        {
            builder.SslMode = sslMode switch
            {
                "disable" => SslMode.Disable,
                "allow" => SslMode.Allow,
                "prefer" => SslMode.Prefer,
                "require" => SslMode.Require,
                "verify-ca" => SslMode.VerifyCA,
                "verify-full" => SslMode.VerifyFull,
                _ => throw new ConfigException("database.args.sslmode", $"unknown sslmode '{sslMode}'"),
            };
        }

        if (builder.Database is null)
        {
            throw new ConfigException("database.args.dbname", "is required for PostgreSQL");
        }

        var min = (int)args.Integer("cp_min", 1, 0, 1000);
        var max = (int)args.Integer("cp_max", 10, 1, 1000);
        if (min > max)
        {
            throw new ConfigException("database.args.cp_min", $"({min}) must not exceed cp_max ({max})");
        }

        foreach (var key in args.Keys())
        {
            if (key is "keepalives_idle" or "keepalives_interval" or "keepalives_count" or "keepalives" or "application_name")
            {
                args.Accept(key);
            }
        }

        return new DatabaseOptions
        {
            Engine = DatabaseEngine.Postgres,
            PostgresConnectionString = builder.ToString(),
            MinPoolSize = min,
            MaxPoolSize = max,
        };
    }

    private static RateLimitConfig ReadRateLimits(ConfigSection root)
    {
        var buckets = new Dictionary<string, RateLimit>(DefaultRateLimits, StringComparer.Ordinal);
        var messageSet = root.Has("rc_message");
        var blocks = new Dictionary<string, ConfigSection?>(StringComparer.Ordinal);
        foreach (var name in DefaultRateLimits.Keys)
        {
            var dot = name.IndexOf('.', StringComparison.Ordinal);
            var top = dot < 0 ? name : name[..dot];
            if (!blocks.TryGetValue(top, out var section))
            {
                section = root.Section(top);
                blocks[top] = section;
            }

            if (section is not null && dot >= 0)
            {
                section = section.Section(name[(dot + 1)..]);
            }

            if (section is not null)
            {
                var d = buckets[name];
                buckets[name] = new RateLimit(section.Number("per_second", d.PerSecond), section.Number("burst_count", d.BurstCount));
            }
        }

        // rc_admin_redaction falls back to rc_message when not set, as in Synapse.
        if (messageSet && !root.Has("rc_admin_redaction"))
        {
            buckets["rc_admin_redaction"] = buckets["rc_message"];
        }

        var f = root.Section("rc_federation");
        var federation = new FederationRateLimit(
            f?.Integer("window_size", 1000, 1) ?? 1000,
            (int)(f?.Integer("sleep_limit", 10, 1, int.MaxValue) ?? 10),
            f?.Integer("sleep_delay", 500, 0) ?? 500,
            (int)(f?.Integer("reject_limit", 50, 1, int.MaxValue) ?? 50),
            (int)(f?.Integer("concurrent", 3, 1, int.MaxValue) ?? 3));
        return new RateLimitConfig { Buckets = buckets, Federation = federation };
    }

    private static UserConsentConfig? ReadUserConsent(ConfigSection root)
    {
        if (root.Section("user_consent") is not { } consent)
        {
            return null;
        }

        if (root.String("form_secret") is not { Length: > 0 })
        {
            throw new ConfigException("form_secret", "is required when user_consent is configured (it signs the consent links)");
        }

        consent.Accept("send_server_notice_to_guests");
        var templateDir = consent.String("template_dir");
        var version = consent.RequiredString("version");
        if (templateDir is not null && !File.Exists(Path.Combine(templateDir, "en", version + ".html")))
        {
            throw new ConfigException("user_consent.template_dir", $"has no en/{version}.html for the configured version");
        }

        return new UserConsentConfig
        {
            Version = version,
            TemplateDir = templateDir,
            ServerNoticeContent = consent.Json("server_notice_content") switch
            {
                null => null,
                System.Text.Json.Nodes.JsonObject o => o,
                _ => throw new ConfigException("user_consent.server_notice_content", "must be a mapping (msgtype, body)"),
            },
            BlockEventsError = consent.String("block_events_error"),
            RequireAtRegistration = consent.Bool("require_at_registration", false),
            PolicyName = consent.String("policy_name", "Privacy Policy")!,
        };
    }

    private static ServerNoticesConfig? ReadServerNotices(ConfigSection root)
    {
        if (root.Section("server_notices") is not { } notices)
        {
            return null;
        }

        var localpart = notices.RequiredString("system_mxid_localpart");
        if (!Lethe.Protocol.Identifiers.UserId.IsValidLocalpart(localpart))
        {
            throw new ConfigException("server_notices.system_mxid_localpart", $"'{localpart}' is not a valid user name");
        }

        return new ServerNoticesConfig
        {
            SystemMxidLocalpart = localpart,
            SystemMxidDisplayName = notices.String("system_mxid_display_name"),
            SystemMxidAvatarUrl = notices.String("system_mxid_avatar_url"),
            RoomName = notices.String("room_name", "Server Notices")!,
            RoomTopic = notices.String("room_topic"),
            RoomAvatarUrl = notices.String("room_avatar_url"),
            AutoJoin = notices.Bool("auto_join", false),
        };
    }

    private static PushConfig ReadPush(ConfigSection root)
    {
        var push = root.Section("push");
        if (push is null)
        {
            return new PushConfig();
        }

        // Synapse's other push keys (group_unread_count_by_room, jitter_delay) are accepted; Lethe counts by event.
        push.Accept("group_unread_count_by_room");
        push.Accept("jitter_delay");
        return new PushConfig { Enabled = push.Bool("enabled", true), IncludeContent = push.Bool("include_content", true) };
    }

    internal static List<System.Net.IPNetwork> ReadIpRanges(ConfigSection root, string key)
    {
        var result = new List<System.Net.IPNetwork>();
        var ranges = root.StringList(key);
        for (var i = 0; i < ranges.Count; i++)
        {
            var text = ranges[i].Contains('/', StringComparison.Ordinal) ? ranges[i]
                : ranges[i] + (ranges[i].Contains(':', StringComparison.Ordinal) ? "/128" : "/32");
            if (!System.Net.IPNetwork.TryParse(text, out var network))
            {
                throw new ConfigException($"{key}[{i}]", $"'{ranges[i]}' is not an IP address or CIDR range");
            }

            result.Add(network);
        }

        return result;
    }

    private static RetentionConfig ReadRetention(ConfigSection root)
    {
        var r = root.Section("retention");
        if (r is null)
        {
            return new RetentionConfig();
        }

        var policy = r.Section("default_policy");
        var min = policy?.Duration("min_lifetime", null);
        var max = policy?.Duration("max_lifetime", null);
        var allowedMin = r.Duration("allowed_lifetime_min", null);
        var allowedMax = r.Duration("allowed_lifetime_max", null);
        if (min is not null && max is not null && min > max)
        {
            throw new ConfigException("retention.default_policy.min_lifetime", "must not exceed max_lifetime");
        }

        if (allowedMin is not null && allowedMax is not null && allowedMin > allowedMax)
        {
            throw new ConfigException("retention.allowed_lifetime_min", "must not exceed allowed_lifetime_max");
        }

        var jobs = new List<PurgeJobConfig>();
        foreach (var j in r.SectionList("purge_jobs"))
        {
            var shortest = j.Duration("shortest_max_lifetime", null);
            var longest = j.Duration("longest_max_lifetime", null);
            if (shortest is not null && longest is not null && shortest > longest)
            {
                throw new ConfigException(j.KeyPath("shortest_max_lifetime"), "must not exceed longest_max_lifetime");
            }

            var interval = j.Duration("interval", null) ?? throw new ConfigException(j.KeyPath("interval"), "is required");
            if (interval <= 0)
            {
                throw new ConfigException(j.KeyPath("interval"), "must be positive");
            }

            jobs.Add(new PurgeJobConfig(shortest, longest, interval));
        }

        return new RetentionConfig
        {
            PurgeBatchSize = (int)r.Integer("purge_batch_size", 500, 1, 100_000),
            PurgeBatchDelay = r.Duration("purge_batch_delay", 0)!.Value,
            Enabled = r.Bool("enabled", false),
            DefaultMinLifetime = min,
            DefaultMaxLifetime = max,
            AllowedLifetimeMin = allowedMin,
            AllowedLifetimeMax = allowedMax,
            PurgeJobs = jobs,
        };
    }

    private static List<TrustedKeyServer> ReadTrustedKeyServers(ConfigSection root, List<string> warnings)
    {
        var suppressWarning = root.Bool("suppress_key_server_warning", false);
        var result = new List<TrustedKeyServer>();
        foreach (var s in root.SectionList("trusted_key_servers"))
        {
            var name = s.RequiredString("server_name");
            if (!ServerName.IsValid(name))
            {
                throw new ConfigException(s.KeyPath("server_name"), $"'{name}' is not a valid server name");
            }

            var keys = new Dictionary<string, string>(StringComparer.Ordinal);
            if (s.Section("verify_keys") is { } vk)
            {
                foreach (var keyId in vk.Keys())
                {
                    var key = vk.RequiredString(keyId);
                    if (!keyId.StartsWith("ed25519:", StringComparison.Ordinal) || keyId.Length == "ed25519:".Length)
                    {
                        throw new ConfigException(vk.KeyPath(keyId), $"'{keyId}' is not an ed25519 key ID (ed25519:<version>)");
                    }

                    if (!Lethe.Protocol.Crypto.Base64Unpadded.TryDecode(key, out var bytes) || bytes.Length != 32)
                    {
                        throw new ConfigException(vk.KeyPath(keyId), "must be an ed25519 public key: 32 bytes in unpadded Base64");
                    }

                    keys[keyId] = key;
                }
            }

            var insecure = s.Bool("accept_keys_insecurely", false);
            if (keys.Count == 0 && !suppressWarning)
            {
                warnings.Add($"{s.KeyPath("verify_keys")}: not set, so keys from {name} are trusted on the strength of its TLS certificate alone");
            }

            if (name == "matrix.org" && !suppressWarning)
            {
                warnings.Add("trusted_key_servers: matrix.org is configured as a key notary; every server key lookup will tell matrix.org which servers you talk to");
            }

            result.Add(new TrustedKeyServer(name, keys, insecure));
        }

        return result;
    }

    /// <summary>Loads the listener certificate once at start-up so that a bad PEM file is a configuration error naming the key.</summary>
    private static void CheckTlsPair(string certPath, string keyPath, List<string> warnings)
    {
        System.Security.Cryptography.X509Certificates.X509Certificate2 certificate;
        try
        {
            certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(certPath, keyPath);
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            throw new ConfigException("tls_certificate_path", $"cannot load the certificate '{certPath}' with the private key tls_private_key_path '{keyPath}': {e.Message.TrimEnd('.')}");
        }

        using (certificate)
        {
            if (certificate.NotAfter < DateTime.Now)
            {
                warnings.Add($"tls_certificate_path: the certificate expired on {certificate.NotAfter:yyyy-MM-dd}; clients will refuse the connection");
            }
        }
    }

    private static void RequireFile(string key, string? path, string why)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw new ConfigException(key, $"is required because {why}");
        }

        if (!File.Exists(path))
        {
            throw new ConfigException(key, $"file '{path}' does not exist");
        }
    }

    private static TurnConfig ReadTurn(ConfigSection root, List<string> warnings)
    {
        var uris = root.StringList("turn_uris");
        for (var i = 0; i < uris.Count; i++)
        {
            var scheme = uris[i].Split(':', 2)[0];
            if (scheme is not ("turn" or "turns" or "stun" or "stuns") || uris[i].Length <= scheme.Length + 1)
            {
                throw new ConfigException($"turn_uris[{i}]", $"must be a turn:, turns:, stun: or stuns: URI such as turn:turn.example.org:3478?transport=udp, not '{uris[i]}'");
            }
        }

        var secret = root.String("turn_shared_secret");
        if (root.String("turn_shared_secret_path") is { } path)
        {
            if (secret is not null)
            {
                throw new ConfigException("turn_shared_secret_path", "cannot be combined with turn_shared_secret");
            }

            secret = ReadSecretFile("turn_shared_secret_path", path);
        }

        if (secret is { Length: 0 })
        {
            throw new ConfigException(root.Has("turn_shared_secret") ? "turn_shared_secret" : "turn_shared_secret_path", "is empty");
        }

        var username = root.String("turn_username");
        var password = root.String("turn_password");
        if ((username is null) != (password is null))
        {
            throw new ConfigException(username is null ? "turn_username" : "turn_password", "turn_username and turn_password go together");
        }

        var lifetime = root.Duration("turn_user_lifetime", 3_600_000)!.Value;
        if (lifetime < 1000)
        {
            throw new ConfigException("turn_user_lifetime", "must be at least 1s");
        }

        var turn = new TurnConfig
        {
            Uris = uris,
            SharedSecret = secret,
            Username = username,
            Password = password,
            UserLifetime = lifetime,
            AllowGuests = root.Bool("turn_allow_guests", true),
        };
        if (uris.Count > 0 && !turn.Configured)
        {
            warnings.Add("turn_uris: set without turn_shared_secret or turn_username/turn_password, so /voip/turnServer offers no TURN server");
        }
        else if (uris.Count == 0 && (secret is not null || username is not null))
        {
            warnings.Add("turn_uris: empty, so the TURN credentials configured are not handed out");
        }

        return turn;
    }

    private static string ReadSecretFile(string key, string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(key, $"cannot read '{path}': {e.Message}");
        }
    }
}
