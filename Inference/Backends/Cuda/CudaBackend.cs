using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// The CUDA backend: every buffer in device memory, every operation a hand-written kernel (Backends/Cuda/Kernels) queued on
/// one stream, with the CPU backend's layouts and semantics so the forward pass runs unchanged. Host and device meet twice
/// a step: <see cref="BeginBatch"/> uploads the step's metadata with one copy from pinned memory, and
/// <see cref="ReadRows"/> (or <see cref="ArgMax"/> / <see cref="Sample"/>, which bring back only token ids) waits for the
/// results. Nothing in between synchronises, so a step's launches can also be captured as a CUDA graph
/// (<see cref="Stream"/>).
/// </summary>
public sealed class CudaBackend : IBackend, IDeviceArgMax
{
    private const int MetadataBuffers = 2;

    private readonly CudaPinnedBuffer<int>[] _staging = new CudaPinnedBuffer<int>[MetadataBuffers];
    private readonly CudaEvent[] _stagingFree = new CudaEvent[MetadataBuffers];
    private readonly bool _ownsContext;
    private CudaDeviceBuffer<int>? _metadata;
    private CudaDeviceBuffer<float>? _attentionPartials;
    private CudaDeviceBuffer<float>? _attentionStats;
    private CudaDeviceBuffer<float>? _sampleWeights;
    private CudaDeviceBuffer<float>? _uniforms;
    private CudaDeviceBuffer<int>? _tokenIds;
    private ForwardBatch? _batch;
    private BatchMetadata _layout;
    private int _stagingIndex;

    /// <param name="context">The device to run on (default: device 0's primary context, owned by the backend).</param>
    /// <param name="ptxDirectory">Load the kernels' PTX from this folder instead of the embedded resources.</param>
    /// <param name="ownsContext">Release <paramref name="context"/> on dispose (one backend per device of a tensor-parallel group).</param>
    public CudaBackend(CudaContext? context = null, string? ptxDirectory = null, bool ownsContext = false)
    {
        _ownsContext = context is null || ownsContext;
        Context = context ?? new CudaContext();
        Stream = new CudaStream(Context);
        Kernels = new CudaKernels(Context, ptxDirectory);
        for (var i = 0; i < MetadataBuffers; i++)
        {
            _staging[i] = new CudaPinnedBuffer<int>(Context, 1024);
            _stagingFree[i] = new CudaEvent(Context);
            _stagingFree[i].Record(Stream);
        }
    }

    public CudaContext Context { get; }

    public CudaStream Stream { get; }

    public CudaKernels Kernels { get; }

    public string Description => $"cuda {Context.Name} (sm_{Context.ComputeCapability.Major}{Context.ComputeCapability.Minor}, {Context.MultiprocessorCount} SMs)";

    public long AvailableMemoryBytes() => Context.MemoryInfo().Free;

    public DeviceWeight LoadWeight(TensorView tensor) => Upload(CudaWeightPacker.Pack(tensor));

    /// <summary>Uploads a weight already packed on the host.</summary>
    public CudaWeight Upload(PackedWeight packed)
    {
        Context.MakeCurrent();
        var codes = new CudaDeviceBuffer<byte>(Context, packed.Codes.Length);
        codes.CopyFrom(Stream, packed.Codes);
        CudaDeviceBuffer<float>? scales = null, mins = null;
        if (packed.Scales is not null)
        {
            scales = new CudaDeviceBuffer<float>(Context, packed.Scales.Length);
            scales.CopyFrom(Stream, packed.Scales);
        }

        if (packed.Mins is not null)
        {
            mins = new CudaDeviceBuffer<float>(Context, packed.Mins.Length);
            mins.CopyFrom(Stream, packed.Mins);
        }

        Stream.Synchronize();
        return new CudaWeight(packed.Name, packed.Type, packed.Rows, packed.Columns, packed.Layout, packed.CodeOffset, packed.ScalesPerBlock, codes, scales, mins);
    }

    public DeviceTensor CreateTensor(int rows, int columns)
    {
        Context.MakeCurrent();
        return new CudaTensor(Context, rows, columns);
    }

    public PagedKvCache CreateKvCache(KvCacheShape shape)
    {
        Context.MakeCurrent();
        if (shape.HeadDim % 4 != 0)
        {
            throw new ArgumentException($"The CUDA attention kernels need a head dimension that is a multiple of 4, not {shape.HeadDim}.", nameof(shape));
        }

        return new CudaKvCache(Context, shape);
    }

