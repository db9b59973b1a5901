using Lethe.Homeserver.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Lethe.Homeserver.Metrics;

/// <summary>
/// <c>GET /_synapse/metrics</c> (Synapse's path, which existing Prometheus scrape configs use) and <c>/metrics</c>:
/// served only with <c>enable_metrics: true</c>, and only on listeners with the <c>metrics</c> resource (or a
/// <c>type: metrics</c> listener), so they are never public by accident.
/// </summary>
public static class MetricsEndpoints
{
    /// <summary>Maps the endpoints when metrics are enabled.</summary>
    public static void Map(WebApplication app, HomeserverServices hs)
    {
        if (!hs.Config.EnableMetrics)
        {
            return;
        }

        foreach (var path in new[] { "/_synapse/metrics", "/metrics" })
        {
            app.MapRaw("GET", path, ResourceGroup.Metrics, ctx =>
            {
                ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
                return ctx.Response.WriteAsync(hs.Metrics.Render(), ctx.RequestAborted);
            });
        }
    }
}
