using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Tests.Infrastructure;
using Lethe.Protocol.Crypto;
using Lethe.Storage;
using Lethe.Tests.Shared;

namespace Lethe.Homeserver.Tests.Cli;

/// <summary>The real <c>./lethe</c> script, driven the way an operator or a Synapse test harness drives a homeserver.</summary>
public sealed class CliTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    // The shutdown budget the issue sets: SIGTERM to exit within 10 s.
    private static readonly TimeSpan StopBudget = TimeSpan.FromSeconds(10);

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task<JsonObject> GetJsonAsync(Uri baseUrl, string path)
    {
        using var http = new HttpClient { BaseAddress = baseUrl };
        return JsonNode.Parse(await http.GetStringAsync(path))!.AsObject();
    }

    [Fact]
    public async Task ServeWithNoConfigCreatesOneInDataAndServesOnPort8008()
    {
        var dir = TestHomeserver.NewTempDir();
        await using var lethe = LetheProcess.Start(dir, "serve");
        var url = await lethe.WaitForUrlAsync(StartTimeout);
        Assert.Equal(new Uri("http://127.0.0.1:8008/"), url);
        Assert.IsType<JsonArray>((await GetJsonAsync(url, "/_matrix/client/versions"))["versions"]);

        Assert.True(File.Exists(Path.Combine(dir, "data/homeserver.yaml")));
        Assert.True(File.Exists(Path.Combine(dir, "data/homeserver.db")));
        Assert.True(File.Exists(Path.Combine(dir, "data/localhost.signing.key")));
        Assert.Contains("./lethe register-user --config data/homeserver.yaml --user admin --admin", lethe.Stdout, StringComparison.Ordinal);
        var config = ConfigLoader.LoadFile(Path.Combine(dir, "data/homeserver.yaml"));
        Assert.Equal("localhost", config.ServerName);
        Assert.False(config.EnableRegistration);

        lethe.Terminate();
        Assert.Equal(0, await lethe.WaitForExitAsync(StopBudget));
        Assert.False(File.Exists(Path.Combine(dir, "data/homeserver.pid")), "the pid file is removed on shutdown");
    }

    [Fact]
    public async Task ServeWithConfigWritesPidFileAndStopsOnSigterm()
    {
        var dir = TestHomeserver.NewTempDir();
        var configPath = Path.Combine(dir, "hs.yaml");
        await File.WriteAllTextAsync(configPath, $"""
            server_name: cli.test
            pid_file: {dir}/lethe.pid
            listeners: [{"{"}port: 0, bind_addresses: ['127.0.0.1'], resources: [{"{"}names: [client, federation]{"}"}]{"}"}]
            database: {"{"}name: sqlite3, args: {"{"}database: {dir}/hs.db{"}"}{"}"}
            signing_key_path: {dir}/cli.test.key
            media_store_path: {dir}/media
            """);
        await using var lethe = LetheProcess.Start(dir, "serve", "--config", configPath);
        var url = await lethe.WaitForUrlAsync(StartTimeout);
        Assert.Equal(lethe.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), (await File.ReadAllTextAsync($"{dir}/lethe.pid")).Trim());
        Assert.Equal("cli.test", (await GetJsonAsync(url, "/_matrix/key/v2/server"))["server_name"]!.GetValue<string>());

        lethe.Terminate();
        Assert.Equal(0, await lethe.WaitForExitAsync(StopBudget));
        Assert.False(File.Exists($"{dir}/lethe.pid"));
    }

    [Fact]
    public async Task ASynapseGeneratedConfigStartsUnchanged()
    {
        // The shape of `python -m synapse.app.homeserver --generate-config` output, with this test's paths and port.
        var dir = TestHomeserver.NewTempDir();
        var port = FreePort();
        var configPath = Path.Combine(dir, "homeserver.yaml");
        await File.WriteAllTextAsync(configPath, $"""
            # Configuration file for Synapse.
            server_name: "my.domain.name"
            pid_file: {dir}/homeserver.pid
            listeners:
              - port: {port}
                tls: false
                type: http
                x_forwarded: true
                bind_addresses: ['127.0.0.1']
                resources:
                  - names: [client, federation]
                    compress: false
            database:
              name: sqlite3
              args:
                database: {dir}/homeserver.db
            log_config: "{dir}/my.domain.name.log.config"
            media_store_path: {dir}/media_store
            registration_shared_secret: "8tZ,K4o0rN.Qdl~wE2p*Yh8Ai@fcx6vKlfW1Bmo.E0G~w3NT.j"
            report_stats: false
            macaroon_secret_key: "g.jVcZCt3_dQ3XE;Nj:U9pfFCQPk:GKfy4uOr4jWCePv1-H;KH"
            form_secret: "&rE:rN38QiKiY2G9FgBn9:KI3mp@9l4WgCI2nhZ9,DFw:#RHnz"
            signing_key_path: "{dir}/my.domain.name.signing.key"
            trusted_key_servers:
              - server_name: "matrix.org"
            """);
        await using var lethe = LetheProcess.Start(dir, "serve", "--config", configPath);
        var url = await lethe.WaitForUrlAsync(StartTimeout);
        Assert.Equal(port, url.Port);
        await GetJsonAsync(url, "/_matrix/client/versions");
        // The only complaints: the privacy warnings about matrix.org as key notary.
        Assert.DoesNotContain("unknown option", lethe.Stderr, StringComparison.Ordinal);
        Assert.Contains("matrix.org is configured as a key notary", lethe.Stderr, StringComparison.Ordinal);
        lethe.Terminate();
        Assert.Equal(0, await lethe.WaitForExitAsync(StopBudget));
    }

    /// <summary>A self-signed certificate for 127.0.0.1, written as PEM files the way an operator's certbot output looks.</summary>
    private static (string Cert, string Key, byte[] Der) WriteSelfSignedPem(string dir)
    {
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest(
            "CN=127.0.0.1", rsa, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        var san = new System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var certPath = Path.Combine(dir, "tls.crt");
        var keyPath = Path.Combine(dir, "tls.key");
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        File.WriteAllText(keyPath, rsa.ExportPkcs8PrivateKeyPem());
        return (certPath, keyPath, cert.RawData);
    }

    [Fact]
    public async Task ATlsListenerServesHttpsWithTheConfiguredCertificate()
    {
        var dir = TestHomeserver.NewTempDir();
        var (cert, key, der) = WriteSelfSignedPem(dir);
        var configPath = Path.Combine(dir, "hs.yaml");
        await File.WriteAllTextAsync(configPath, $"""
            server_name: tls.test
            tls_certificate_path: {cert}
            tls_private_key_path: {key}
            listeners: [{"{"}port: 0, tls: true, bind_addresses: ['127.0.0.1'], resources: [{"{"}names: [client, federation]{"}"}]{"}"}]
            database: {"{"}name: sqlite3, args: {"{"}database: {dir}/hs.db{"}"}{"}"}
            signing_key_path: {dir}/tls.test.key
            media_store_path: {dir}/media
            """);
        await using var lethe = LetheProcess.Start(dir, "serve", "--config", configPath);
        var url = await lethe.WaitForUrlAsync(StartTimeout);
        Assert.Equal("https", url.Scheme);

        byte[]? presented = null;
        using var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, c, _, _) =>
            {
                presented = c?.RawData;
                return presented is not null && presented.AsSpan().SequenceEqual(der);
            },
        };
        using var https = new HttpClient(handler) { BaseAddress = url };
        var versions = JsonNode.Parse(await https.GetStringAsync("/_matrix/client/versions"))!;
        Assert.IsType<JsonArray>(versions["versions"]);
        Assert.Equal(der, presented); // the operator's certificate, not a development one

        lethe.Terminate();
        Assert.Equal(0, await lethe.WaitForExitAsync(StopBudget));
    }

    [Fact]
    public async Task UnusableFilesAndFoldersRefuseToStartAndNameTheKey()
    {
        var dir = TestHomeserver.NewTempDir();
        var (cert, key, _) = WriteSelfSignedPem(dir);
        var notPem = Path.Combine(dir, "not-a-certificate.pem");
        await File.WriteAllTextAsync(notPem, "this is not a certificate\n");
        var aFile = Path.Combine(dir, "a-file");
        await File.WriteAllTextAsync(aFile, "x");
        var basics = $"server_name: files.test\ndatabase: {{name: sqlite3, args: {{database: {dir}/hs.db}}}}\nlisteners: [{{port: 0, tls: true, bind_addresses: ['127.0.0.1']}}]\n";

        async Task RefusedAsync(string yaml, string message)
        {
            var configPath = Path.Combine(dir, "bad.yaml");
            await File.WriteAllTextAsync(configPath, basics + yaml);
            var (code, _, stderr) = await LetheProcess.RunAsync(dir, "serve", "--config", configPath);
            Assert.Equal(2, code);
            Assert.Contains(message, stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", stderr, StringComparison.Ordinal);
        }

        await RefusedAsync($"tls_certificate_path: {notPem}\ntls_private_key_path: {key}\nsigning_key_path: {dir}/k\n", "tls_certificate_path: cannot load the certificate");
        await RefusedAsync($"tls_certificate_path: {cert}\ntls_private_key_path: {notPem}\nsigning_key_path: {dir}/k\n", "tls_certificate_path: cannot load the certificate");
        await RefusedAsync($"tls_certificate_path: {cert}\ntls_private_key_path: {key}\nsigning_key_path: {dir}/k\nmedia_store_path: {aFile}/media\n", "media_store_path: cannot create the folder");
        await RefusedAsync($"tls_certificate_path: {cert}\ntls_private_key_path: {key}\nsigning_key_path: {aFile}/signing.key\n", "signing_key_path: cannot write a new signing key");
    }

    [Theory]
    [InlineData("listeners: [{port: 99999}]", "listeners[0].port: must be between 0 and 65535")]
    [InlineData("database: {name: oracle}", "database.name: must be sqlite3 or psycopg2")]
    [InlineData("enable_registration: true", "enable_registration: open registration needs a verification step")]
    public async Task BadConfigRefusesToStartAndNamesTheKey(string line, string message)
    {
        var dir = TestHomeserver.NewTempDir();
        var configPath = Path.Combine(dir, "bad.yaml");
        await File.WriteAllTextAsync(configPath, $"server_name: bad.test\n{line}\n");
        var (code, _, stderr) = await LetheProcess.RunAsync(dir, "serve", "--config", configPath);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMissingConfigFileIsReported()
    {
        var dir = TestHomeserver.NewTempDir();
        var (code, _, stderr) = await LetheProcess.RunAsync(dir, "serve", "--config", "nope.yaml");
        Assert.Equal(2, code);
        Assert.Contains("cannot read", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GeneratedConfigServes()
    {
        var dir = TestHomeserver.NewTempDir();
        var port = FreePort();
        var (code, config, stderr) = await LetheProcess.RunAsync(dir, "generate-config", "--server-name", "gen.test", "--data-dir", "store", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(code == 0, stderr);
        Assert.Contains($"{dir}/store/homeserver.db", config, StringComparison.Ordinal);
        var configPath = Path.Combine(dir, "gen.yaml");
        await File.WriteAllTextAsync(configPath, config);

        await using var lethe = LetheProcess.Start(dir, "serve", "--config", configPath);
        var url = await lethe.WaitForUrlAsync(StartTimeout);
        Assert.Equal(port, url.Port);
        Assert.Equal("gen.test", (await GetJsonAsync(url, "/_matrix/key/v2/server"))["server_name"]!.GetValue<string>());
        Assert.Equal("", lethe.Stderr.Trim());
        lethe.Terminate();
        Assert.Equal(0, await lethe.WaitForExitAsync(StopBudget));
    }

    [Fact]
    public async Task GenerateConfigRejectsABadServerName()
    {
        var (code, _, stderr) = await LetheProcess.RunAsync(TestHomeserver.NewTempDir(), "generate-config", "--server-name", "bad name", "--data-dir", "x");
        Assert.Equal(2, code);
        Assert.Contains("not a valid server name", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(DatabaseEngine.Sqlite)]
    [InlineData(DatabaseEngine.Postgres)]
    public async Task RegisterUserCreatesAnAccountInTheDatabase(DatabaseEngine engine)
    {
        var dir = TestHomeserver.NewTempDir();
        var configPath = Path.Combine(dir, "hs.yaml");
        var database = engine == DatabaseEngine.Postgres ? TestDatabases.NewPostgresYaml() : $"database: {{name: sqlite3, args: {{database: {dir}/hs.db}}}}\n";
        await File.WriteAllTextAsync(configPath, $"server_name: reg.test\n{database}");

        var (code, stdout, stderr) = await LetheProcess.RunAsync(dir, "register-user", "--config", configPath, "--user", "alice", "--password", "wonderland", "--admin");
        Assert.True(code == 0, stderr);
        Assert.Contains("Created admin user @alice:reg.test", stdout, StringComparison.Ordinal);

        (code, stdout, stderr) = await LetheProcess.RunAsync(dir, "register-user", "--config", configPath, "--user", "@bob:reg.test");
        Assert.True(code == 0, stderr);
        var generated = stdout.Split('\n').Single(l => l.StartsWith("Password: ", StringComparison.Ordinal))["Password: ".Length..].Trim();
        Assert.True(generated.Length >= 20, "a generated password is long");

        (code, _, stderr) = await LetheProcess.RunAsync(dir, "register-user", "--config", configPath, "--user", "alice", "--password", "again");
        Assert.Equal(1, code);
        Assert.Contains("@alice:reg.test already exists", stderr, StringComparison.Ordinal);

        (code, _, stderr) = await LetheProcess.RunAsync(dir, "register-user", "--config", configPath, "--user", "Alice Smith", "--password", "x");
        Assert.Equal(2, code);
        Assert.Contains("not a valid user name", stderr, StringComparison.Ordinal);

        (code, _, stderr) = await LetheProcess.RunAsync(dir, "register-user", "--config", configPath, "--user", "@carol:elsewhere.test", "--password", "x");
        Assert.Equal(2, code);

        await using var db = await Database.OpenAsync(ConfigLoader.LoadFile(configPath).Database);
        var users = new UserStore(db);
        var alice = await users.GetAsync("@alice:reg.test");
        Assert.NotNull(alice);
        Assert.True(alice.IsAdmin);
        Assert.True(PasswordHash.Verify(alice.PasswordHash!, "wonderland"));
        Assert.False(PasswordHash.Verify(alice.PasswordHash!, "again"));
        var bob = await users.GetAsync("@bob:reg.test");
        Assert.False(bob!.IsAdmin);
        Assert.True(PasswordHash.Verify(bob.PasswordHash!, generated));
        Assert.Equal(2, await users.CountAsync());
    }
}