    public KvOffloadStore CreateKvOffloadStore(KvCacheShape shape, int slots)
    {
        Context.MakeCurrent();
        return new CudaKvOffloadStore(Context, shape, slots);
    }

    /// <summary>Queued on <see cref="Stream"/>: the step that reuses the block runs after the copy has read it.</summary>
    public void CopyKvBlockToHost(PagedKvCache cache, int block, KvOffloadStore store, int slot)
    {
        Context.MakeCurrent();
        ((CudaKvOffloadStore)store).Copy(Stream, (CudaKvCache)cache, block, slot, toHost: true);
    }

    /// <summary>Queued on <see cref="Stream"/>: the attention of the step that reads the block runs after the copy.</summary>
    public void CopyKvBlockFromHost(KvOffloadStore store, int slot, PagedKvCache cache, int block)
    {
        Context.MakeCurrent();
        ((CudaKvOffloadStore)store).Copy(Stream, (CudaKvCache)cache, block, slot, toHost: false);
    }

    public RotaryEmbedding CreateRotaryEmbedding(RopeSpec spec)
    {
        Context.MakeCurrent();
        return new CudaRotaryEmbedding(Context, Stream, spec);
    }

    /// <summary>
    /// When true, <see cref="BeginBatch"/> only takes the batch as the current one and uploads nothing: the caller uploads
    /// with <see cref="UploadBatch"/> before replaying a captured graph of the step (whose copy would otherwise be recorded
    /// with the pinned buffer of the capture).
    /// </summary>
    public bool DeferBatchUploads { get; set; }

    public void BeginBatch(ForwardBatch batch)
    {
        Context.MakeCurrent();
        _batch = batch;
        _layout = BatchMetadata.For(batch);
        if (!DeferBatchUploads)
        {
            UploadBatch(batch);
        }
    }

    /// <summary>Copies the batch's metadata to the device (through pinned memory, asynchronously on <see cref="Stream"/>).</summary>
    public void UploadBatch(ForwardBatch batch)
    {
        Context.MakeCurrent();
        var layout = BatchMetadata.For(batch);
        if (layout != _layout)
        {
            throw new InvalidOperationException("UploadBatch needs the batch given to BeginBatch (or one of the same shape).");
        }

        // Two pinned staging buffers: the one written now was last uploaded two steps ago; wait until that copy is done.
        _stagingIndex = (_stagingIndex + 1) % MetadataBuffers;
        _stagingFree[_stagingIndex].Synchronize();
        if (_staging[_stagingIndex].Length < _layout.Length)
        {
            _staging[_stagingIndex].Dispose();
            _staging[_stagingIndex] = new CudaPinnedBuffer<int>(Context, Math.Max(_layout.Length, 2 * _staging[_stagingIndex].Length));
        }

        if (_metadata is null || _metadata.Length < _layout.Length)
        {
            if (DeferBatchUploads)
            {
                throw new InvalidOperationException("The metadata buffer must not move while uploads are deferred: run one step eagerly first.");
            }

            _metadata?.Dispose();
            _metadata = new CudaDeviceBuffer<int>(Context, Math.Max(_layout.Length, 1024));
        }

        var staging = _staging[_stagingIndex];
        _layout.Pack(batch, staging.Span);
        _metadata.CopyFrom(Stream, staging.Span[.._layout.Length]);
        _stagingFree[_stagingIndex].Record(Stream);
    }

    private ForwardBatch Batch => _batch ?? throw new InvalidOperationException("Call BeginBatch before batch operations.");

    private DevicePointer Meta(int offset) => _metadata!.At(offset);

    public void Embed(DeviceWeight table, DeviceTensor output)
    {
        var t = (CudaWeight)table;
        var batch = Batch;
        foreach (var id in batch.TokenIds)
        {
            if ((uint)id >= (uint)t.Rows)
            {
                throw new ArgumentOutOfRangeException(nameof(table), id, $"Token id {id} is outside the vocabulary of {t.Rows}.");
            }
        }

        var y = Written(output);
        Kernels.EmbedRows.Launch(Stream, batch.TokenCount, 256, 0,
            t.Codes, Pointer(t.Scales), Pointer(t.Mins), (int)t.Layout, t.ScalesPerBlock, t.CodeOffset, t.Columns, Meta(_layout.TokenIds), y.Data);
    }

