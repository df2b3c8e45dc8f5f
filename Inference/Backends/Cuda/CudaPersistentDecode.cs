using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// The host's side of decode_persistent.cu for one model: whether its blocks qualify (llama blocks without biases or
/// per-head norms whose seven projections are nibble weights with one f16 scale a block — Q4_0), the device table of their
/// weights, the kernel's scratch (q, the quantized attention output, norm input and SiLU·mul output, the float SiLU·mul
/// output, attention partials, the grid barrier's counter and tickets) and the launch. Made by <see cref="CudaBackend.TryDecodeLayers"/> on a model's first one-token step.
/// </summary>
internal sealed class CudaPersistentDecode : IDisposable
{
    /// <summary>Pointers a layer has in the device table (PdLayer): 7 code and 7 scale buffers, the two norm weights.</summary>
    private const int PointersPerLayer = 16;

    private readonly CudaKernel _kernel;
    private readonly CudaDeviceBuffer<ulong> _layers;
    private readonly CudaDeviceBuffer<float> _query;
    private readonly CudaDeviceBuffer<byte> _quantized;
    private readonly CudaDeviceBuffer<float> _activated;
    private readonly CudaDeviceBuffer<float> _partials;
    private readonly CudaDeviceBuffer<float> _stats;
    private readonly CudaDeviceBuffer<uint> _arrived;

    private CudaPersistentDecode(CudaContext context, CudaStream upload, CudaKernel kernel, PersistentDecodeGeometry geometry, ulong[] table,
        int layerCount, int dim, int feedForward, int heads, int kvHeads, int headDim, int codeOffset)
    {
        (_kernel, Geometry, LayerCount, Dim, FeedForward, Heads, KvHeads, HeadDim, CodeOffset) =
            (kernel, geometry, layerCount, dim, feedForward, heads, kvHeads, headDim, codeOffset);
        _layers = new CudaDeviceBuffer<ulong>(context, table.Length);
        _layers.CopyFrom(upload, table);
        _query = new CudaDeviceBuffer<float>(context, heads * headDim);
        // Attention's output as int8 blocks (codes, then {d, d·Σq} a 32-value block), the next norm's input h·w and
        // SiLU·mul's output likewise, then each block's Σh² (decode_persistent.cu's quantized buffer).
        _quantized = new CudaDeviceBuffer<byte>(context, (heads * headDim + dim + feedForward) * 5 / 4 + 4 * context.MultiprocessorCount);
        _activated = new CudaDeviceBuffer<float>(context, feedForward);
        _partials = new CudaDeviceBuffer<float>(context, (long)heads * geometry.Partitions * headDim);
        _stats = new CudaDeviceBuffer<float>(context, 2L * heads * geometry.Partitions);
        // The grid barrier's count, then a ticket a layer and KV head (the attention merge's), then a ticket a layer and 32-row
        // group of the feed-forward rows (gate/up's groups that two blocks share).
        _arrived = new CudaDeviceBuffer<uint>(context, 1 + layerCount * kvHeads + layerCount * (feedForward / 32));
        upload.Synchronize();
    }

    public PersistentDecodeGeometry Geometry { get; }

    public int LayerCount { get; }

    public int Dim { get; }

    public int FeedForward { get; }

    public int Heads { get; }

    public int KvHeads { get; }

    public int HeadDim { get; }

    public int CodeOffset { get; }

    /// <summary>
    /// The plan for <paramref name="layers"/> (uploads on a stream of its own, so that it may be made while another stream
    /// records a graph), or null with <paramref name="unsupported"/> saying why the kernel does not serve them.
    /// </summary>
    public static CudaPersistentDecode? TryCreate(CudaContext context, CudaKernel kernel, IReadOnlyList<LayerWeights> layers, int kvHeads, int headDim,
        out string? unsupported)
    {
        unsupported = Unsupported(layers, kvHeads, headDim);
        if (unsupported is not null)
        {
            return null;
        }

        var first = layers[0];
        var (dim, feedForward, heads) = (first.Query.Columns, first.Gate.Rows, first.Query.Rows / headDim);
        var sharedBytes = context.Attribute(CudaDeviceAttribute.MaxSharedMemoryPerBlockOptin) - kernel.Attribute(CudaFunctionAttribute.SharedSizeBytes);
        if (PersistentDecodeGeometry.For(dim, feedForward, heads, kvHeads, headDim, context.MultiprocessorCount, sharedBytes) is not { } geometry)
        {
            unsupported = $"the shape (dim {dim}, ffn {feedForward}, {heads}/{kvHeads} heads × {headDim}) is not one decode_persistent serves "
                + "(widths multiples of 1,024, head dimension 64 or 128, at most 8 query heads a KV head)";
            return null;
        }

        kernel.SetMaxDynamicSharedMemory(geometry.SharedBytes);
        if (kernel.ResidentBlocksPerMultiprocessor(PersistentDecodeGeometry.Threads, geometry.SharedBytes) < 1)
        {
            unsupported = $"a block of {PersistentDecodeGeometry.Threads} threads and {geometry.SharedBytes} bytes of shared memory does not fit an SM";
            return null;
        }

        var table = new ulong[PointersPerLayer * layers.Count];
        for (var l = 0; l < layers.Count; l++)
        {
            var w = layers[l];
            CudaWeight[] matrices = [.. new[] { w.Query, w.Key, w.Value, w.AttentionOutput, w.Gate, w.Up, w.Down }.Cast<CudaWeight>()];
            for (var m = 0; m < matrices.Length; m++)
            {
                table[PointersPerLayer * l + m] = matrices[m].Codes.Pointer.Address;
                table[PointersPerLayer * l + 7 + m] = matrices[m].Scales!.Pointer.Address;
            }

            table[PointersPerLayer * l + 14] = ((CudaWeight)w.AttentionNorm).Codes.Pointer.Address;
            table[PointersPerLayer * l + 15] = ((CudaWeight)w.FeedForwardNorm).Codes.Pointer.Address;
        }

        using var upload = new CudaStream(context);
        return new CudaPersistentDecode(context, upload, kernel, geometry, table, layers.Count, dim, feedForward, heads, kvHeads, headDim,
            ((CudaWeight)first.Query).CodeOffset);
    }

