using AspireAi.Inference.Engine;
using AspireAi.Inference.Serving.Batches;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace AspireAi.Inference.Serving;

/// <summary>The serving engine's wiring: the model (loaded at start), endpoints, metrics, body limits, health.</summary>
public static class ServingExtensions
{
    public static WebApplicationBuilder AddInferenceServing(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<InferenceOptions>().Bind(builder.Configuration.GetSection(InferenceOptions.Section));
        builder.Services.AddSingleton(sp => ServedModel.Load(
            sp.GetRequiredService<IOptions<InferenceOptions>>().Value, sp.GetRequiredService<ILoggerFactory>().CreateLogger("AspireAi.Inference.Serving")));
        builder.Services.AddSingleton<Microsoft.Extensions.AI.IChatClient>(sp => new EngineChatClient(sp.GetRequiredService<ServedModel>()));
        builder.Services.AddSingleton<BatchStore>();
        builder.Services.AddHostedService<BatchRunner>();
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(LlmEngine.MeterName));
        builder.Services.AddHealthChecks().AddCheck<ModelHealthCheck>("model");
        var maxBody = builder.Configuration.GetSection(InferenceOptions.Section).Get<InferenceOptions>()?.MaxRequestBodyBytes ?? new InferenceOptions().MaxRequestBodyBytes;
        builder.Services.Configure<KestrelServerOptions>(kestrel => kestrel.Limits.MaxRequestBodySize = maxBody);
        return builder;
    }

    /// <summary>Loads the model now (so the server answers only once it can serve) and maps the OpenAI endpoints.</summary>
    public static WebApplication MapInferenceEndpoints(this WebApplication app)
    {
        _ = app.Services.GetRequiredService<ServedModel>();
        // Every answer names this replica's tag, so the gateway learns which address holds the ids carrying it (BatchIds).
        var replicaTag = app.Services.GetRequiredService<BatchStore>().ReplicaTag;
        app.Use((context, next) =>
        {
            context.Response.Headers[ServiceDefaults.BatchIds.ReplicaHeader] = replicaTag;
            return next(context);
        });
        app.MapChatCompletionsEndpoints();
        app.MapCompletionsEndpoints();
        app.MapFilesEndpoints();
        app.MapBatchEndpoints();
        return app;
    }

    private sealed class ModelHealthCheck(ServedModel model) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var s = model.Engine.Snapshot;
            return Task.FromResult(HealthCheckResult.Healthy(
                $"{model.Id}: {s.Running} running, {s.Waiting} waiting, KV cache {s.KvCacheUsage:P0} used"));
        }
    }
}
