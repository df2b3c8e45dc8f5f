using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.Backends.Cuda;

public sealed partial class CudaBackend
{
    /// <summary>The persistent kernel's plan of each model asked for, or why it does not serve it, by the model's layer list.</summary>
    private readonly Dictionary<IReadOnlyList<LayerWeights>, (CudaPersistentDecode? Plan, string? Unsupported)> _persistentDecodes =
        new(ReferenceEqualityComparer.Instance);

    /// <summary>
    /// Whether one-token decode steps run every transformer block in one persistent kernel where the model qualifies
    /// (<see cref="TryDecodeLayers"/>). Off by default until GpuCheck has timed it against the layer-by-layer step.
    /// </summary>
    public bool PersistentDecode { get; set; }

    /// <summary>One-token steps the persistent kernel has run (GpuCheck's comparisons check that they ran it).</summary>
    public int PersistentDecodeSteps { get; private set; }

    /// <summary>Why the persistent kernel did not serve the last step that asked for it, or null.</summary>
    public string? PersistentDecodeUnsupported { get; private set; }

    /// <summary>
    /// Where the persistent kernel stamps its stages when tracing (GpuCheck sets it for one eager step and reads it back with
    /// <see cref="ReadPersistentDecodeTrace"/>); null: no trace, as in every recorded step.
    /// </summary>
    public CudaDeviceBuffer<ulong>? PersistentDecodeTrace { get; set; }

    /// <summary>
    /// The last traced step (after the stream has finished it): by layer, the global-timer values of
    /// <see cref="PersistentDecodeGeometry.TraceStampsPerLayer"/> points of block 0's consumers and the nanoseconds its
    /// producer waited for a free stage; by block (one an SM), its nanoseconds from each grid barrier to its arrival at the
    /// next, summed over the layers by stage (q/k/v, attention, output, gate/up, down), and the SM it ran on.
    /// </summary>
    public PersistentDecodeTimings ReadPersistentDecodeTrace(int layers)
    {
        var trace = PersistentDecodeTrace ?? throw new InvalidOperationException("No trace buffer is set.");
        var blocks = Context.MultiprocessorCount;
        var values = new ulong[PersistentDecodeGeometry.TraceLength(layers, blocks)];
        trace.CopyTo(Stream, values);
        var perLayer = PersistentDecodeGeometry.TraceStampsPerLayer;
        var perBlock = PersistentDecodeGeometry.TraceValuesPerBlock;
        var blockBase = (perLayer + 1) * layers;
        return new PersistentDecodeTimings(
            [.. Enumerable.Range(0, layers).Select(l => (values[(perLayer * l)..(perLayer * (l + 1))], values[perLayer * layers + l]))],
            [.. Enumerable.Range(0, blocks).Select(b => values[(blockBase + perBlock * b)..(blockBase + perBlock * (b + 1))])]);
    }

    /// <summary>Frees the persistent kernel's plan for a model's blocks (the model is going away; LlamaModel.Dispose).</summary>
    public void ForgetPersistentDecode(IReadOnlyList<LayerWeights> layers)
    {
        if (_persistentDecodes.Remove(layers, out var entry))
        {
            entry.Plan?.Dispose();
        }
    }

    /// <summary>
    /// Runs every transformer block of a one-token decode step in one launch of decode_persistent.cu where it can: a Hopper
    /// device, <see cref="PersistentDecode"/> on, one token whose sequence has only earlier steps in the cache, an f16 KV
    /// cache, adjacent-pair RoPE, and blocks of Q4_0 projections (<see cref="CudaPersistentDecode"/>). <paramref name="hidden"/>
    /// holds the embedded token on entry and the residual stream after the last block on return; the final norm is the
    /// caller's. False, with nothing done, elsewhere (the caller then runs the blocks a call at a time).
    /// </summary>
    public bool TryDecodeLayers(IReadOnlyList<LayerWeights> layers, DeviceTensor hidden, RotaryEmbedding rope, PagedKvCache cache, float epsilon)
    {
        if (!PersistentDecode || Kernels.PersistentDecodeNibble is not { } kernel || Batch.TokenCount != 1 || !_layout.DecodeOnly)
        {
            return false;
        }

        var (kv, r) = ((CudaKvCache)cache, (CudaRotaryEmbedding)rope);
        if (!kv.IsHalf || r.Spec.Style != RopeStyle.AdjacentPairs || r.Spec.HeadDim != kv.Shape.HeadDim)
        {
            PersistentDecodeUnsupported = "it needs an f16 KV cache and adjacent-pair RoPE";
            return false;
        }

        if (!_persistentDecodes.TryGetValue(layers, out var entry))
        {
            var made = CudaPersistentDecode.TryCreate(Context, kernel, layers, kv.Shape.KvHeads, kv.Shape.HeadDim, out var unsupported);
            _persistentDecodes[layers] = entry = (made, unsupported);
        }

        if (entry.Plan is not { } plan)
        {
            PersistentDecodeUnsupported = entry.Unsupported;
            return false;
        }

        if (plan.LayerCount != kv.Shape.Layers || plan.KvHeads != kv.Shape.KvHeads || Batch.MaxContextLength > kv.Shape.SlotCount)
        {
            PersistentDecodeUnsupported = "the KV cache does not match the model's blocks, or the context exceeds it";
            return false;
        }

        CheckRopeBatch(r, kv);
        plan.Launch(Stream, Context.MultiprocessorCount, Updated(hidden), kv, r, epsilon, Meta(_layout.Positions), Meta(_layout.Slots),
            Meta(_layout.BlockTables), Meta(_layout.Sequences), Batch.MaxBlocksPerSequence,
            PersistentDecodeTrace is { } trace && trace.Length >= PersistentDecodeGeometry.TraceLength(plan.LayerCount, Context.MultiprocessorCount) ? trace.Pointer : DevicePointer.Null);
        PersistentDecodeSteps++;
        PersistentDecodeUnsupported = null;
        return true;
    }
}

/// <summary>
/// A traced persistent decode step: <paramref name="Layers"/> holds block 0's stamps and its producer's wait a layer;
/// <paramref name="Blocks"/>, each block's nanoseconds from a grid barrier to its arrival at the next summed by stage (q/k/v,
/// attention, output, gate/up, down), then its SM.
/// </summary>
public sealed record PersistentDecodeTimings((ulong[] Stamps, ulong ProducerWait)[] Layers, ulong[][] Blocks);