    /// <summary>Why the kernel does not serve these blocks' weights, or null where it does.</summary>
    private static string? Unsupported(IReadOnlyList<LayerWeights> layers, int kvHeads, int headDim)
    {
        if (layers.Count == 0)
        {
            return "the model has no layers";
        }

        var first = layers[0];
        var (dim, feedForward, qRows, kvRows) = (first.Query.Columns, first.Gate.Rows, first.Query.Rows, kvHeads * headDim);
        var offset = ((CudaWeight)first.Query).CodeOffset;
        foreach (var w in layers)
        {
            if (w.QueryBias is not null || w.QueryNorm is not null)
            {
                return "its blocks have q/k/v biases or per-head norms";
            }

            (DeviceWeight Weight, int Rows, int Columns)[] expected =
            [
                (w.Query, qRows, dim), (w.Key, kvRows, dim), (w.Value, kvRows, dim), (w.AttentionOutput, dim, qRows),
                (w.Gate, feedForward, dim), (w.Up, feedForward, dim), (w.Down, dim, feedForward),
            ];
            foreach (var (weight, rows, columns) in expected)
            {
                var c = (CudaWeight)weight;
                if (c.Layout != CudaWeightLayout.Nibble || !CudaWeight.HasHalfScales(c.ScalesPerBlock, c.Mins is not null) || c.CodeOffset != offset)
                {
                    return $"'{c.Name}' is {c.Type}, not nibble weights with one f16 scale a block (Q4_0)";
                }

                if (c.Rows != rows || c.Columns != columns)
                {
                    return $"'{c.Name}' is [{c.Rows} × {c.Columns}], not [{rows} × {columns}]";
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Launches the kernel on <paramref name="stream"/>: hidden holds the embedded token on entry and the residual stream
    /// after the last block once the kernel has run. The metadata pointers are the step's (CudaBackend's layout).
    /// </summary>
    /// <param name="trace">Where block 0 stamps its stages (<see cref="PersistentDecodeGeometry.TraceLength"/> values), or null.</param>
    public void Launch(CudaStream stream, int multiprocessors, CudaTensor hidden, CudaKvCache cache, CudaRotaryEmbedding rope, float epsilon,
        DevicePointer positions, DevicePointer slots, DevicePointer blockTables, DevicePointer sequences, int maxBlocks, DevicePointer trace)
    {
        var g = Geometry;
        _arrived.Fill(stream, 0);
        _kernel.Launch(stream, multiprocessors, PersistentDecodeGeometry.Threads, g.SharedBytes,
            _layers, cache.LayerPointers(), LayerCount, hidden.Data, _query, _quantized, _activated, _partials, _stats, _arrived,
            rope.Cos, rope.Sin, positions, slots, blockTables, sequences, maxBlocks, cache.Shape.BlockSize,
            Dim, FeedForward, Heads, KvHeads, HeadDim, g.Partitions, epsilon, CudaLaunchGeometry.AttentionScaleLog2(HeadDim), CodeOffset,
            g.QkvTileRows, g.OutputTileRows, g.GateUpTileRows, g.DownTileRows, g.Stages, trace);
    }

    public void Dispose()
    {
        foreach (var buffer in new[] { _query, _activated, _partials, _stats })
        {
            buffer.Dispose();
        }

        _quantized.Dispose();
        _layers.Dispose();
        _arrived.Dispose();
    }
}
