using System.Security.Cryptography.X509Certificates;
using Lethe.Homeserver.AccountData;
using Lethe.Homeserver.Accounts;
using Lethe.Homeserver.Ephemeral;
using Lethe.Homeserver.Relations;
using Lethe.Homeserver.Privacy;
using Lethe.Homeserver.Retention;
using Lethe.Homeserver.Rooms;
using Lethe.Homeserver.Sync;
using Lethe.Homeserver.Admin;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Discovery;
using Lethe.Homeserver.Federation;
using Lethe.Homeserver.Http;
using Lethe.Protocol.Crypto;
using Lethe.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver;

/// <summary>A running Lethe server: the database, the signing key and the HTTP listeners built from one config.</summary>
public sealed partial class LetheHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HomeserverConfig _config;
    private bool _stopped;

    private readonly Timer _housekeeping;

    private LetheHost(WebApplication app, HomeserverServices services, RetentionPurger purger, SelfDestruct selfDestruct, PrivacyGc privacyGc, Media.MediaRetention mediaRetention)
    {
        PrivacyGc = privacyGc;
        MediaRetention = mediaRetention;
        _app = app;
        _config = services.Config;
        Services = services;
        Purger = purger;
        _selfDestruct = selfDestruct;
        _housekeeping = new Timer(_ => _ = HousekeepingAsync(), null, HousekeepingInterval, HousekeepingInterval);
    }

    private static readonly TimeSpan HousekeepingInterval = TimeSpan.FromSeconds(60);

    private readonly SelfDestruct _selfDestruct;

    /// <summary>The media expiry job (<c>media_retention</c>, lapsed upload reservations).</summary>
    public Media.MediaRetention MediaRetention { get; }

    /// <summary>The retention purge jobs.</summary>
    public RetentionPurger Purger { get; }

    /// <summary>The personal-data garbage collectors.</summary>
    public PrivacyGc PrivacyGc { get; }

    /// <summary>The self-destruct scheduler (MSC2228).</summary>
    internal SelfDestruct SelfDestruct => _selfDestruct;

    /// <summary>The server's services (stores, authentication, ...).</summary>
    public HomeserverServices Services { get; }

    /// <summary>The database.</summary>
    public Database Database => Services.Database;

    /// <summary>The server's signing key.</summary>
    public SigningKey SigningKey => Services.SigningKey;

    /// <summary>The configuration in force.</summary>
    public HomeserverConfig Config => _config;

    /// <summary>Base URLs actually bound, in listener order (ports resolved when configured as 0).</summary>
    public IReadOnlyList<string> Addresses =>
        _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToArray() ?? [];

    /// <summary>Every mapped route as (HTTP method, pattern), for tests that exercise all endpoints.</summary>
    internal IReadOnlyList<(string Method, string Pattern)> Routes =>
        _app.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? []).Select(m => (m, e.RoutePattern.RawText ?? "")))
            .ToList();

    /// <summary>Signalled when the host begins shutting down (SIGTERM, Ctrl+C or <see cref="StopAsync"/>).</summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    /// <summary>Opens the database, loads or creates the signing key, binds every listener and starts serving.</summary>
    public static Task<LetheHost> StartAsync(HomeserverConfig config, Action<ILoggingBuilder>? logging = null, CancellationToken ct = default) =>
        StartAsync(config, logging, extraEndpoints: null, ct);

    /// <summary>As <see cref="StartAsync(HomeserverConfig, Action{ILoggingBuilder}?, CancellationToken)"/>, letting tests map probe endpoints that exercise the shared HTTP pipeline.</summary>
    internal static Task<LetheHost> StartAsync(HomeserverConfig config, Action<ILoggingBuilder>? logging, Action<IEndpointRouteBuilder>? extraEndpoints, CancellationToken ct) =>
        StartAsync(config, logging, extraEndpoints, TimeProvider.System, ct);

    /// <summary>As above, with the clock the server reads (tests move it forward to make messages expire).</summary>
    internal static async Task<LetheHost> StartAsync(HomeserverConfig config, Action<ILoggingBuilder>? logging, Action<IEndpointRouteBuilder>? extraEndpoints, TimeProvider clock, CancellationToken ct)
    {
        var signingKey = SigningKeyFile.LoadOrCreate(config.SigningKeyPath);
        try
        {
            Directory.CreateDirectory(config.MediaStorePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException("media_store_path", $"cannot create the folder '{config.MediaStorePath}': {e.Message.TrimEnd('.')}");
        }

        var database = await Database.OpenAsync(config.Database, ct);
        try
        {
            var services = new HomeserverServices(config, database, signingKey, clock);
            await services.Streams.LoadAsync(database, ct);
            await services.Erasure.LoadAsync(ct);
            var app = Build(services, logging, out var purger, out var selfDestruct, out var privacyGc, out var mediaRetention);
            extraEndpoints?.Invoke(app);
            var host = new LetheHost(app, services, purger, selfDestruct, privacyGc, mediaRetention);
            await app.StartAsync(ct);
            purger.Start();
            selfDestruct.Start();
            mediaRetention.Start();
            await services.PresenceTracker.StartAsync(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Lethe.Presence"), ct);
            host.WritePidFile();
            return host;
        }
        catch
        {
            await database.DisposeAsync();
            throw;
        }
    }

    private static WebApplication Build(HomeserverServices services, Action<ILoggingBuilder>? logging, out RetentionPurger purger, out SelfDestruct selfDestruct, out PrivacyGc privacyGc, out Media.MediaRetention mediaRetention)
    {
        var config = services.Config;
        // Lethe's configuration is homeserver.yaml; the host's own appsettings.json is read once and never watched. Watching
        // it puts a recursive file watcher on the working directory, which usually holds the data folder: every SQLite
        // write then woke the watcher thread (8% of the server's CPU during bench/ send-seq).
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.Logging.ClearProviders();
        if (logging is null)
        {
            // Created by the container, so disposing the host writes the lines still buffered.
            builder.Services.AddSingleton<ILoggerProvider, Logging.BatchedConsoleLoggerProvider>();
            builder.Logging.SetMinimumLevel(Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("LETHE_LOG_LEVEL"), true, out var level) ? level : LogLevel.Information);
        }
        else
        {
            logging(builder.Logging);
        }

        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(8));
        builder.Services.AddRouting();
        builder.Services.AddSingleton<Microsoft.AspNetCore.Connections.IMemoryPoolFactory<byte>, LargeBlockMemoryPoolFactory>();
        builder.WebHost.ConfigureKestrel(kestrel => ConfigureListeners(kestrel, config));

        var app = builder.Build();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Lethe.Http");
        HttpPipeline.Use(app, logger, config.EnableMetrics ? services.Metrics : null);
        DiscoveryEndpoints.Map(app, services);
        KeyServerEndpoints.Map(app, config, services.SigningKey, services.Clock);
        FederationVersionEndpoints.Map(app);
        AccountEndpoints.Map(app, services);
        DeviceEndpoints.Map(app, services);
        ProfileEndpoints.Map(app, services);
        SharedSecretRegistration.Map(app, services);
        RegistrationTokenEndpoints.Map(app, services);
        RoomEndpoints.Map(app, services);
        MembershipEndpoints.Map(app, services);
        HistoryEndpoints.Map(app, services);
        AccountDataEndpoints.Map(app, services);
        EphemeralEndpoints.Map(app, services);
        SyncEndpoints.Map(app, services, app.Lifetime.ApplicationStopping);
        Directories.DirectoryEndpoints.Map(app, services);
        RelationEndpoints.Map(app, services);
        TimestampEndpoints.Map(app, services);
        ReportEndpoints.Map(app, services);
        ReportAdminEndpoints.Map(app, services);
        RoomUpgrades.Map(app, services);
        Media.MediaEndpoints.Map(app, services, services.Media);
        Media.MediaAdminEndpoints.Map(app, services, services.Media);
        Keys.KeyEndpoints.Map(app, services);
        Keys.CrossSigningEndpoints.Map(app, services);
        Keys.ToDeviceEndpoints.Map(app, services);
        Keys.KeyBackupEndpoints.Map(app, services);
        Keys.DehydratedDeviceEndpoints.Map(app, services);
        var loggers = app.Services.GetRequiredService<ILoggerFactory>();
        purger = new RetentionPurger(services, loggers.CreateLogger("Lethe.Retention"));
        selfDestruct = new SelfDestruct(services, loggers.CreateLogger("Lethe.Retention"));
        mediaRetention = new Media.MediaRetention(services, loggers.CreateLogger("Lethe.Media"));
        RetentionEndpoints.Map(app, services, purger);
        privacyGc = new PrivacyGc(services, loggers.CreateLogger("Lethe.Privacy"));
        PrivacyEndpoints.Map(app, services, privacyGc);
        SynapseAdminEndpoints.Map(app, services);
        ConsentEndpoints.Map(app, services);
        Push.PushEndpoints.Map(app, services);
        if (config.Push.Enabled)
        {
            services.Push.Delivery = new Push.PushDelivery(services, loggers.CreateLogger("Lethe.Push"));
        }

        Metrics.MetricsEndpoints.Map(app, services);
        return app;
    }

    private static void ConfigureListeners(KestrelServerOptions kestrel, HomeserverConfig config)
    {
        kestrel.AddServerHeader = false;
        kestrel.Limits.MaxRequestBodySize = Math.Max(JsonBody.DefaultLimit, config.MaxUploadSize + 64 * 1024);
        // A response may run up to 1 MiB ahead of the client before a write waits (Kestrel's default is 64 KiB): a media
        // download no longer stops every 64 KiB for the client to catch up (100 MiB downloads 1.1 → 1.5 GB/s on loopback).
        // Only bytes already produced are held, so small JSON answers cost nothing more.
        kestrel.Limits.MaxResponseBufferSize = 1024 * 1024;
        X509Certificate2? certificate = null;
        foreach (var listener in config.Listeners)
        {
            void Configure(ListenOptions options)
            {
                var l = listener;
                // HTTP/2 needs TLS (ALPN); plain listeners speak HTTP/1.1, which is what reverse proxies use anyway.
                options.Protocols = l.Tls ? HttpProtocols.Http1AndHttp2 : HttpProtocols.Http1;
                options.Use(next => connection =>
                {
                    connection.Items[HttpPipeline.ListenerItemKey] = l;
                    return next(connection);
                });
                if (l.Tls)
                {
                    certificate ??= X509Certificate2.CreateFromPemFile(config.TlsCertificatePath!, config.TlsPrivateKeyPath);
                    options.UseHttps(certificate);
                }
            }

            if (listener.UnixSocketPath is { } socket)
            {
                if (File.Exists(socket))
                {
                    File.Delete(socket);
                }

                kestrel.ListenUnixSocket(socket, Configure);
                continue;
            }

            var addresses = listener.BindAddresses;
            // "::" alone is dual-stack on Linux, so "::" plus "0.0.0.0" (Synapse's default) would bind the port twice.
            if (addresses.Count == 0 || addresses.Contains("::"))
            {
                kestrel.ListenAnyIP(listener.Port, Configure);
                continue;
            }

            foreach (var address in addresses)
            {
                if (address == "localhost")
                {
                    kestrel.ListenLocalhost(listener.Port, Configure);
                }
                else
                {
                    kestrel.Listen(System.Net.IPAddress.Parse(address), listener.Port, Configure);
                }
            }
        }
    }

    private void WritePidFile()
    {
        if (_config.PidFile is { } path)
        {
            File.WriteAllText(path, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n");
        }
    }

    /// <summary>Periodic upkeep: write device activity, forget idle rate-limit buckets and old to-device transaction IDs.</summary>
    private async Task HousekeepingAsync()
    {
        try
        {
            await Services.Activity.FlushAsync(Stopping);
            await Services.Media.FlushAccessTimesAsync(Stopping);
            Services.RateLimiter.Prune();
            await PrivacyGc.RunIfDueAsync(Stopping);
            await Services.ToDevice.ForgetTransactionsAsync(Services.NowMs - Keys.ToDeviceEndpoints.TransactionMemoryMs, Stopping);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or System.Data.Common.DbException)
        {
            // Shutting down, or the database is briefly unavailable: the next round catches up.
        }
    }

    /// <summary>Completes when the host has been asked to stop (SIGTERM or Ctrl+C).</summary>
    public Task WaitForShutdownAsync() => _app.WaitForShutdownAsync();

    /// <summary>Stops accepting requests, lets in-flight ones finish (long-polls are cancelled), then closes the database.</summary>
    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        await _housekeeping.DisposeAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(9));
        await _app.StopAsync(timeout.Token);
        await _app.DisposeAsync();

        // Background jobs stop after the last request, and before the database closes under them.
        await Purger.DisposeAsync();
        await _selfDestruct.DisposeAsync();
        await Services.PresenceTracker.DisposeAsync();
        await PrivacyGc.DisposeAsync();
        if (Services.Push.Delivery is { } delivery)
        {
            await delivery.DisposeAsync();
        }

        await MediaRetention.DisposeAsync();
        await Services.Activity.FlushAsync(CancellationToken.None);
        await Services.Media.FlushAccessTimesAsync(CancellationToken.None);
        Services.Dispose();
        await Database.DisposeAsync();
        if (_config.PidFile is { } path)
        {
            File.Delete(path);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await StopAsync();
}
