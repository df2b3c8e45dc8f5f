using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace AspireAi.Inference.Engine;

/// <summary>
/// The engine's metrics under vLLM's names (so its Grafana dashboards work), labelled with <c>model_name</c> as vLLM does.
/// OpenTelemetry refuses ':' in instrument names (instruments named <c>vllm:…</c> are dropped with a warning), so they are
/// named <c>vllm.…</c> here; the Prometheus exporter writes that as <c>vllm_…</c> (adding <c>_total</c> to counters), and
/// the serving host's <c>/metrics</c> rewrites the prefix back to <c>vllm:</c> (<c>Serving.VllmMetricNames</c>).
/// The KV offload tier has no vLLM counterpart: its metrics are <c>aspireai.kv_offload_…</c>, shown as
/// <c>aspireai:kv_offload_…</c> beside vLLM's prefix-cache ones by the same rewrite.
/// </summary>
internal sealed class EngineMetrics : IDisposable
{
    /// <summary>The meter name to subscribe to (<c>AddMeter</c>).</summary>
    public const string MeterName = "AspireAi.Inference.Engine";

    // vLLM's latency buckets (seconds) for TTFT, ITL and end-to-end latency.
    private static readonly double[] TtftBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
    private static readonly double[] ItlBuckets = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
    private static readonly double[] E2eBuckets = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];

    private readonly Meter _meter;
    private readonly KeyValuePair<string, object?> _model;
    private readonly Histogram<double> _ttft;
    private readonly Histogram<double> _itl;
    private readonly Histogram<double> _e2e;
    private readonly Counter<long> _promptTokens;
    private readonly Counter<long> _generationTokens;
    private readonly Counter<long> _success;

    public EngineMetrics(LlmEngine engine, string modelName)
    {
        _meter = new Meter(MeterName);
        _model = new("model_name", modelName);
        var model = _model;
        _meter.CreateObservableGauge("vllm.num_requests_running", () => new Measurement<int>(engine.Snapshot.Running, model),
            description: "Number of requests in model execution batches.");
        _meter.CreateObservableGauge("vllm.num_requests_waiting", () => new Measurement<int>(engine.Snapshot.Waiting, model),
            description: "Number of requests waiting to be processed.");
        _meter.CreateObservableGauge("vllm.kv_cache_usage_perc", () => new Measurement<double>(engine.Snapshot.KvCacheUsage, model),
            description: "KV-cache usage. 1 means 100 percent usage.");
        _meter.CreateObservableCounter("vllm.prefix_cache_queries", () => new Measurement<long>(engine.Snapshot.PrefixQueryTokens, model),
            description: "Prefix cache queries, in terms of number of queried tokens.");
        _meter.CreateObservableCounter("vllm.prefix_cache_hits", () => new Measurement<long>(engine.Snapshot.PrefixHitTokens, model),
            description: "Prefix cache hits, in terms of number of cached tokens.");
        _meter.CreateObservableCounter("vllm.num_preemptions", () => new Measurement<long>(engine.Snapshot.Preemptions, model),
            description: "Cumulative number of preemptions from the engine.");
        _meter.CreateObservableCounter("aspireai.kv_offload_queries", () => new Measurement<long>(engine.Snapshot.OffloadQueryTokens, model),
            description: "KV offload tier queries, in terms of number of queried tokens (prompt tokens the device prefix cache did not have).");
        _meter.CreateObservableCounter("aspireai.kv_offload_hits", () => new Measurement<long>(engine.Snapshot.OffloadHitTokens, model),
            description: "KV offload tier hits, in terms of number of tokens copied back to the device instead of computed.");
        _meter.CreateObservableCounter("aspireai.kv_offload_stored", () => new Measurement<long>(engine.Snapshot.OffloadStoredBlocks, model),
            description: "KV blocks evicted from the device prefix cache and copied to the offload tier.");
        _meter.CreateObservableCounter("aspireai.kv_offload_evicted", () => new Measurement<long>(engine.Snapshot.OffloadEvictedBlocks, model),
            description: "KV blocks dropped from the offload tier (least recently used) to make room.");
        _meter.CreateObservableCounter("aspireai.kv_offload_loaded", () => new Measurement<long>(engine.Snapshot.OffloadLoadedBlocks, model),
            description: "KV blocks copied back from the offload tier to the device (prefix hits, re-admissions after preemption included).");
        _meter.CreateObservableGauge("aspireai.kv_offload_usage_perc", () => new Measurement<double>(engine.Snapshot.KvOffloadUsage, model),
            description: "KV offload tier usage. 1 means 100 percent usage.");
        _promptTokens = _meter.CreateCounter<long>("vllm.prompt_tokens", description: "Number of prefill tokens processed.");
        _generationTokens = _meter.CreateCounter<long>("vllm.generation_tokens", description: "Number of generation tokens processed.");
        _success = _meter.CreateCounter<long>("vllm.request_success", description: "Count of successfully processed requests.");
        _ttft = _meter.CreateHistogram("vllm.time_to_first_token_seconds", unit: null,
            description: "Histogram of time to first token in seconds.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = TtftBuckets });
        _itl = _meter.CreateHistogram("vllm.inter_token_latency_seconds", unit: null,
            description: "Histogram of inter-token latency in seconds.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ItlBuckets });
        _e2e = _meter.CreateHistogram("vllm.e2e_request_latency_seconds", unit: null,
            description: "Histogram of end to end request latency in seconds.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = E2eBuckets });
    }

    public void TimeToFirstToken(double seconds) => _ttft.Record(seconds, _model);

    public void InterTokenLatency(double seconds) => _itl.Record(seconds, _model);

    public void GenerationTokens(int count) => _generationTokens.Add(count, _model);

    public void RequestFinished(Sequence sequence, string reason)
    {
        _e2e.Record(Stopwatch.GetElapsedTime(sequence.ArrivalTimestamp).TotalSeconds, _model);
        _promptTokens.Add(sequence.PromptLength, _model);
        _success.Add(1, _model, new("finished_reason", reason));
    }

    public void Dispose() => _meter.Dispose();
}
