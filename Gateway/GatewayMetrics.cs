using System.Diagnostics.Metrics;

namespace AspireAi.Gateway;

/// <summary>The gateway's own meter (<c>AspireAi.Gateway</c>), exported with the service defaults' OTLP and Prometheus.</summary>
internal sealed class GatewayMetrics
{
    public const string MeterName = "AspireAi.Gateway";

    private readonly Counter<long> _degraded;
    private readonly Counter<long> _cache;
    private readonly Counter<long> _rateLimited;
    private readonly Counter<long> _retries;
    private readonly Counter<long> _usageDropped;
    private readonly Counter<long> _tokens;

    public GatewayMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _degraded = meter.CreateCounter<long>("aspireai.gateway.redis.degraded", "{operation}",
            "Operations that went on without Redis (limits not enforced, cache skipped) because Redis failed or was unreachable.");
        _cache = meter.CreateCounter<long>("aspireai.gateway.cache.lookups", "{lookup}", "Response cache lookups by result.");
        _rateLimited = meter.CreateCounter<long>("aspireai.gateway.rate_limited", "{request}", "Requests refused with 429 by reason.");
        _retries = meter.CreateCounter<long>("aspireai.gateway.upstream.retries", "{attempt}", "Requests retried on another replica before the first byte.");
        _usageDropped = meter.CreateCounter<long>("aspireai.gateway.usage.dropped", "{record}", "Usage records that could not be written.");
        _tokens = meter.CreateCounter<long>("aspireai.gateway.tokens", "{token}", "Tokens counted from upstream usage by kind.");
    }

    /// <summary>Counted in memory by tests and /metrics alike: how often Redis was skipped.</summary>
    public long DegradedCount => Interlocked.Read(ref _degradedCount);

    private long _degradedCount;

    public void Degraded(string component)
    {
        Interlocked.Increment(ref _degradedCount);
        _degraded.Add(1, new KeyValuePair<string, object?>("component", component));
    }

    public void CacheLookup(string result) => _cache.Add(1, new KeyValuePair<string, object?>("result", result));

    public void RateLimited(string reason) => _rateLimited.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void Retried(string deployment) => _retries.Add(1, new KeyValuePair<string, object?>("deployment", deployment));

    public void UsageDropped(int count) => _usageDropped.Add(count);

    public void Tokens(string model, int prompt, int completion)
    {
        _tokens.Add(prompt, new KeyValuePair<string, object?>("model", model), new KeyValuePair<string, object?>("kind", "prompt"));
        _tokens.Add(completion, new KeyValuePair<string, object?>("model", model), new KeyValuePair<string, object?>("kind", "completion"));
    }
}
