using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Http;
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
    }

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
    public void Dispose() => Auth.Dispose();
}
