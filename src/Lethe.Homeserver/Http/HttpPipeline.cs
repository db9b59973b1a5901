using System.Diagnostics;
using Lethe.Homeserver.Configuration;
using Lethe.Homeserver.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Lethe.Homeserver.Http;

/// <summary>The whole middleware stack, in order: request log, CORS and OPTIONS, errors rendered as Matrix JSON, routing, listener resource gate, 404/405.</summary>
public static partial class HttpPipeline
{
    /// <summary>Key under which each connection records the listener it arrived on (see <see cref="LetheHost"/>).</summary>
    public const string ListenerItemKey = "lethe.listener";

    private const string CorsMethods = "GET, POST, PUT, DELETE, OPTIONS";
    private const string CorsHeaders = "X-Requested-With, Content-Type, Authorization";

    /// <summary>Installs the stack on <paramref name="app"/>; endpoints are mapped after this call. With <paramref name="metrics"/>, every request is counted and timed.</summary>
    public static void Use(WebApplication app, ILogger logger, LetheMetrics? metrics = null)
    {
        app.Use(async (context, next) =>
        {
            var started = Stopwatch.GetTimestamp();
            var headers = context.Response.Headers;
            // The spec asks for CORS headers on every response so browser clients work.
            headers.AccessControlAllowOrigin = "*";
            headers.AccessControlAllowMethods = CorsMethods;
            headers.AccessControlAllowHeaders = CorsHeaders;
            headers.XContentTypeOptions = "nosniff";
            try
            {
                if (HttpMethods.IsOptions(context.Request.Method))
                {
                    // Preflight: answer without running any endpoint logic, as the spec requires.
                    context.Response.StatusCode = 204;
                    return;
                }

                await next(context);
            }
            catch (Exception e) when (!context.Response.HasStarted)
            {
                await RenderAsync(context, e, logger);
            }
            finally
            {
                if (logger.IsEnabled(LogLevel.Information))
                {
                    LogRequest(logger, context.Request.Method, RequestPath(context), context.Response.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }

                if (metrics is not null)
                {
                    Count(metrics, context, Stopwatch.GetElapsedTime(started).TotalSeconds);
                }
            }
        });

        app.UseRouting();

        app.Use(async (context, next) =>
        {
            var endpoint = context.GetEndpoint();
            if (endpoint is null)
            {
                throw MatrixException.UnknownEndpoint();
            }

            // Routing turns a known path with the wrong method into a synthetic "405 HTTP Method Not Supported" endpoint.
            if (endpoint.Metadata.GetMetadata<ResourceGroup>() is not { } group)
            {
                throw endpoint.DisplayName?.StartsWith("405", StringComparison.Ordinal) == true
                    ? MatrixException.MethodNotAllowed()
                    : MatrixException.UnknownEndpoint();
            }

            var listener = ListenerOf(context);
            if (listener is not null && !listener.Resources.Contains(group.Name))
            {
                throw MatrixException.UnknownEndpoint();
            }

            await next(context);
        });
    }

    /// <summary>
    /// Records a request under its route pattern (not its path: IDs in paths would make a series per room), so the
    /// label set stays bounded; requests that matched no endpoint share one series.
    /// </summary>
    private static void Count(LetheMetrics metrics, HttpContext context, double seconds)
    {
        var endpoint = context.GetEndpoint();
        var group = endpoint?.Metadata.GetMetadata<ResourceGroup>()?.Name ?? "none";
        var route = (endpoint as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
        metrics.HttpRequestSeconds.Record(seconds, new("group", group), new("method", context.Request.Method), new("route", route));
        metrics.HttpResponses.Add(1, new KeyValuePair<string, object?>("group", group), new KeyValuePair<string, object?>("code", context.Response.StatusCode));
    }

    /// <summary>The listener a request arrived on, or null when unknown (e.g. in-memory test hosts).</summary>
    public static ListenerConfig? ListenerOf(HttpContext context) =>
        context.Features.Get<IConnectionItemsFeature>()?.Items.TryGetValue(ListenerItemKey, out var l) == true ? l as ListenerConfig : null;

    private static async Task RenderAsync(HttpContext context, Exception exception, ILogger logger)
    {
        MatrixException error;
        switch (exception)
        {
            case MatrixException m:
                error = m;
                break;
            case BadHttpRequestException { StatusCode: 413 }:
                error = MatrixException.TooLarge("Request body too large");
                break;
            case BadHttpRequestException bad:
                error = MatrixException.Of(bad.StatusCode, ErrCode.Unknown, "Bad request");
                break;
            case OperationCanceledException when context.RequestAborted.IsCancellationRequested:
                // The client went away; nobody is listening for an answer.
                context.Response.StatusCode = 499;
                return;
            default:
                LogUnhandled(logger, exception, context.Request.Method, RequestPath(context));
                error = MatrixException.Internal();
                break;
        }

        context.Response.Clear();
        var headers = context.Response.Headers;
        headers.AccessControlAllowOrigin = "*";
        headers.AccessControlAllowMethods = CorsMethods;
        headers.AccessControlAllowHeaders = CorsHeaders;
        headers.XContentTypeOptions = "nosniff";
        if (error.Headers is not null)
        {
            foreach (var kv in error.Headers)
            {
                headers[kv.Key] = kv.Value;
            }
        }

        await MatrixJson.WriteAsync(context, error.ToJson(), error.Status);
    }

    /// <summary>The path for logs: never the query string, which can hold access tokens.</summary>
    private static string RequestPath(HttpContext context) => context.Request.Path.Value ?? "/";

    [LoggerMessage(Level = LogLevel.Information, Message = "{Method} {Path} {Status} {ElapsedMs:F1}ms")]
    private static partial void LogRequest(ILogger logger, string method, string path, int status, double elapsedMs);

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled error in {Method} {Path}")]
    private static partial void LogUnhandled(ILogger logger, Exception exception, string method, string path);
}
