using AspireAi.Inference.Backends;

namespace AspireAi.Inference.Engine;

/// <summary>Limits of the serving engine (each mirrors a <c>serve</c> flag).</summary>
public sealed record EngineOptions
{
    /// <summary>Tokens per KV block (<c>--block-size</c>; vLLM's default 16).</summary>
    public int BlockSize { get; init; } = 16;

    /// <summary>
    /// KV cache capacity in blocks (from <c>--kv-cache-tokens</c> or <c>--kv-cache-fraction</c>); with <see cref="CudaGraphs"/>
    /// the engine allocates one block more for the padding tokens.
    /// </summary>
    public required int KvCacheBlocks { get; init; }

    /// <summary>
    /// Element type of the KV cache (<c>--kv-cache-dtype</c>, resolved by the backend). Float32 unless set: the serving host
    /// and the commands pass the flag's value, whose default is <c>auto</c> (f16 on CUDA); engines built directly (tests,
    /// GpuCheck's comparisons with the CPU) keep the exact float32 cache unless they ask otherwise.
    /// </summary>
    public KvCacheDtype KvCacheDtype { get; init; } = KvCacheDtype.Float32;

    /// <summary>
    /// Host slots (blocks) of the KV offload tier (from <c>--kv-offload-tokens</c>; 0: no tier): cached prefix blocks evicted
    /// from the device cache are kept there and copied back on a prefix hit instead of being computed again.
    /// </summary>
    public int KvOffloadBlocks { get; init; }

    /// <summary>Most tokens one step computes, decode and prefill chunks together (<c>--max-batched-tokens</c>).</summary>
    public int MaxBatchedTokens { get; init; } = 512;

    /// <summary>Most sequences running at once (<c>--max-num-seqs</c>).</summary>
    public int MaxNumSeqs { get; init; } = 64;

    /// <summary>Most requests waiting for admission; more are refused with 503 (<c>--max-waiting</c>).</summary>
    public int MaxWaiting { get; init; } = 1024;

    /// <summary>Most running sequences of one tenant (<c>--max-running-per-tenant</c>; 0: no cap).</summary>
    public int MaxRunningPerTenant { get; init; }

    /// <summary>
    /// Share of a step's token budget that batch-priority sequences may use while interactive ones are running or waiting
    /// (<c>--batch-share</c>). On the CPU a step's time grows with every token in it, so the default 0 pauses batch work
    /// (it keeps its blocks) until interactive work is gone: measured with bench-serve, sharing steps raised interactive
    /// TPOT ~10× (docs/performance.md, Serving). A device where decode is memory-bound can afford more.
    /// </summary>
    public double BatchShare { get; init; }

    /// <summary>
    /// Most tokens of batch-priority work in one step (<c>--batch-step-tokens</c>). An interactive request that arrives while
    /// a batch step runs waits for that step, so batch steps are kept short. Measured with bench-serve on the 2-core CPU
    /// (1 request/s, 128 batch requests queued; docs/performance.md, "Interactive TTFT while a batch runs"): with 512-token
    /// batch steps interactive TTFT was 46 ms mean / 393 ms p99 against 29 / 157 without a batch; with 64-token steps
    /// 28 / 184. Matrix products take tokens 16 at a time, so shorter batch steps should cost batch throughput little.
    /// </summary>
    public int BatchStepTokens { get; init; } = 64;

    /// <summary>
    /// Replay CUDA graphs of decode steps on a model that records steps (CUDA; ignored elsewhere): steps whose tokens each
    /// decode one sequence are padded to the next of a few batch sizes and replay the graph recorded the first time that
    /// size and context bound was seen (<see cref="DecodeGraphs"/>); one KV block beyond <see cref="KvCacheBlocks"/> takes the
    /// padding. On by default, as
    /// in vLLM, whose <c>--enforce-eager</c> turns it off as ours does. Measured on an H100 (docs/performance.md, "CUDA
    /// graphs in the serving engine"): decode 5–9 % faster at batch 1 and 32, 2 % at 256 sequences.
    /// </summary>
    public bool CudaGraphs { get; init; } = true;

    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(BlockSize, "block-size");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(KvCacheBlocks, "kv-cache-blocks");
        ArgumentOutOfRangeException.ThrowIfNegative(KvOffloadBlocks, "kv-offload-blocks");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxBatchedTokens, "max-batched-tokens");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxNumSeqs, "max-num-seqs");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxWaiting, "max-waiting");
        ArgumentOutOfRangeException.ThrowIfNegative(MaxRunningPerTenant, "max-running-per-tenant");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(BatchStepTokens, "batch-step-tokens");
        if (!(BatchShare >= 0 && BatchShare <= 1))
        {
            throw new ArgumentOutOfRangeException("batch-share", BatchShare, "batch-share must be in [0, 1].");
        }
    }
}
