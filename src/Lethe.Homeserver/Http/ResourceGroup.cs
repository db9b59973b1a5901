namespace Lethe.Homeserver.Http;

/// <summary>Endpoint metadata naming the listener resource (client, federation, keys, media, metrics, health) an endpoint belongs to; a listener serves only its resources.</summary>
public sealed record ResourceGroup(string Name)
{
    /// <summary>The client-server API.</summary>
    public static readonly ResourceGroup Client = new("client");

    /// <summary>The server-server API.</summary>
    public static readonly ResourceGroup Federation = new("federation");

    /// <summary>The key API (<c>/_matrix/key</c>).</summary>
    public static readonly ResourceGroup Keys = new("keys");

    /// <summary>The media API.</summary>
    public static readonly ResourceGroup Media = new("media");

    /// <summary>Prometheus metrics (only with <c>enable_metrics</c>).</summary>
    public static readonly ResourceGroup Metrics = new("metrics");

    /// <summary>Health checks; served on every HTTP listener.</summary>
    public static readonly ResourceGroup Health = new("health");

    /// <summary>The privacy policy page (<c>/_matrix/consent</c>).</summary>
    public static readonly ResourceGroup Consent = new("consent");
}
