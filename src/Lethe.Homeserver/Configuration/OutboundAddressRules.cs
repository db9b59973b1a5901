using System.Net;
using System.Net.Sockets;

namespace Lethe.Homeserver.Configuration;

/// <summary>
/// Which addresses outbound requests made on a user's behalf may connect to (<c>ip_range_blacklist</c> /
/// <c>ip_range_whitelist</c>): the check runs on the resolved address at connect time, so a host name that resolves
/// to a private address is refused as well, and redirects are never followed.
/// </summary>
public sealed class OutboundAddressRules(IReadOnlyList<IPNetwork> blacklist, IReadOnlyList<IPNetwork> whitelist)
{
    /// <summary>Synapse's default blacklist: private, loopback, link-local, CGNAT, documentation and multicast ranges.</summary>
    public static readonly IReadOnlyList<IPNetwork> DefaultBlacklist = new[]
    {
        "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24", "169.254.0.0/16",
        "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",
        "::1/128", "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8", "fec0::/10",
    }.Select(IPNetwork.Parse).ToArray();

    // Synapse blocks these whatever the configuration says: they mean "this host".
    private static readonly IPNetwork[] Always = [IPNetwork.Parse("0.0.0.0/32"), IPNetwork.Parse("::/128")];

    /// <summary>Whether connecting to <paramref name="address"/> is allowed.</summary>
    public bool IsAllowed(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        foreach (var n in whitelist)
        {
            if (n.Contains(address))
            {
                return true;
            }
        }

        foreach (var n in Always)
        {
            if (n.Contains(address))
            {
                return false;
            }
        }

        foreach (var n in blacklist)
        {
            if (n.Contains(address))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// An HTTP client for requests on users' behalf: connects only to allowed addresses, follows no redirects, times out,
    /// and sends bodies with a Content-Length (callers use byte array content, never chunked streams).
    /// </summary>
    public HttpClient CreateClient(TimeSpan timeout)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            UseCookies = false,
            UseProxy = false,
            ConnectCallback = ConnectAsync,
        };
        return new HttpClient(handler) { Timeout = timeout };
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var host = context.DnsEndPoint.Host;
        var addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, ct);
        var allowed = addresses.Where(IsAllowed).ToArray();
        if (allowed.Length == 0)
        {
            throw new OutboundAddressBlockedException($"{host} resolves only to addresses outbound requests may not reach (ip_range_blacklist)");
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(allowed, context.DnsEndPoint.Port, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

/// <summary>An outbound request was refused because its destination is in <c>ip_range_blacklist</c>; retrying cannot help.</summary>
public sealed class OutboundAddressBlockedException(string message) : IOException(message);
