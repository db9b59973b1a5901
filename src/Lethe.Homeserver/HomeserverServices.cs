using Lethe.Homeserver.AccountData;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Ephemeral;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Http;
using Lethe.Homeserver.Metrics;
using Lethe.Homeserver.Retention;
using Lethe.Homeserver.Rooms;
using Lethe.Homeserver.Sync;
using Lethe.Protocol.Crypto;
using Lethe.Storage;

namespace Lethe.Homeserver;

/// <summary>The composition root: every long-lived service of one server, built once from the config and handed to the endpoint maps.</summary>
public sealed class HomeserverServices : IDisposable
{
    /// <summary>Builds the services over an open database.</summary>
    public HomeserverServices(HomeserverConfig config, Database database, SigningKey signingKey, TimeProvider clock)
    {
        Config = config;
        Database = database;
        Metrics.Observe(database.Stats);
        SigningKey = signingKey;
        Clock = clock;
        Users = new UserStore(database);
        Devices = new DeviceStore(database);
        Tokens = new TokenStore(database);
        Profiles = new ProfileStore(database);
        RegistrationTokens = new RegistrationTokenStore(database);
        Hasher = new PasswordHasher();
        Activity = new DeviceActivity(Devices);
        Auth = new Authenticator(Tokens, Users, Activity, clock);
        Uia = new UserInteractiveAuth(config.ServerName, Users, Hasher, RegistrationTokens, clock);
        Sessions = new SessionIssuer(config, clock);
        RateLimiter = new RateLimiter(config.RateLimits, clock);
        RoomStore = new RoomStore(database);
        EventStore = new EventStore(database);
        StateStore = new StateStore(database);
        RoomDirectory = new RoomDirectory(RoomStore);
        Events = new EventCache(EventStore, RoomDirectory);
        Snapshots = new RoomSnapshots(database, StateStore, RoomStore, RoomDirectory);
        Streams = new StreamTracker();
        Notifier = new SyncNotifier(database, config.ServerName);
        Pipeline = new RoomEventPipeline(this, new RoomLocks(), Snapshots, Events, StateStore, RoomDirectory, Streams, Notifier);
        Access = new RoomAccess(this);
        Visibility = new EventVisibility(this);
        Format = new ClientEventFormat(this);
        Memberships = new MembershipChanges(this);
        Creation = new RoomCreation(this, Memberships);
        AccountData = new AccountDataStore(database);
        Filters = new FilterStore(database);
        Receipts = new ReceiptStore(database);
        Presence = new PresenceStore(database);
        PresenceTracker = new PresenceTracker(this);
        Typing = new TypingNotifications(clock);
        Retention = new RetentionStore(database);
        Privacy = new PrivacyStore(database);
        Admin = new AdminStore(database);
        Reports = new ReportStore(database);
        Erasure = new Privacy.Erasure(this);
        RoomPurge = new Privacy.RoomPurge(this);
        Export = new Privacy.UserExport(this);
        ServerNotices = new Admin.ServerNotices(this);
        Consent = new Privacy.Consent(this);
        Jobs = new JobStore(database);
        RetentionPolicies = new RetentionPolicies(this);
        LegalHolds = new LegalHolds(this);
        Push = new Push.PushService(this);
        Media = new Media.MediaRepository(this, new MediaStore(database));
        Keys = new E2eKeyStore(database);
        ToDevice = new ToDeviceStore(database);
        KeyBackups = new KeyBackupStore(database);
        DeviceLists = new Lethe.Homeserver.Keys.DeviceLists(this);
    }

    /// <summary>Push rules, unread counts, pushers.</summary>
    public Push.PushService Push { get; }

    /// <summary>The media repository (uploads, downloads, thumbnails, deletion).</summary>
    public Media.MediaRepository Media { get; }

    /// <summary>End-to-end encryption keys (device, one-time, fallback, cross-signing) and the device list stream.</summary>
    public E2eKeyStore Keys { get; }

    /// <summary>To-device inboxes.</summary>
    public ToDeviceStore ToDevice { get; }

    /// <summary>Server-side key backups.</summary>
    public KeyBackupStore KeyBackups { get; }

    /// <summary>Device list change tracking.</summary>
    public Lethe.Homeserver.Keys.DeviceLists DeviceLists { get; }

    /// <summary>The server's metrics (Prometheus, when enabled).</summary>
    public LetheMetrics Metrics { get; } = new();

    /// <summary>Retention overrides, purges and self-destruct schedules.</summary>
    public RetentionStore Retention { get; }

    /// <summary>Queries of the personal-data garbage collectors and erasure.</summary>
    public PrivacyStore Privacy { get; }

    /// <summary>Queries behind the admin API.</summary>
    public AdminStore Admin { get; }

    /// <summary>Content reports (events, rooms, users) for the server's administrators.</summary>
    public ReportStore Reports { get; }

    /// <summary>Privacy policy consent.</summary>
    public Privacy.Consent Consent { get; }

    /// <summary>Server notices (messages from the server to a user).</summary>
    public Admin.ServerNotices ServerNotices { get; }

    /// <summary>Full exports of a user's data.</summary>
    public Privacy.UserExport Export { get; }