    public void RmsNorm(DeviceTensor input, DeviceWeight weight, float epsilon, DeviceTensor output, int rows)
    {
        var x = (CudaTensor)input;
        var w = NormWeight(weight, x);
        var y = Written(output);
        if (w.Columns == x.Columns)
        {
            Kernels.RmsNormRows.Launch(Stream, rows, 256, 0, x.Data, DevicePointer.Null, w.Codes, epsilon, y.Data, x.Columns);
        }
        else
        {
            var groups = rows * (x.Columns / w.Columns);
            Kernels.RmsNormGroups.Launch(Stream, CudaLaunchGeometry.Ceiling(groups, 4), 128, 0, x.Data, w.Codes, epsilon, y.Data, groups, w.Columns);
        }
    }

    public void AddRmsNorm(DeviceTensor residual, DeviceTensor delta, DeviceWeight weight, float epsilon, DeviceTensor output, int rows)
    {
        var x = Written(residual);
        var w = NormWeight(weight, x);
        if (w.Columns != x.Columns)
        {
            throw new ArgumentException($"AddRmsNorm needs a norm weight as wide as the row ({x.Columns}), not '{w.Name}' ({w.Columns}).", nameof(weight));
        }

        var y = Written(output);
        Kernels.RmsNormRows.Launch(Stream, rows, 256, 0, x.Data, ((CudaTensor)delta).Data, w.Codes, epsilon, y.Data, x.Columns);
    }

    private static CudaWeight NormWeight(DeviceWeight weight, CudaTensor input)
    {
        var w = (CudaWeight)weight;
        if (input.Columns % w.Columns != 0 || w.Layout != CudaWeightLayout.Float32 || w.Rows != 1)
        {
            throw new ArgumentException($"Norm weight '{w.Name}' ({w.Columns}) does not divide rows of {input.Columns}.", nameof(weight));
        }

        return w;
    }

    public void MatMul(DeviceTensor input, DeviceWeight weight, DeviceTensor output, int rows)
    {
        var x = (CudaTensor)input;
        var w = (CudaWeight)weight;
        if (x.Columns != w.Columns || output.Columns != w.Rows || rows > x.Rows || rows > output.Rows)
        {
            throw new ArgumentException($"MatMul '{w.Name}': input [{rows} × {x.Columns}] · weight [{w.Rows} × {w.Columns}]ᵀ into [{output.Rows} × {output.Columns}].");
        }

        if (w.Columns % 32 != 0)
        {
            throw new ArgumentException($"MatMul '{w.Name}': the CUDA kernels need K to be a multiple of 32, not {w.Columns}.");
        }

        var y = Written(output);
        var gemv = CudaLaunchGeometry.UseGemv(rows);
        var (gx, gy) = CudaLaunchGeometry.MatMulGrid(rows, w.Rows, gemv);
        var block = gemv ? 128 : w.Layout is CudaWeightLayout.Float16 or CudaWeightLayout.BFloat16 ? 128 : 256;
        if (w.IsQuantized)
        {
            EnsureQuantized(x, rows);
            Kernels.QuantizedMatMul(w, gemv).Launch(Stream, new Dim3((uint)gx, (uint)gy), block, 0,
                w.Codes, Pointer(w.Scales), Pointer(w.Mins), w.CodeOffset, x.QuantizedCodes, x.QuantizedScaleSums, y.Data, w.Rows, w.Columns, rows);
        }
        else
        {
            Kernels.FloatMatMul(w, gemv).Launch(Stream, new Dim3((uint)gx, (uint)gy), block, 0, w.Codes, x.Data, y.Data, w.Rows, w.Columns, rows);
        }
    }

    private void EnsureQuantized(CudaTensor x, int rows)
    {
        if (x.QuantizedVersion == x.Version && x.QuantizedRows >= rows)
        {
            return;
        }

        var blocks = (long)rows * (x.Columns / 32);
        Kernels.QuantizeQ8.Launch(Stream, (int)CudaLaunchGeometry.Ceiling(blocks, 8), 256, 0, x.Data, x.QuantizedCodes, x.QuantizedScaleSums, blocks);
        x.QuantizedVersion = x.Version;
        x.QuantizedRows = rows;
    }

