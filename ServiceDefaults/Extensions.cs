using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Polly;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// The conventions every AspireAi service shares: OpenTelemetry (OTLP + Prometheus), health endpoints,
/// service discovery, resilient HttpClients and OpenAI-shaped errors.
/// </summary>
public static class ServiceDefaultsExtensions
{
    private const string HealthEndpointPath = "/health";
    private const string AlivenessEndpointPath = "/alive";
    private const string MetricsEndpointPath = "/metrics";

    /// <summary>Microsoft.Extensions.AI's ActivitySource and Meter (its <c>UseOpenTelemetry()</c> default name).</summary>
    public const string ExtensionsAiTelemetrySource = "Experimental.Microsoft.Extensions.AI";

    /// <summary>Adds telemetry, health checks, service discovery and resilience to every HttpClient.</summary>
    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.ConfigureOpenTelemetry();
        builder.AddDefaultHealthChecks();
        builder.Services.AddServiceDiscovery();
        builder.Services.AddProblemDetails();
        builder.Services.ConfigureHttpClientDefaults(http =>
        {
            http.AddStandardResilienceHandler(ConfigureResilienceForModelCalls);
            http.AddServiceDiscovery();
        });
        return builder;
    }

    /// <summary>
    /// Model calls are slow and streaming: a completion of a few thousand tokens on a CPU takes minutes, so the
    /// template's 10 s attempt / 30 s total timeouts would cut real work off. Retries are kept for idempotent
    /// requests; a POST is retried only when the server cannot have started it (no connection, 503 from a full
    /// queue, 429), because a POST that produced a response may already have generated tokens or written state.
    /// </summary>
    internal static void ConfigureResilienceForModelCalls(HttpStandardResilienceOptions options)
    {
        options.AttemptTimeout.Timeout = TimeSpan.FromMinutes(5);
        options.TotalRequestTimeout.Timeout = TimeSpan.FromMinutes(10);
        // The circuit breaker's sampling window must be at least twice the attempt timeout (validated by the library).
        options.CircuitBreaker.SamplingDuration = TimeSpan.FromMinutes(10);
        options.Retry.ShouldHandle = static args => ValueTask.FromResult(ShouldRetry(args.Outcome));
    }

    internal static bool ShouldRetry(Outcome<HttpResponseMessage> outcome)
    {
        var request = outcome.Result?.RequestMessage;
        var idempotent = request is null
            ? false
            : request.Method == HttpMethod.Get || request.Method == HttpMethod.Head || request.Method == HttpMethod.Options
              || request.Method == HttpMethod.Put || request.Method == HttpMethod.Delete;

        if (outcome.Exception is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError })
        {
            return true; // nothing reached the server
        }

        if (outcome.Result is { } response)
        {
            var status = response.StatusCode;
            if (status is HttpStatusCode.ServiceUnavailable or HttpStatusCode.TooManyRequests)
            {
                return true; // refused before any work was done
            }

            return idempotent && (status >= HttpStatusCode.InternalServerError || status == HttpStatusCode.RequestTimeout);
        }

        return false;
    }

    /// <summary>Logs, traces and metrics exported over OTLP (the Aspire dashboard) and scraped from <c>/metrics</c>.</summary>
    public static TBuilder ConfigureOpenTelemetry<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });

        builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter(ExtensionsAiTelemetrySource)
                // Every scrape sees the counters as they are (as vLLM's /metrics does): the exporter's default 300 ms
                // response cache made a scrape right after a burst of requests show none of them.
                .AddPrometheusExporter(options => options.ScrapeResponseCacheDurationMilliseconds = 0))
            .WithTracing(tracing => tracing
                .AddSource(builder.Environment.ApplicationName)
                .AddSource(ExtensionsAiTelemetrySource)
                .AddAspNetCoreInstrumentation(options =>
                    // Probes and scrapes every few seconds would drown the real requests in the trace view.
                    options.Filter = context => !IsInfrastructurePath(context.Request.Path))
                .AddHttpClientInstrumentation());

        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            builder.Services.AddOpenTelemetry().UseOtlpExporter();
        }

        return builder;
    }

    /// <summary>Registers the liveness check ("live" tag) that <c>/alive</c> reports; readiness checks go on <c>/health</c>.</summary>
    public static TBuilder AddDefaultHealthChecks<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddHealthChecks().AddCheck("self", () => HealthCheckResult.Healthy(), ["live"]);
        return builder;
    }

    /// <summary>
    /// Maps <c>/health</c> (every check: ready to serve), <c>/alive</c> (the process answers) and the Prometheus
    /// <c>/metrics</c> scrape endpoint, and turns every error status into OpenAI's error object.
    /// </summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthChecks(HealthEndpointPath, new HealthCheckOptions { ResponseWriter = HealthReportWriter.WriteAsync });
        app.MapHealthChecks(AlivenessEndpointPath, new HealthCheckOptions { Predicate = r => r.Tags.Contains("live") });
        app.MapPrometheusScrapingEndpoint(MetricsEndpointPath);
        return app;
    }

    private static bool IsInfrastructurePath(Microsoft.AspNetCore.Http.PathString path) =>
        path.StartsWithSegments(HealthEndpointPath) || path.StartsWithSegments(AlivenessEndpointPath)
        || path.StartsWithSegments(MetricsEndpointPath);
}
