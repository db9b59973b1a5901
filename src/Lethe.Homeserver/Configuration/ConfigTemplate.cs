using System.Globalization;

namespace Lethe.Homeserver.Configuration;

/// <summary>Writes a starter homeserver.yaml in Synapse's format: SQLite and keys in one data folder, private-by-default settings.</summary>
public static class ConfigTemplate
{
    /// <summary>The config text for a server called <paramref name="serverName"/> keeping its data in <paramref name="dataDir"/> (made absolute).</summary>
    public static string Generate(string serverName, string dataDir, int port = 8008, string bindAddress = "127.0.0.1")
    {
        var dir = Path.GetFullPath(dataDir);
        var host = bindAddress.Contains(':', StringComparison.Ordinal) ? $"[{bindAddress}]" : bindAddress;
        var baseUrl = serverName == "localhost" ? $"http://{host}:{port.ToString(CultureInfo.InvariantCulture)}/" : $"https://{serverName}/";
        return $"""
            # Lethe homeserver configuration (Synapse's homeserver.yaml format; see docs/configuration.md).
            server_name: "{serverName}"
            public_baseurl: "{baseUrl}"
            pid_file: "{Path.Combine(dir, "homeserver.pid")}"

            listeners:
              - port: {port.ToString(CultureInfo.InvariantCulture)}
                bind_addresses: ["{bindAddress}"]
                type: http
                tls: false
                x_forwarded: false
                resources:
                  - names: [client, federation]

            database:
              name: sqlite3
              args:
                database: "{Path.Combine(dir, "homeserver.db")}"

            media_store_path: "{Path.Combine(dir, "media_store")}"
            signing_key_path: "{Path.Combine(dir, serverName.Replace(':', '_') + ".signing.key")}"

            # Accounts: nobody can register through the API until you open it. Create accounts with
            #   ./lethe register-user --config THIS_FILE --user NAME [--admin]
            enable_registration: false

            # Lethe asks no third party for anything unless you configure it.
            trusted_key_servers: []
            report_stats: false

            """;
    }
}