    public void AddBias(DeviceTensor tensor, DeviceWeight bias, int rows)
    {
        var x = Written(tensor);
        var b = (CudaWeight)bias;
        if (b.Columns != x.Columns || b.Layout != CudaWeightLayout.Float32)
        {
            throw new ArgumentException($"Bias '{b.Name}' ({b.Columns}) does not match rows of {x.Columns}.", nameof(bias));
        }

        var n = (long)rows * x.Columns;
        Kernels.AddBias.Launch(Stream, (int)CudaLaunchGeometry.Ceiling(n, 256), 256, 0, x.Data, b.Codes, x.Columns, n);
    }

    public void RopeAndStoreKv(DeviceTensor query, DeviceTensor key, DeviceTensor value, RotaryEmbedding rope, PagedKvCache cache, int layer)
    {
        var batch = Batch;
        var kv = (CudaKvCache)cache;
        var r = (CudaRotaryEmbedding)rope;
        foreach (var slot in batch.Slots)
        {
            if (slot >= kv.Shape.SlotCount)
            {
                throw new ArgumentOutOfRangeException(nameof(cache), slot, $"Slot {slot} is outside the KV cache of {kv.Shape.SlotCount} slots.");
            }
        }

        foreach (var position in batch.Positions)
        {
            if (position >= r.Spec.MaxPositions)
            {
                throw new ArgumentOutOfRangeException(nameof(rope), position, $"RoPE table covers positions below {r.Spec.MaxPositions}.");
            }
        }

        var q = Written(query);
        var k = Written(key);
        var headDim = r.Spec.HeadDim;
        Kernels.RopeStoreKv.Launch(Stream, batch.TokenCount, 128, 0,
            q.Data, k.Data, ((CudaTensor)value).Data, r.Cos, r.Sin, Meta(_layout.Positions), Meta(_layout.Slots),
            kv.Keys(layer), kv.Values(layer), q.Columns / headDim, k.Columns / headDim, headDim, r.Spec.Style == RopeStyle.NeoX ? 1 : 0);
    }

    public void PagedAttention(DeviceTensor query, PagedKvCache cache, int layer, DeviceTensor output)
    {
        var batch = Batch;
        var kv = (CudaKvCache)cache;
        var q = (CudaTensor)query;
        var y = Written(output);
        var shape = kv.Shape;
        var heads = q.Columns / shape.HeadDim;
        var group = heads / shape.KvHeads;
        if (group * shape.HeadDim > CudaLaunchGeometry.AttentionMaxGroupWidth)
        {
            throw new InvalidOperationException($"{group} query heads per KV head × head dimension {shape.HeadDim} exceed the attention kernel's {CudaLaunchGeometry.AttentionMaxGroupWidth} outputs per block.");
        }

        if (batch.MaxContextLength > shape.SlotCount)
        {
            throw new InvalidOperationException($"A context of {batch.MaxContextLength} positions exceeds the KV cache of {shape.SlotCount} slots.");
        }

        var tokens = batch.TokenCount;
        var (partition, splits) = CudaLaunchGeometry.AttentionSplit(tokens, shape.KvHeads, batch.MaxContextLength, Context.MultiprocessorCount);
        if (splits > 1)
        {
            EnsureCapacity(ref _attentionPartials, (long)tokens * heads * splits * shape.HeadDim);
            EnsureCapacity(ref _attentionStats, (long)tokens * heads * splits * 2);
        }

        var scaleLog2 = (float)(1.0 / Math.Sqrt(shape.HeadDim) * 1.4426950408889634);
        Kernels.AttentionPartition.Launch(Stream, new Dim3((uint)splits, (uint)shape.KvHeads, (uint)tokens), CudaLaunchGeometry.AttentionTile,
            CudaLaunchGeometry.AttentionSharedBytes(group, shape.HeadDim),
            q.Data, kv.Keys(layer), kv.Values(layer), Meta(_layout.BlockTables), Meta(_layout.Sequences), Meta(_layout.Positions),
            y.Data, Pointer(_attentionPartials), Pointer(_attentionStats), heads, shape.KvHeads, shape.HeadDim, shape.BlockSize,
            batch.MaxBlocksPerSequence, partition, splits, scaleLog2);
        if (splits > 1)
        {
            Kernels.AttentionReduce.Launch(Stream, new Dim3((uint)heads, (uint)tokens), 128, 0,
                _attentionPartials!, _attentionStats!, Meta(_layout.Positions), y.Data, heads, shape.HeadDim, partition, splits);
        }
    }