    /// <summary>Deleting whole rooms (forgotten rooms, admin room deletion).</summary>
    public Privacy.RoomPurge RoomPurge { get; }

    /// <summary>Erased users, and erasing them.</summary>
    public Privacy.Erasure Erasure { get; }

    /// <summary>Background job leases and status.</summary>
    public JobStore Jobs { get; }

    /// <summary>The effective retention policy of each room.</summary>
    public RetentionPolicies RetentionPolicies { get; }

    /// <summary>Deletions that a room's min_lifetime put off, and finishing them.</summary>
    public LegalHolds LegalHolds { get; }

    /// <summary>Account data.</summary>
    public AccountDataStore AccountData { get; }

    /// <summary>Sync filters.</summary>
    public FilterStore Filters { get; }

    /// <summary>Read receipts.</summary>
    public ReceiptStore Receipts { get; }

    /// <summary>Presence as stored.</summary>
    public PresenceStore Presence { get; }

    /// <summary>Presence updates and their timeouts (idle, offline).</summary>
    public PresenceTracker PresenceTracker { get; }

    /// <summary>Typing notifications (memory only).</summary>
    public TypingNotifications Typing { get; }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlySet<string>> _ignored = new(StringComparer.Ordinal);

    /// <summary>The users <paramref name="userId"/> ignores (<c>m.ignored_user_list</c>), cached.</summary>
    public async Task<IReadOnlySet<string>> IgnoredUsersAsync(string userId, CancellationToken ct)
    {
        if (_ignored.TryGetValue(userId, out var set))
        {
            return set;
        }

        var content = await AccountData.GetAsync(userId, "", "m.ignored_user_list", ct);
        var users = new HashSet<string>(StringComparer.Ordinal);
        if (content is not null && AccountDataJson.Parse(content)["ignored_users"] is System.Text.Json.Nodes.JsonObject ignored)
        {
            foreach (var kv in ignored)
            {
                users.Add(kv.Key);
            }
        }

        _ignored[userId] = users;
        return users;
    }

    /// <summary>Drops the cached ignore list after it changed.</summary>
    public void ForgetIgnoredUsers(string userId) => _ignored.TryRemove(userId, out _);

    /// <summary>Who may read which room state.</summary>
    public RoomAccess Access { get; }

    /// <summary>The visibility gate every served event passes.</summary>
    public EventVisibility Visibility { get; }

    /// <summary>Client event serialisation.</summary>
    public ClientEventFormat Format { get; }

    /// <summary>Membership changes.</summary>
    public MembershipChanges Memberships { get; }

    /// <summary>Room creation.</summary>
    public RoomCreation Creation { get; }

    /// <summary>Rooms, aliases, transaction IDs.</summary>
    public RoomStore RoomStore { get; }

    /// <summary>Events.</summary>
    public EventStore EventStore { get; }

    /// <summary>State groups and current state.</summary>
    public StateStore StateStore { get; }

    /// <summary>Room versions by room.</summary>
    public RoomDirectory RoomDirectory { get; }

    /// <summary>Parsed events.</summary>
    public EventCache Events { get; }

    /// <summary>Current room state for the write path.</summary>
    public RoomSnapshots Snapshots { get; }

    /// <summary>Committed stream positions.</summary>
    public StreamTracker Streams { get; }

    /// <summary>Wakes long-polling syncs.</summary>
    public SyncNotifier Notifier { get; }

    /// <summary>The write path for room events.</summary>
    public RoomEventPipeline Pipeline { get; }

    /// <summary>The configuration.</summary>
    public HomeserverConfig Config { get; }

    /// <summary>This server's name.</summary>
    public string ServerName => Config.ServerName;

    /// <summary>The database.</summary>
    public Database Database { get; }

    /// <summary>The server's signing key.</summary>
    public SigningKey SigningKey { get; }

    /// <summary>The clock (a fake one in tests that need to move time).</summary>
    public TimeProvider Clock { get; }

    /// <summary>Accounts.</summary>
    public UserStore Users { get; }

    /// <summary>Devices.</summary>
    public DeviceStore Devices { get; }

    /// <summary>Access and refresh tokens.</summary>
    public TokenStore Tokens { get; }

    /// <summary>Profiles.</summary>
    public ProfileStore Profiles { get; }

    /// <summary>Registration tokens.</summary>
    public RegistrationTokenStore RegistrationTokens { get; }

    /// <summary>Password hashing.</summary>
    public PasswordHasher Hasher { get; }

    /// <summary>Device last-seen tracking.</summary>
    public DeviceActivity Activity { get; }

    /// <summary>Access token authentication.</summary>
    public Authenticator Auth { get; }

    /// <summary>User-interactive authentication.</summary>
    public UserInteractiveAuth Uia { get; }

    /// <summary>Login sessions.</summary>
    public SessionIssuer Sessions { get; }

    /// <summary>Rate limits.</summary>
    public RateLimiter RateLimiter { get; }

    /// <summary>Now, in milliseconds since the epoch.</summary>
    public long NowMs => Clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <inheritdoc />
    public void Dispose()
    {
        Auth.Dispose();
        Media.Dispose();
        Metrics.Dispose();
        Events.Dispose();
        Push.Counts.Dispose();
    }
}
