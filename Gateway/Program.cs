using AspireAi.Gateway;
using AspireAi.Gateway.Auth;
using AspireAi.Gateway.Batches;
using AspireAi.Gateway.Caching;
using AspireAi.Gateway.Keys;
using AspireAi.Gateway.Limits;
using AspireAi.Gateway.Redis;
using AspireAi.Gateway.Replicas;
using AspireAi.Gateway.Routing;
using AspireAi.Gateway.Usage;
using AspireAi.Gateway.Validation;
using AspireAi.Gateway.WebChat;
using StackExchange.Redis;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(GatewayMetrics.MeterName));
builder.AddNpgsqlDataSource("gatewaydb");
builder.AddRedisClient("redis",
    // Redis is optional at run time: the gateway serves without limits and cache while it is away, so it must not be
    // a readiness check, must not fail start-up, and commands must fail at once rather than queue while disconnected.
    settings => settings.DisableHealthChecks = true,
    redis =>
    {
        redis.AbortOnConnectFail = false;
        redis.BacklogPolicy = BacklogPolicy.FailFast;
        redis.ConnectTimeout = 2000;
        redis.AsyncTimeout = 2000;
        // Back within a second of Redis returning (the default backs off exponentially, to tens of seconds).
        redis.ReconnectRetryPolicy = new LinearRetry(1000);
    });

var options = builder.Configuration.GetSection(GatewayOptions.Section).Get<GatewayOptions>() ?? new GatewayOptions();
builder.Services.AddOptions<GatewayOptions>().Bind(builder.Configuration.GetSection(GatewayOptions.Section));
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.Limits.MaxRequestBodySize = options.Validation.MaxUploadBytes;
    kestrel.Limits.MaxRequestHeadersTotalSize = options.Validation.MaxHeaderBytes;
    kestrel.Limits.MaxRequestHeaderCount = options.Validation.MaxHeaderCount;
});

builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<GatewayMetrics>();
builder.Services.AddPostgresMigrations(GatewaySchema.Migrations);
builder.Services.AddSingleton<IKeyStore, PostgresKeyStore>();
builder.Services.AddGatewayAuthentication(builder.Configuration);

builder.Services.AddSingleton<RedisGuard>();
builder.Services.AddSingleton<ILimiter, RedisLimiter>();
builder.Services.AddSingleton<IUsageStore, PostgresUsageStore>();
builder.Services.AddSingleton<UsageWriter>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<UsageWriter>());

builder.Services.AddSingleton<PromptGuard>();
builder.Services.AddSingleton<ResponseCache>();
builder.Services.AddSingleton<SemanticCache>();

builder.Services.AddSingleton<UpstreamClient>();
builder.Services.AddSingleton<ReplicaRegistry>();
builder.Services.AddSingleton<ReplicaForwarder>();
builder.Services.AddSingleton<ModelCatalog>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<ModelCatalog>());
builder.Services.AddSingleton<ModelRouter>();
builder.Services.AddSingleton<EmbeddingClient>();
builder.Services.AddSingleton<ModelRequestHandler>();
builder.Services.AddSingleton<BatchReplicaDirectory>();
builder.Services.AddSingleton<BatchUpstream>();
builder.Services.AddSingleton<BatchFilePlacer>();
builder.Services.AddSingleton<BatchUsageCharger>();
builder.Services.AddGatewayProxy(options);

var app = builder.Build();
app.UseOpenAiErrors();
app.UseWebChat();
app.UseAuthentication();
app.UseAuthorization();
app.MapDefaultEndpoints();
app.MapKeyEndpoints();
app.MapModelEndpoints();
app.MapBatchApiEndpoints();
app.MapGatewayProxy();
app.Run();