    public void SiluMul(DeviceTensor gate, DeviceTensor up, DeviceTensor output, int rows)
    {
        var y = Written(output);
        var n = (long)rows * gate.Columns;
        Kernels.SiluMul.Launch(Stream, (int)CudaLaunchGeometry.Ceiling(n, 256), 256, 0, ((CudaTensor)gate).Data, ((CudaTensor)up).Data, y.Data, n);
    }

    public void GatherLogitRows(DeviceTensor input, DeviceTensor output)
    {
        var batch = Batch;
        var y = Written(output);
        Kernels.GatherRows.Launch(Stream, batch.LogitCount, 256, 0, ((CudaTensor)input).Data, Meta(_layout.LogitIndices), y.Data, input.Columns);
    }

    public void WriteRows(DeviceTensor tensor, ReadOnlySpan<float> source)
    {
        Context.MakeCurrent();
        var x = Written(tensor);
        if (source.Length > (long)x.Rows * x.Columns)
        {
            throw new ArgumentException($"{source.Length} values do not fit a tensor of {x.Rows} × {x.Columns}.", nameof(source));
        }

        x.Data.CopyFrom(Stream, source);
    }

    public void ReadRows(DeviceTensor tensor, int rows, Span<float> destination)
    {
        // Here and in ArgMax/Sample: under tensor parallelism the engine thread reads rank 0's logits after issuing KV
        // copies on every rank's device, so it may hold another device's context.
        Context.MakeCurrent();
        var x = (CudaTensor)tensor;
        x.Data.CopyTo(Stream, destination[..(rows * x.Columns)]);
    }

    /// <summary>Greedy choice on the device: the first index of each row's largest logit; only the ids are copied back.</summary>
    public void ArgMax(DeviceTensor logits, int rows, Span<int> ids)
    {
        Context.MakeCurrent();
        var x = (CudaTensor)logits;
        EnsureCapacity(ref _tokenIds, Math.Max(rows, 64));
        Kernels.ArgmaxRows.Launch(Stream, rows, 1024, 0, x.Data, x.Columns, _tokenIds!);
        _tokenIds!.CopyTo(Stream, ids[..rows]);
    }

    /// <summary>
    /// Temperature / top-k / top-p sampling on the device (sampling.cu): one draw per row with the given uniform numbers in
    /// [0, 1); only the ids are copied back.
    /// </summary>
    public void Sample(DeviceTensor logits, int rows, float temperature, int topK, float topP, ReadOnlySpan<float> uniforms, Span<int> ids)
    {
        if (!(temperature > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "Sampling needs a positive temperature (use ArgMax for greedy).");
        }

        Context.MakeCurrent();
        var x = (CudaTensor)logits;
        EnsureCapacity(ref _tokenIds, Math.Max(rows, 64));
        EnsureCapacity(ref _uniforms, Math.Max(rows, 64));
        EnsureCapacity(ref _sampleWeights, (long)x.Rows * x.Columns);
        _uniforms!.CopyFrom(Stream, uniforms[..rows]);
        Kernels.SampleRows.Launch(Stream, rows, 1024, 0, x.Data, _sampleWeights!, x.Columns, temperature, topK, topP, _uniforms, _tokenIds!);
        _tokenIds!.CopyTo(Stream, ids[..rows]);
    }

    private void EnsureCapacity<T>(ref CudaDeviceBuffer<T>? buffer, long length) where T : unmanaged
    {
        if (buffer is null || buffer.Length < length)
        {
            buffer?.Dispose();
            buffer = new CudaDeviceBuffer<T>(Context, length);
        }
    }

    private static DevicePointer Pointer<T>(CudaDeviceBuffer<T>? buffer) where T : unmanaged => buffer?.Pointer ?? DevicePointer.Null;

    private CudaTensor Written(DeviceTensor tensor)
    {
        var t = (CudaTensor)tensor;
        t.MarkWritten();
        return t;
    }

    public void Dispose()
    {
        Context.MakeCurrent();
        Stream.Synchronize();
        _metadata?.Dispose();
        _attentionPartials?.Dispose();
        _attentionStats?.Dispose();
        _sampleWeights?.Dispose();
        _uniforms?.Dispose();
        _tokenIds?.Dispose();
        foreach (var buffer in _staging)
        {
            buffer.Dispose();
        }

        foreach (var e in _stagingFree)
        {
            e.Dispose();
        }

        Kernels.Dispose();
        Stream.Dispose();
        if (_ownsContext)
        {
            Context.Dispose();
        }
    }
}
