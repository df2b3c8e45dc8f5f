using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Backends.Sampling;
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
public sealed partial class CudaBackend : IBackend, IDeviceSampler
{
    private const int MetadataBuffers = 2;

    private readonly CudaPinnedBuffer<int>[] _staging = new CudaPinnedBuffer<int>[MetadataBuffers];
    private readonly CudaEvent[] _stagingFree = new CudaEvent[MetadataBuffers];
    private readonly bool _ownsContext;
    private CudaDeviceBuffer<int>? _metadata;
    private CudaDeviceBuffer<float>? _attentionPartials;
    private CudaDeviceBuffer<float>? _attentionStats;
    private CudaDeviceBuffer<float>? _sampleWeights;
    private CudaDeviceBuffer<SamplingRow>? _samplingRows;
    private CudaDeviceBuffer<TokenPenalty>? _penalties;
    private CudaDeviceBuffer<int>? _tokenIds;
    private ForwardBatch? _batch;
    private BatchMetadata _layout;
    private int _stagingIndex;
    private CudaDeviceBuffer<float>? _splitWorkspace;

    // While a step is captured (CaptureStep), BeginBatch only takes the batch as the current one and uploads nothing: each
    // replay uploads its batch through BeginBatch first (CudaStepGraph; the copy would otherwise be recorded with the
    // capture's pinned buffer).
    private bool _deferBatchUploads;

    /// <param name="context">The device to run on (default: device 0's primary context, owned by the backend).</param>
    /// <param name="ptxDirectory">Load the kernels' PTX from this folder instead of the embedded resources.</param>
    /// <param name="ownsContext">Release <paramref name="context"/> on dispose (one backend per device of a tensor-parallel group).</param>
    public CudaBackend(CudaContext? context = null, string? ptxDirectory = null, bool ownsContext = false)
    {
        _ownsContext = context is null || ownsContext;
        Context = context ?? new CudaContext();
        Stream = new CudaStream(Context);
        Kernels = new CudaKernels(Context, ptxDirectory);
        Stream.DependentLaunch = Kernels.DependentLaunch;
        _sharedBytesForBlocks = SharedBytesForBlocks;
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

    /// <summary>
    /// Counts the moves of the buffers a forward step addresses besides its tensors (batch metadata, attention partials,
    /// split-K workspace): a graph recorded before a move reads freed memory, so a recording is current only while this
    /// stays what it was (<see cref="CudaStepGraph"/>).
    /// </summary>
    public int StepBufferGeneration { get; private set; }

    /// <summary>Where the current batch's arrays sit in the metadata buffer (what a recorded step addresses).</summary>
    internal BatchMetadata Layout => _layout;

    public string Description => $"cuda {Context.Name} (sm_{Context.ComputeCapability.Major}{Context.ComputeCapability.Minor}, {Context.MultiprocessorCount} SMs)";

    public long AvailableMemoryBytes() => Context.MemoryInfo().Free;

    /// <summary>
    /// 0.8 of the device memory left after the weights: the device is the server's own (vLLM gives weights and KV cache 0.9
    /// of the whole device), and the fifth kept back holds what is allocated after the cache — per-step scratch of the
    /// sampler and logits (rows × vocabulary floats, ~160 MB at 256 rows of a 152k vocabulary), attention and split-K
    /// partials (a few MB), NCCL's buffers under tensor parallelism. At 0.2 (the CPU's share) a Qwen3-0.6B served
    /// nano-vllm's workload on an H100 with 72k KV tokens and preempted 198 times.
    /// </summary>
    public double DefaultKvCacheFraction => 0.8;

    public DeviceWeight LoadWeight(TensorView tensor) => Upload(CudaWeightPacker.Pack(tensor));

    /// <summary>Uploads a weight already packed on the host.</summary>
    public CudaWeight Upload(PackedWeight packed)
    {
        Context.MakeCurrent();
        var codes = new CudaDeviceBuffer<byte>(Context, packed.Codes.Length);
        codes.CopyFrom(Stream, packed.Codes);
        CudaDeviceBuffer<byte>? scales = null;
        CudaDeviceBuffer<float>? mins = null;
        if (packed.Scales is not null)
        {
            var bytes = CudaWeight.DeviceScales(packed.Name, packed.Scales, CudaWeight.HasHalfScales(packed.ScalesPerBlock, packed.Mins is not null));
            scales = new CudaDeviceBuffer<byte>(Context, bytes.Length);
            scales.CopyFrom(Stream, bytes);
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

    /// <summary>
    /// Float32 or f16, both stored by every kernel that touches the cache; <see cref="KvCacheDtype.Auto"/> is f16 (vLLM's
    /// <c>auto</c> stores the model's 16-bit type): decode at long contexts and large batches is bound by reading the cache
    /// (a 32-sequence Llama-3-8B step at context 2048 spends 45 % of its time in attention), and half the bytes halves that
    /// and doubles the tokens that fit. The keys and values of real models lie well inside f16's ±65504, and its rounding
    /// (≤ 2⁻¹¹ relative) is what GpuCheck's f16 bounds are derived from.
    /// </summary>
    /// <remarks>
    /// fp8 (E4M3, as vLLM's unscaled <c>fp8</c>) halves f16's bytes again: written by rope_store_kv_fp8 with the CPU's
    /// rounding, read by attention_decode_fp8_tc (decode on tensor cores: the staged codes widened exactly to f16 operands,
    /// K's straight into fragments, V's through per-warp rows), attention_partition_fp8 where that does not serve the
    /// geometry, and
    /// attention_prefill_fp8 (attention_prefill_f16's cp.async stages, each tile widened to f16 by the block). Its accuracy:
    /// docs/performance.md, "The fp8 KV cache's accuracy".
    /// </remarks>
    public KvCacheDtype ResolveKvCacheDtype(KvCacheDtype requested) => requested switch
    {
        KvCacheDtype.Auto => KvCacheDtype.Float16,
        KvCacheDtype.BFloat16 => throw new ArgumentException(
            $"Inference:KvCacheDtype (--kv-cache-dtype) bf16 is not supported here: this backend ({Description}) keeps an f16, fp8 or float32 KV cache (use auto, fp16, fp8 or fp32)."),
        _ => requested,
    };

    public PagedKvCache CreateKvCache(KvCacheShape shape)
    {
        Context.MakeCurrent();
        if (shape.HeadDim % 4 != 0)
        {
            throw new ArgumentException($"The CUDA attention kernels need a head dimension that is a multiple of 4, not {shape.HeadDim}.", nameof(shape));
        }

        return new CudaKvCache(Context, shape with { Dtype = ResolveKvCacheDtype(shape.Dtype) });
    }

    public KvOffloadStore CreateKvOffloadStore(KvCacheShape shape, int slots)
    {
        Context.MakeCurrent();
        return new CudaKvOffloadStore(Context, shape with { Dtype = ResolveKvCacheDtype(shape.Dtype) }, slots);
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
    /// Captures what <paramref name="step"/> queues on <see cref="Stream"/> as a graph instead of running it, with the batch
    /// metadata uploads deferred: call <see cref="BeginBatch"/> with the replayed batch before each launch (as
    /// <see cref="CudaStepGraph"/> does). Run the same step eagerly once first, so that every buffer it addresses already has
    /// its final size.
    /// </summary>
    public CudaGraph CaptureStep(Func<DeviceTensor?> step, out DeviceTensor? result)
    {
        _deferBatchUploads = true;
        Stream.BeginCapture();
        try
        {
            result = step();
        }
        catch
        {
            // End the capture so the stream works again; the step's own error is the one to report.
            try
            {
                Stream.EndCapture().Dispose();
            }
            catch (CudaException)
            {
            }

            throw;
        }
        finally
        {
            _deferBatchUploads = false;
        }

        return Stream.EndCapture();
    }

    public void BeginBatch(ForwardBatch batch)
    {
        Context.MakeCurrent();
        _batch = batch;
        _layout = BatchMetadata.For(batch);
        if (!_deferBatchUploads)
        {
            UploadBatch(batch);
        }
    }

    /// <summary>Copies the batch's metadata, laid out as <see cref="_layout"/>, to the device (through pinned memory, asynchronously on <see cref="Stream"/>).</summary>
    private void UploadBatch(ForwardBatch batch)
    {
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
            _metadata?.Dispose();
            _metadata = new CudaDeviceBuffer<int>(Context, Math.Max(_layout.Length, 1024));
            StepBufferGeneration++;
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
        Kernels.EmbedRows.Launch(Stream, batch.TokenCount, CudaLaunchGeometry.EmbedThreads(t.Columns), 0,
            t.Codes, Pointer(t.Scales), Pointer(t.Mins), (int)t.Layout, t.ScalesPerBlock, t.CodeOffset, t.Columns, Meta(_layout.TokenIds), y.Data);
    }

    public void RmsNorm(DeviceTensor input, DeviceWeight weight, float epsilon, DeviceTensor output, int rows)
    {
        var x = Input(input);
        var w = NormWeight(weight, x);
        var y = Written(output);
        if (w.Columns == x.Columns)
        {
            var (codes, scaleSums) = FusedQuantization(y);
            var (halves, bf16) = FusedHalves(y);
            Kernels.RmsNormRows(x.Columns, OneItemNorms).Launch(Stream, rows, CudaLaunchGeometry.NormThreads(x.Columns), 0, x.Data, DevicePointer.Null, 0, DevicePointer.Null, w.Codes, epsilon, y.Data, x.Columns,
                codes, scaleSums, halves, bf16);
            FusedCopiesWritten(y, rows, codes, halves);
        }
        else
        {
            var groups = rows * (x.Columns / w.Columns);
            Kernels.RmsNormGroups.Launch(Stream, CudaLaunchGeometry.Ceiling(groups, 4), 128, 0, x.Data, w.Codes, epsilon, y.Data, groups, w.Columns);
        }
    }

    public void AddRmsNorm(DeviceTensor residual, DeviceTensor delta, DeviceWeight weight, float epsilon, DeviceTensor output, int rows) =>
        AddRmsNorm(residual, delta, null, weight, epsilon, output, rows);

    /// <summary>
    /// <see cref="AddRmsNorm(DeviceTensor, DeviceTensor, DeviceWeight, float, DeviceTensor, int)"/>, where
    /// <paramref name="deltaSplits"/> (a split-K GEMM that left its partials unsummed) has the norm kernel add them into
    /// <paramref name="delta"/> first.
    /// </summary>
    private void AddRmsNorm(DeviceTensor residual, DeviceTensor delta, UnsummedSplits? deltaSplits, DeviceWeight weight, float epsilon, DeviceTensor output, int rows)
    {
        var x = Updated(residual);
        var w = NormWeight(weight, x);
        if (w.Columns != x.Columns)
        {
            throw new ArgumentException($"AddRmsNorm needs a norm weight as wide as the row ({x.Columns}), not '{w.Name}' ({w.Columns}).", nameof(weight));
        }

        var y = Written(output);
        var (codes, scaleSums) = FusedQuantization(y);
        var (halves, bf16) = FusedHalves(y);
        var (deltaValues, splits, deltaSums) = deltaSplits is { } unsummed
            ? (unsummed.Partials, unsummed.Splits, ((CudaTensor)delta).Data.Pointer)
            : (Input(delta).Data.Pointer, 0, DevicePointer.Null);
        Kernels.RmsNormRows(x.Columns, OneItemNorms).Launch(Stream, rows, CudaLaunchGeometry.NormThreads(x.Columns), 0, x.Data, deltaValues, splits, deltaSums, w.Codes, epsilon, y.Data, x.Columns,
            codes, scaleSums, halves, bf16);
        FusedCopiesWritten(y, rows, codes, halves);
    }

    /// <summary>
    /// Where the norm or SiLU·mul kernel also writes its output's int8 copy (saving quantize_q8's launch before the quantized
    /// matmul that reads it): once a tensor has been quantized (its copy exists, so its consumer is a quantized weight) and
    /// its rows are whole 32-value blocks. Null pointers otherwise.
    /// </summary>
    private static (DevicePointer Codes, DevicePointer ScaleSums) FusedQuantization(CudaTensor output) =>
        output.HasQuantizedCopy && output.Columns % 32 == 0
            ? (output.QuantizedCodes.Pointer, output.QuantizedScaleSums.Pointer)
            : (DevicePointer.Null, DevicePointer.Null);

    /// <summary>
    /// Where the norm or SiLU·mul kernel also writes its output rounded to f16/bf16 (saving round_to_half's launch before the
    /// half GEMM that reads it): once the tensor has a half copy (its consumer is a half weight), in the type it had.
    /// </summary>
    private static (DevicePointer Halves, int BFloat16) FusedHalves(CudaTensor output) =>
        output.HalfVersion >= 0 ? (output.HalfCopy.Pointer, output.HalfIsBFloat16 ? 1 : 0) : (DevicePointer.Null, 0);

    private static void FusedCopiesWritten(CudaTensor output, int rows, DevicePointer codes, DevicePointer halves)
    {
        if (codes != DevicePointer.Null)
        {
            output.QuantizedVersion = output.Version;
            output.QuantizedRows = rows;
        }

        if (halves != DevicePointer.Null)
        {
            output.HalfVersion = output.Version;
            output.HalfRows = rows;
        }
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

    public void MatMul(DeviceTensor input, DeviceWeight weight, DeviceTensor output, int rows) =>
        MatMulGroup(input, [new MatMulTarget(weight, output)], rows);

    /// <summary>
    /// Folds the norm into the GEMVs around it where it can: one activation row and a weight with a producer GEMV
    /// (<see cref="CudaKernels.ResidualGemv"/>: nibble layouts). The producer adds its product to the residual in place and
    /// leaves, per 32 values, h·w (as floats, and as an int8 block where the output has an int8 copy) and Σh²; the output's
    /// values stay unfinished (<see cref="CudaTensor.PendingNorm"/>) and the one-row GEMV that reads it multiplies its sums
    /// by rsqrt(mean h² + ε). One launch where there were two, and no norm kernel between the GEMVs. Elsewhere the matmul
    /// and <see cref="AddRmsNorm"/>, as <see cref="IBackend"/> does.
    /// </summary>
    public void MatMulAddRmsNorm(DeviceTensor input, DeviceWeight weight, DeviceTensor product, DeviceTensor residual, DeviceWeight norm, float epsilon,
        DeviceTensor output, int rows)
    {
        var (x, w) = ((CudaTensor)input, (CudaWeight)weight);
        if (Kernels.ResidualGemv(w) is not { } producer || w.Rows % 32 != 0 || w.Rows != residual.Columns || w.Columns != x.Columns || x.PendingNorm is not null
            || FoldNorm(residual, norm, epsilon, output, rows) is not { } fold)
        {
            // A split-K GEMM leaves its partials to the norm kernel, which sums them into product (SplitSumsInNorm).
            var unsummed = MatMulGroup(input, [new MatMulTarget(weight, product)], rows, SplitSumsInNorm);
            AddRmsNorm(residual, product, unsummed, norm, epsilon, output, rows);
            return;
        }

        EnsureQuantized(x, rows);
        producer.Launch(Stream, w.Rows / 32, 512, 0,
            w.Codes, Pointer(w.Scales), Pointer(w.Mins), fold.Residual, w.Rows, w.CodeOffset, x.QuantizedCodes, x.QuantizedScaleSums, w.Columns,
            fold.NormWeight, fold.Values, fold.Codes, fold.ScaleSums, fold.Sums);
    }

    /// <summary>
    /// Makes <paramref name="output"/> the unfinished RMSNorm(residual)·norm of a folded norm and returns what its producer
    /// (the residual GEMV, or the all-reduce under tensor parallelism) writes, or null where the norm cannot be folded: more
    /// than one row, or a width not of whole 32-value blocks. The caller launches the producer next.
    /// </summary>
    internal FoldedNormOutputs? FoldNorm(DeviceTensor residual, DeviceWeight norm, float epsilon, DeviceTensor output, int rows)
    {
        var (h, y) = ((CudaTensor)residual, (CudaTensor)output);
        var w = NormWeight(norm, h);
        if (!FoldNorms || rows != 1 || h.Columns % 32 != 0 || y.Columns != h.Columns || w.Columns != h.Columns || ReferenceEquals(h, y))
        {
            return null;
        }

        Updated(h);
        Written(y);
        var (codes, scaleSums) = FusedQuantization(y);
        FusedCopiesWritten(y, rows, codes, DevicePointer.Null);
        y.PendingNorm = new PendingRmsNorm(h, h.Version, w, epsilon);
        return new FoldedNormOutputs(h.Data.Pointer, w.Codes.Pointer, y.Buffer.Pointer, codes, scaleSums, y.NormSums.Pointer);
    }

    /// <summary>
    /// Whether nibble weights (Q4_0, Q4_K) take the int8 tensor-core GEMM above 8 activation rows (the default: true) rather
    /// than the GEMV up to 32 rows and the dp4a GEMM beyond. GpuCheck times the dp4a path beside it.
    /// </summary>
    public bool NibbleTensorCoreGemm { get; set; } = true;

    private CudaKernel? TensorCoreGemm(CudaWeight weight) =>
        NibbleTensorCoreGemm || weight.Layout != CudaWeightLayout.Nibble ? Kernels.TensorCoreGemm(weight) : null;

    /// <summary>
    /// Whether attention_reduce and silu_mul let the next kernel in before their own wait (kernels/common.cuh, pdl_start), so
    /// that the GEMV after them streams its weights while attention or the gate/up GEMV still runs (the default: true).
    /// Beside it off (three H100s, batch 1, CUDA graphs, GpuCheck --shapes, 2026-11-28): Llama-3-8B Q4_0 +2.2 to +2.9 % at
    /// context 128 (536.8 against 525.6 tok/s: the attention output's weights arrive while attention runs on a few SMs),
    /// 0 % at 2,048; Q4_K +1.6 / +0.9 %; Q8_0 −0.9 / +0.7 %; Llama-3.2-1B BF16 +0.7 / +0.2 %. GpuCheck times the other
    /// setting beside it.
    /// </summary>
    public bool DependentsFirst { get; set; } = true;

    /// <summary>
    /// Whether rows of up to 4,096 values take the one-item norm kernel (<c>rms_norm_rows_1</c>, no spilled registers; the
    /// default: true) rather than the 4-item one. GpuCheck times the other beside it.
    /// </summary>
    public bool OneItemNorms { get; set; } = true;

    /// <summary>
    /// Whether to fold norms into the GEMVs around them (<see cref="MatMulAddRmsNorm"/>; the default: true). GpuCheck
    /// times and compares both side by side with it.
    /// </summary>
    public bool FoldNorms { get; set; } = true;

    /// <summary>
    /// One GEMV launch for the whole group when its weights share a kernel family and K, and every part but the last has
    /// whole warps of rows; otherwise each weight on its own (its own kernel, path and launch shape).
    /// </summary>
    public void MatMulGroup(DeviceTensor input, ReadOnlySpan<MatMulTarget> targets, int rows) =>
        MatMulGroup(input, targets, rows, leaveSplits: false);

    /// <summary>
    /// <see cref="MatMulGroup(DeviceTensor, ReadOnlySpan{MatMulTarget}, int)"/>; with <paramref name="leaveSplits"/>, a single
    /// target's split-K GEMM launches no sum_splits and returns its partials for the kernel that reads the product.
    /// </summary>
    private UnsummedSplits? MatMulGroup(DeviceTensor input, ReadOnlySpan<MatMulTarget> targets, int rows, bool leaveSplits)
    {
        var x = (CudaTensor)input;
        leaveSplits &= targets.Length == 1;
        CheckMatMulTargets(x, targets, rows);

        var first = (CudaWeight)targets[0].Weight;
        var gemv = CudaLaunchGeometry.UseGemv(rows, first.IsQuantized, TensorCoreGemm(first) is not null);
        if (x.PendingNorm is not null && !(gemv && rows == 1))
        {
            Input(x);  // only the one-row GEMV finishes a folded norm
        }

        var weightRows = 0;
        foreach (var target in targets)
        {
            weightRows += target.Weight.Rows;
        }

        var shape = gemv ? CudaLaunchGeometry.Gemv(rows, first.Layout, GemvSplitOverride, weightRows) : default;
        if (!gemv && GroupedWarpgroupGemmTile(targets, rows) is { } tile)
        {
            return WarpgroupGemm(x, targets, rows, tile, leaveSplits);
        }

        if (targets.Length > 1 && !SharesLaunch(targets, gemv, shape.RowsPerWarp))
        {
            foreach (var target in targets)
            {
                MatMulGroup(input, [target], rows);
            }

            return null;
        }

        if (first.IsQuantized)
        {
            EnsureQuantized(x, rows);
        }

        if (gemv)
        {
            Gemv(x, targets, rows, shape, weightRows);
            return null;
        }

        UnsummedSplits? unsummed = null;
        foreach (var target in targets)
        {
            unsummed = Gemm(x, (CudaWeight)target.Weight, Written(target.Output), rows, leaveSplits);
        }

        return unsummed;
    }

    /// <summary>Throws unless every target's weight reads <paramref name="x"/>'s columns into its output's, K a multiple of 32.</summary>
    private static void CheckMatMulTargets(CudaTensor x, ReadOnlySpan<MatMulTarget> targets, int rows)
    {
        foreach (var target in targets)
        {
            var w = (CudaWeight)target.Weight;
            var output = target.Output;
            if (x.Columns != w.Columns || output.Columns != w.Rows || rows > x.Rows || rows > output.Rows)
            {
                throw new ArgumentException($"MatMul '{w.Name}': input [{rows} × {x.Columns}] · weight [{w.Rows} × {w.Columns}]ᵀ into [{output.Rows} × {output.Columns}].");
            }

            if (w.Columns % 32 != 0)
            {
                throw new ArgumentException($"MatMul '{w.Name}': the CUDA kernels need K to be a multiple of 32, not {w.Columns}.");
            }
        }
    }

    /// <summary>
    /// The Hopper GEMM's tile width for a group in one launch (q/k/v at a prefill or a large batch: the 1024-wide k and v
    /// products alone split K 8 ways at 256 rows), or null: every weight the same half type and K, the Hopper GEMM taking
    /// the product, and every part but the last a whole number of tiles.
    /// </summary>
    private WarpgroupTile? GroupedWarpgroupGemmTile(ReadOnlySpan<MatMulTarget> targets, int rows)
    {
        if (targets.Length < 2 || targets.Length > CudaLaunchGeometry.MaxGemvParts)
        {
            return null;
        }

        var first = (CudaWeight)targets[0].Weight;
        var total = 0;
        foreach (var target in targets)
        {
            var w = (CudaWeight)target.Weight;
            if (w.Layout != first.Layout || w.Columns != first.Columns)
            {
                return null;
            }

            total += w.Rows;
        }

        if (first.Layout is not (CudaWeightLayout.Float16 or CudaWeightLayout.BFloat16) || WarpgroupGemmTile(rows, first, total) is not { } tile)
        {
            return null;
        }

        for (var i = 0; i < targets.Length - 1; i++)
        {
            if (targets[i].Weight.Rows % tile.WeightRows != 0)
            {
                return null;
            }
        }

        return tile;
    }

    /// <summary>
    /// One Hopper GEMM launch over the parts (one weight, or a group: gemm_hopper.cu), then each part's split sums — or, for
    /// one part and <paramref name="leaveSplits"/>, its partials returned unsummed.
    /// </summary>
    private UnsummedSplits? WarpgroupGemm(CudaTensor x, ReadOnlySpan<MatMulTarget> parts, int rows, WarpgroupTile tile, bool leaveSplits)
    {
        var first = (CudaWeight)parts[0].Weight;
        var halves = EnsureHalf(x, rows, first.Layout == CudaWeightLayout.BFloat16);
        // gemm_hopper.cu's parameters: tensor maps of w0, w1, w2 and x (a missing part's map unused), then y0–y2, n0–n2,
        // partial, k, m.
        Span<CudaTensorMap> maps = stackalloc CudaTensorMap[CudaLaunchGeometry.MaxGemvParts + 1];
        Span<KernelArg> args = stackalloc KernelArg[9];
        var total = 0;
        for (var i = 0; i < CudaLaunchGeometry.MaxGemvParts; i++)
        {
            var part = i < parts.Length ? parts[i] : default;
            if (part.Weight is CudaWeight w)
            {
                maps[i] = w.HalfTensorMap;
            }

            args[i] = part.Output is { } output ? Written(output).Data.Pointer : DevicePointer.Null;
            args[3 + i] = part.Weight?.Rows ?? 0;
            total += part.Weight?.Rows ?? 0;
        }

        var splits = CudaLaunchGeometry.WarpgroupGemmSplits(rows, total, first.Columns, Context.MultiprocessorCount, tile);
        var partial = SplitPartials(splits, rows, total);
        maps[CudaLaunchGeometry.MaxGemvParts] = first.HalfTensorMapOf(halves.Pointer, rows);
        args[6] = partial;
        args[7] = first.Columns;
        args[8] = rows;
        var tiles = new Dim3((uint)CudaLaunchGeometry.Ceiling(rows, tile.ActivationRows), (uint)CudaLaunchGeometry.Ceiling(total, tile.WeightRows), (uint)splits);
        Kernels.WarpgroupGemm(first, tile).Launch(Stream, tiles, tile.Threads, tile.SharedBytes, maps, args);
        if (parts.Length == 1)
        {
            return SumOrLeaveSplits(partial, (CudaTensor)parts[0].Output, splits, rows, total, leaveSplits);
        }

        if (splits > 1)
        {
            // Every part's partials summed in one launch (sum_splits takes up to three outputs).
            (CudaTensor?, long) Part(ReadOnlySpan<MatMulTarget> group, int i) =>
                i < group.Length ? ((CudaTensor)group[i].Output, (long)rows * group[i].Weight.Rows) : (null, 0);
            LaunchSumSplits(partial, splits, Part(parts, 0), Part(parts, 1), Part(parts, 2));
        }

        return null;
    }

    private static bool SharesLaunch(ReadOnlySpan<MatMulTarget> targets, bool gemv, int rowsPerWarp)
    {
        if (!gemv || targets.Length > CudaLaunchGeometry.MaxGemvParts)
        {
            return false;
        }

        // On the stack (an inline array): this runs twice a layer every step.
        ReadOnlySpan<(string Family, int Rows)> parts =
        [
            Part(targets, 0), targets.Length > 1 ? Part(targets, 1) : default, targets.Length > 2 ? Part(targets, 2) : default,
        ];
        return CudaLaunchGeometry.CanShareGemvLaunch(parts[..targets.Length], rowsPerWarp);

        static (string, int) Part(ReadOnlySpan<MatMulTarget> targets, int i) =>
            (CudaKernels.GemvFamily((CudaWeight)targets[i].Weight), targets[i].Weight.Rows);
    }

    /// <summary>
    /// One GEMV launch over the parts: the kernel of the weight's family and shape, or <paramref name="kernel"/> (an entry
    /// with the same parameters, such as the gated split).
    /// </summary>
    private void Gemv(CudaTensor x, ReadOnlySpan<MatMulTarget> parts, int rows, GemvShape shape, int weightRows, GemvRopeArgs? rope = null,
        CudaKernel? kernel = null)
    {
        Span<KernelArg> args = stackalloc KernelArg[5 * CudaLaunchGeometry.MaxGemvParts + 7 + GemvRopeArgs.Count];
        var first = (CudaWeight)parts[0].Weight;
        for (var i = 0; i < CudaLaunchGeometry.MaxGemvParts; i++)
        {
            if (i < parts.Length)
            {
                var w = (CudaWeight)parts[i].Weight;
                args[5 * i] = w.Codes.Pointer;
                args[5 * i + 1] = Pointer(w.Scales);
                args[5 * i + 2] = Pointer(w.Mins);
                args[5 * i + 3] = Written(parts[i].Output).Data.Pointer;
                args[5 * i + 4] = w.Rows;
            }
            else
            {
                args[5 * i] = args[5 * i + 1] = args[5 * i + 2] = args[5 * i + 3] = DevicePointer.Null;
                args[5 * i + 4] = 0;
            }
        }

        var a = 5 * CudaLaunchGeometry.MaxGemvParts;
        if (first.IsQuantized)
        {
            args[a++] = first.CodeOffset;
            args[a++] = x.QuantizedCodes.Pointer;
            args[a++] = x.QuantizedScaleSums.Pointer;
        }
        else
        {
            args[a++] = x.Buffer.Pointer;  // h·w where a folded norm is pending (finished below)
        }

        args[a++] = first.Columns;
        args[a++] = rows;
        // The consumer's side of a folded norm (MatMulAddRmsNorm): the producer's Σh², or none.
        args[a++] = x.PendingNorm is null ? DevicePointer.Null : x.NormSums.Pointer;
        args[a++] = x.PendingNorm?.Epsilon ?? 0f;

        if (rope is { } rotation)
        {
            args[a++] = rotation.Cos;
            args[a++] = rotation.Sin;
            args[a++] = rotation.Position;
            args[a++] = rotation.Slot;
            args[a++] = rotation.Keys;
            args[a++] = rotation.Values;
            args[a++] = rotation.HeadDim;
        }

        var grid = CudaLaunchGeometry.GemvGrid(weightRows, shape);
        var threads = CudaLaunchGeometry.GemvWarps * 32;
        var sharedBytes = 0;
        if (shape.SplitK && kernel is null && rope is null && StridedSplitGemvs && Kernels.StridedGemv(first) is { } strided
            && CudaLaunchGeometry.StridedGemvGrid(grid, first.Layout, first.Columns, Context.MultiprocessorCount, strided.NaturalResidentBlocks(threads)) is { } wave)
        {
            kernel = strided;
            grid = wave;
            StridedGemvLaunches++;
        }
        else
        {
            kernel ??= rope is null ? Kernels.Gemv(first, shape) : Kernels.GemvRope(first);
            if (shape.SplitK && GemvSplitBlocksPerMultiprocessor?.Invoke(weightRows, first.Columns) is { } asked)
            {
                sharedBytes = SharedBytesForBlocks(kernel, asked);
            }
            else if (shape.SplitK && SpreadSplitGemvs
                     && CudaLaunchGeometry.SplitGemvBlocksPerMultiprocessor(grid, Context.MultiprocessorCount, kernel.NaturalResidentBlocks(threads)) is { } spread)
            {
                sharedBytes = kernel.SharedBytesHolding(threads, spread, _sharedBytesForBlocks);
            }
        }

        kernel.Launch(Stream, grid, threads, sharedBytes, args[..a]);
    }

    /// <summary>y = x · wᵀ on the GEMM that takes w; a split-K one's partials returned unsummed where <paramref name="leaveSplits"/>.</summary>
    private UnsummedSplits? Gemm(CudaTensor x, CudaWeight w, CudaTensor y, int rows, bool leaveSplits)
    {
        if (TensorCoreGemm(w) is { } tensorCore)
        {
            var tile = CudaLaunchGeometry.TensorCoreGemmTile;
            var splits = CudaLaunchGeometry.TensorCoreSplits(rows, w.Rows, w.Columns, Context.MultiprocessorCount);
            var partial = SplitPartials(splits, rows, w.Rows);
            tensorCore.Launch(Stream, new Dim3((uint)CudaLaunchGeometry.Ceiling(w.Rows, tile), (uint)CudaLaunchGeometry.Ceiling(rows, tile), (uint)splits), 128, 0,
                w.Codes, Pointer(w.Scales), Pointer(w.Mins), w.CodeOffset, x.QuantizedCodes, x.QuantizedScaleSums, y.Data, partial, w.Rows, w.Columns, rows);
            return SumOrLeaveSplits(partial, y, splits, rows, w.Rows, leaveSplits);
        }

        if (w.Layout is CudaWeightLayout.Float16 or CudaWeightLayout.BFloat16)
        {
            if (WarpgroupGemmTile(rows, w, w.Rows) is { } warpgroupTile)
            {
                return WarpgroupGemm(x, [new MatMulTarget(w, y)], rows, warpgroupTile, leaveSplits);
            }

            var halves = EnsureHalf(x, rows, w.Layout == CudaWeightLayout.BFloat16);
            var tileRows = HalfGemmTileRowsOverride ?? CudaLaunchGeometry.HalfGemmRows(rows);
            var splits = CudaLaunchGeometry.HalfGemmSplits(rows, w.Rows, w.Columns, Context.MultiprocessorCount);
            var partial = SplitPartials(splits, rows, w.Rows);
            var blocks = new Dim3((uint)CudaLaunchGeometry.Ceiling(w.Rows, CudaLaunchGeometry.HalfGemmWeightRows), (uint)CudaLaunchGeometry.Ceiling(rows, tileRows), (uint)splits);
            Kernels.HalfGemm(w, tileRows).Launch(Stream, blocks, 256, CudaLaunchGeometry.HalfGemmSharedBytes(tileRows),
                w.Codes, halves, y.Data, partial, w.Rows, w.Columns, rows);
            return SumOrLeaveSplits(partial, y, splits, rows, w.Rows, leaveSplits);
        }

        var (gx, gy) = CudaLaunchGeometry.GemmGrid(rows, w.Rows);
        var grid = new Dim3((uint)gx, (uint)gy);
        if (w.IsQuantized)
        {
            Kernels.Gemm(w).Launch(Stream, grid, 256, 0,
                w.Codes, Pointer(w.Scales), Pointer(w.Mins), w.CodeOffset, x.QuantizedCodes, x.QuantizedScaleSums, y.Data, w.Rows, w.Columns, rows);
        }
        else
        {
            Kernels.Gemm(w).Launch(Stream, grid, 256, 0, w.Codes, x.Data, y.Data, w.Rows, w.Columns, rows);
        }

        return null;
    }

    /// <summary>
    /// How decode attention splits contexts across blocks; null (the default) takes the kernel's own policy,
    /// <see cref="AttentionSplitPolicy.TensorCore"/> or <see cref="AttentionSplitPolicy.Default"/>. GpuCheck times policies
    /// side by side with it.
    /// </summary>
    public AttentionSplitPolicy? AttentionPolicy { get; set; }

    /// <summary>The split policy decode attention over <paramref name="kv"/> takes for query heads in groups of <paramref name="group"/>.</summary>
    private AttentionSplitPolicy DecodeAttentionPolicy(CudaKvCache kv, int group) =>
        AttentionPolicy ?? (!DecodeTensorCores(kv, group) ? AttentionSplitPolicy.Default
            : kv.IsFp8 ? AttentionSplitPolicy.TensorCoreFp8 : AttentionSplitPolicy.TensorCore);

    /// <summary>Whether decode attention over <paramref name="kv"/> takes the tensor-core kernel: an f16 or fp8 cache, every head dimension it serves.</summary>
    private static bool DecodeTensorCores(CudaKvCache kv, int group) =>
        (kv.IsHalf || kv.IsFp8) && CudaLaunchGeometry.DecodeTensorCoreSupports(group, kv.Shape.HeadDim);

    /// <summary>
    /// Forces the one-row GEMVs' split variant on (true) or off (false) for every shape: GpuCheck times both side by side
    /// with it. Null: split but where the weight is wide (<see cref="CudaLaunchGeometry.Gemv"/>, the default).
    /// </summary>
    public bool? GemvSplitOverride { get; set; }

    /// <summary>
    /// Holds a one-row split GEMV launch to the resident blocks an SM this returns for its shape (the launch's weight rows,
    /// K), by asking for dynamic shared memory it does not use (<see cref="CudaLaunchGeometry.SharedBytesForBlocksPerMultiprocessor"/>);
    /// a null result, or null here (the default), leaves the launch to <see cref="SpreadSplitGemvs"/> and its registers.
    /// GpuCheck sweeps counts for every shape and times counts for single shapes beside the default.
    /// </summary>
    public Func<int, int, int?>? GemvSplitBlocksPerMultiprocessor { get; set; }

    /// <summary>
    /// Whether a one-row split GEMV whose grid is at most half a wave is held to as few resident blocks an SM as take it at once
    /// (<see cref="CudaLaunchGeometry.SplitGemvBlocksPerMultiprocessor"/>), so that it is spread over every SM (the
    /// default: true). GpuCheck times the other beside it.
    /// </summary>
    public bool SpreadSplitGemvs { get; set; } = true;

    /// <summary>
    /// Whether a one-row split GEMV over weights with one f16 scale a block (Q8_0, Q5_0, Q4_0) that would take more than a
    /// wave of blocks runs as one wave of the strided kernel (<c>_m1_split_strided</c>: each block takes every grid-th group
    /// of rows, the next pass's weights in flight while it works one; <see cref="CudaLaunchGeometry.StridedGemvGrid"/>). On
    /// by default; GpuCheck times the plain split beside it. Measured on an H200 (2026-11-28, docs/performance.md, "The
    /// strided split GEMV"): Llama-3-8B at batch 1, Q8_0 409.6 against 391.8 tok/s, Q4_0 645.3 against 628.8.
    /// </summary>
    public bool StridedSplitGemvs { get; set; } = true;

    /// <summary>
    /// Strided split GEMV launches the host has made, a captured graph's counted once (GpuCheck's checks and timings tell by
    /// it which kernel ran).
    /// </summary>
    public long StridedGemvLaunches { get; private set; }

    /// <summary><see cref="SharedBytesForBlocks"/> as one delegate, so that a held launch allocates none.</summary>
    private readonly Func<CudaKernel, int, int> _sharedBytesForBlocks;

    /// <summary>The dynamic shared memory that holds <paramref name="kernel"/> (of <see cref="CudaLaunchGeometry.GemvWarps"/> warps) to <paramref name="blocks"/> resident blocks an SM.</summary>
    public int SharedBytesForBlocks(CudaKernel kernel, int blocks)
    {
        var bytes = CudaLaunchGeometry.SharedBytesForBlocksPerMultiprocessor(blocks, Context.Attribute(CudaDeviceAttribute.MaxSharedMemoryPerMultiprocessor),
            Context.Attribute(CudaDeviceAttribute.ReservedSharedMemoryPerBlock), kernel.Attribute(CudaFunctionAttribute.SharedSizeBytes))
            ?? throw new InvalidOperationException($"{blocks} blocks an SM cannot be set by shared memory for {kernel.Name}.");
        if (bytes > CudaLaunchGeometry.DefaultDynamicSharedLimit)
        {
            kernel.SetMaxDynamicSharedMemory(bytes);
        }

        return bytes;
    }

    /// <summary>
    /// Forces one gemm_half_tc variant (activation rows per tile, one of <see cref="CudaLaunchGeometry.HalfGemmTileRows"/>)
    /// for every F16/BF16 GEMM: GpuCheck times the variants side by side with it. Null: by the batch (the default).
    /// </summary>
    public int? HalfGemmTileRowsOverride { get; set; }

    /// <summary>
    /// Forces the Hopper (wgmma) F16/BF16 GEMM's tile (one of <see cref="CudaLaunchGeometry.WarpgroupGemmTiles"/>) for every
    /// GEMM it can take, or <see cref="WarpgroupTile.None"/> to keep it off (gemm_half_tc); GpuCheck times and checks them
    /// side by side with it. Null: <see cref="CudaLaunchGeometry.UseWarpgroupGemm"/> and
    /// <see cref="CudaLaunchGeometry.WarpgroupGemmTile"/> decide.
    /// </summary>
    public WarpgroupTile? WarpgroupGemmOverride { get; set; }

    /// <summary>The Hopper GEMM's tile for <paramref name="outputs"/> weight rows of K = w's, or null where gemm_half_tc takes it.</summary>
    private WarpgroupTile? WarpgroupGemmTile(int rows, CudaWeight w, int outputs)
    {
        if (!Kernels.HasWarpgroupGemm || w.Columns % CudaLaunchGeometry.WarpgroupGemmStageColumns != 0 || WarpgroupGemmOverride == WarpgroupTile.None)
        {
            return null;
        }

        return WarpgroupGemmOverride
            ?? (CudaLaunchGeometry.UseWarpgroupGemm(rows, w.Columns)
                ? CudaLaunchGeometry.WarpgroupGemmTile(rows, outputs, Context.MultiprocessorCount, WarpgroupGemm256RowTiles)
                : null);
    }

    /// <summary>
    /// Whether the Hopper GEMM takes 256 × 128 tiles where <see cref="CudaLaunchGeometry.WarpgroupGemmTile"/> picks them
    /// (the default: true), rather than the 128 × 128 ones before them; GpuCheck times the other setting beside it.
    /// </summary>
    public bool WarpgroupGemm256RowTiles { get; set; } = true;

    /// <summary>The activations rounded to the half weight's type (once per value and type, like the int8 copy).</summary>
    private CudaDeviceBuffer<ushort> EnsureHalf(CudaTensor x, int rows, bool bfloat16)
    {
        if (x.HalfVersion != x.Version || x.HalfRows < rows || x.HalfIsBFloat16 != bfloat16)
        {
            var count = (long)rows * x.Columns;
            Kernels.RoundToHalf.Launch(Stream, (int)CudaLaunchGeometry.Ceiling(count, 8 * 256), 256, 0, x.Data, x.HalfCopy, count, bfloat16 ? 1 : 0);
            x.HalfVersion = x.Version;
            x.HalfRows = rows;
            x.HalfIsBFloat16 = bfloat16;
        }

        return x.HalfCopy;
    }

    /// <summary>
    /// Where a split-K GEMM of <paramref name="rows"/> × <paramref name="outputs"/> writes its partial sums ([splits][rows]
    /// [outputs]; null for one split, which writes y directly). One workspace grown to the largest step seen: a captured
    /// graph replays a step of a size already run eagerly, so the buffer it addresses stays put.
    /// </summary>
    private DevicePointer SplitPartials(int splits, int rows, int outputs)
    {
        if (splits == 1)
        {
            return DevicePointer.Null;
        }

        EnsureStepCapacity(ref _splitWorkspace, (long)splits * rows * outputs);
        return _splitWorkspace!.Pointer;
    }

    /// <summary>
    /// Whether MatMulAddRmsNorm's split-K GEMM leaves its partials to the norm kernel after it (rms_norm_rows adds them in
    /// split order and writes the product, bit for bit what sum_splits writes; the default: true) rather than a sum_splits
    /// launch between the two: two launches a layer fewer in every split batch. Beside it off (Llama-3-8B, eager, H100,
    /// 2026-11-28): BF16 batch 32 +0.3 %, batch 256 +0.3 %; Q4_0 +0.6 % / +1.1 %. GpuCheck checks the bits and times the
    /// other setting beside it.
    /// </summary>
    public bool SplitSumsInNorm { get; set; } = true;

    /// <summary>
    /// <see cref="SumSplits(DevicePointer, CudaTensor, int, int, int)"/>, or, with <paramref name="leave"/>, the partials
    /// returned for the kernel that reads y (null where there is nothing to sum or they were summed).
    /// </summary>
    private UnsummedSplits? SumOrLeaveSplits(DevicePointer partial, CudaTensor y, int splits, int rows, int outputs, bool leave)
    {
        if (splits > 1 && leave)
        {
            return new UnsummedSplits(partial, splits);
        }

        SumSplits(partial, y, splits, rows, outputs);
        return null;
    }

    /// <summary>y = the split-K partials summed in split order (deterministic); nothing for one split.</summary>
    private void SumSplits(DevicePointer partial, CudaTensor y, int splits, int rows, int outputs)
    {
        if (splits > 1)
        {
            LaunchSumSplits(partial, splits, (y, (long)rows * outputs), default, default);
        }
    }

    /// <summary>sum_splits over up to three outputs whose partials lie one after the other (matmul.cu).</summary>
    private void LaunchSumSplits(DevicePointer partial, int splits, (CudaTensor? Y, long Count) a, (CudaTensor? Y, long Count) b, (CudaTensor? Y, long Count) c)
    {
        var quads = CudaLaunchGeometry.Ceiling(a.Count, 4) + CudaLaunchGeometry.Ceiling(b.Count, 4) + CudaLaunchGeometry.Ceiling(c.Count, 4);
        Kernels.SumSplits.Launch(Stream, (int)CudaLaunchGeometry.Ceiling(quads, 256), 256, 0, partial, splits,
            a.Y?.Data.Pointer ?? DevicePointer.Null, b.Y?.Data.Pointer ?? DevicePointer.Null, c.Y?.Data.Pointer ?? DevicePointer.Null,
            a.Count, b.Count, c.Count);
    }

    private void EnsureQuantized(CudaTensor x, int rows)
    {
        if (x.QuantizedVersion == x.Version && x.QuantizedRows >= rows)
        {
            return;
        }

        var blocks = (long)rows * (x.Columns / 32);
        // Where a norm is pending, the codes of h·w: the GEMV that reads them finishes the norm.
        Kernels.QuantizeQ8.Launch(Stream, (int)CudaLaunchGeometry.Ceiling(blocks, 8), 256, 0, x.Buffer, x.QuantizedCodes, x.QuantizedScaleSums, blocks);
        x.QuantizedVersion = x.Version;
        x.QuantizedRows = rows;
    }

    public void AddBias(DeviceTensor tensor, DeviceWeight bias, int rows)
    {
        var x = Updated(tensor);
        var b = (CudaWeight)bias;
        if (b.Columns != x.Columns || b.Layout != CudaWeightLayout.Float32)
        {
            throw new ArgumentException($"Bias '{b.Name}' ({b.Columns}) does not match rows of {x.Columns}.", nameof(bias));
        }

        var n = (long)rows * x.Columns;
        Kernels.AddBias.Launch(Stream, (int)CudaLaunchGeometry.Ceiling(n, 256), 256, 0, x.Data, b.Codes, x.Columns, n);
    }

    /// <summary>
    /// q/k/v, rotated and stored, in the projections' one launch where it can (<see cref="RopeInProjections"/>): one token,
    /// one split GEMV over the three weights (<see cref="CudaLaunchGeometry.Gemv"/>), adjacent-pair RoPE, an f16 cache, and
    /// parts of whole heads whose rotation pairs a block's rows hold whole (matmul.cu's GemvRope; the arithmetic of
    /// rope_store_kv_f16, so the same bits). Elsewhere <see cref="MatMulGroup"/> then <see cref="RopeAndStoreKv"/>, as
    /// IBackend does.
    /// </summary>
    public void ProjectQueryKeyValue(DeviceTensor input, ReadOnlySpan<MatMulTarget> targets, int rows, RotaryEmbedding rope, PagedKvCache cache, int layer)
    {
        var (x, kv, r) = ((CudaTensor)input, (CudaKvCache)cache, (CudaRotaryEmbedding)rope);
        if (RopeInProjectionsShape(targets, rows, r, kv) is not { } shape)
        {
            MatMulGroup(input, targets, rows);
            RopeAndStoreKv(targets[0].Output, targets[1].Output, targets[2].Output, rope, cache, layer, null);
            return;
        }

        CheckMatMulTargets(x, targets, rows);
        CheckRopeBatch(r, kv);
        var first = (CudaWeight)targets[0].Weight;
        if (first.IsQuantized)
        {
            EnsureQuantized(x, rows);
        }

        var weightRows = targets[0].Weight.Rows + targets[1].Weight.Rows + targets[2].Weight.Rows;
        Gemv(x, targets, rows, shape, weightRows,
            new GemvRopeArgs(r.Cos.Pointer, r.Sin.Pointer, Meta(_layout.Positions), Meta(_layout.Slots), kv.Keys(layer).Pointer, kv.Values(layer).Pointer, r.Spec.HeadDim));
    }

    /// <summary>The one-row split GEMV shape that rotates and stores q/k/v in its epilogue, or null where it cannot.</summary>
    private GemvShape? RopeInProjectionsShape(ReadOnlySpan<MatMulTarget> targets, int rows, CudaRotaryEmbedding rope, CudaKvCache kv)
    {
        if (!RopeInProjections || rows != 1 || Batch.TokenCount != 1 || targets.Length != 3 || !kv.IsHalf || rope.Spec.Style != RopeStyle.AdjacentPairs)
        {
            return null;
        }

        var first = (CudaWeight)targets[0].Weight;
        if (!CudaLaunchGeometry.UseGemv(rows, first.IsQuantized, TensorCoreGemm(first) is not null))
        {
            return null;
        }

        var shape = CudaLaunchGeometry.Gemv(rows, first.Layout, GemvSplitOverride);
        var headDim = rope.Spec.HeadDim;
        if (!shape.SplitK || !SharesLaunch(targets, gemv: true, shape.RowsPerWarp) || headDim % shape.RowsPerBlock != 0
            || kv.Shape.KvHeads * kv.Shape.HeadDim != targets[1].Weight.Rows || targets[2].Weight.Rows != targets[1].Weight.Rows
            || kv.Shape.HeadDim != headDim)
        {
            return null;
        }

        foreach (var target in targets)
        {
            if (target.Weight.Rows % headDim != 0)
            {
                return null;
            }
        }

        return shape;
    }

    /// <summary>
    /// Whether q/k/v are rotated and stored in the projections' launch where they can be (<see cref="ProjectQueryKeyValue"/>;
    /// the default: true). GpuCheck times and compares both side by side with it.
    /// </summary>
    public bool RopeInProjections { get; set; } = true;

    /// <summary>
    /// Whether decode attention on tensor cores copies the keys and values of earlier steps before waiting for the q/k/v
    /// GEMV (a decode-only step; attention.cu's earlyKv; the default: true). GpuCheck times and compares both side by side.
    /// </summary>
    public bool EarlyDecodeKv { get; set; } = true;

    public void RopeAndStoreKv(DeviceTensor query, DeviceTensor key, DeviceTensor value, RotaryEmbedding rope, PagedKvCache cache, int layer, HeadNorms? norms)
    {
        var batch = Batch;
        var kv = (CudaKvCache)cache;
        var r = (CudaRotaryEmbedding)rope;
        CheckRopeBatch(r, kv);

        var headDim = r.Spec.HeadDim;
        // The per-head norms ride in the rotation's launch where a block holds whole heads; elsewhere they run first.
        var (queryNorm, keyNorm, epsilon) = (DevicePointer.Null, DevicePointer.Null, 0f);
        if (norms is { } n)
        {
            if (CudaLaunchGeometry.RopeFusesHeadNorms(headDim) && ((CudaWeight)n.Query).Columns == headDim && ((CudaWeight)n.Key).Columns == headDim)
            {
                (queryNorm, keyNorm, epsilon) = (NormWeight(n.Query, (CudaTensor)query).Codes.Pointer, NormWeight(n.Key, (CudaTensor)key).Codes.Pointer, n.Epsilon);
            }
            else
            {
                RmsNorm(query, n.Query, n.Epsilon, query, batch.TokenCount);
                RmsNorm(key, n.Key, n.Epsilon, key, batch.TokenCount);
            }
        }

        var q = Updated(query);
        var k = Updated(key);
        Kernels.RopeStoreKvFor(kv).Launch(Stream, new Dim3((uint)batch.TokenCount, (uint)CudaLaunchGeometry.RopeBlocksPerToken(q.Columns / headDim, k.Columns / headDim, headDim)),
            CudaLaunchGeometry.RopeThreads, 0,
            q.Data, k.Data, Input(value).Data, r.Cos, r.Sin, Meta(_layout.Positions), Meta(_layout.Slots),
            kv.Keys(layer), kv.Values(layer), q.Columns / headDim, k.Columns / headDim, headDim, r.Spec.Style == RopeStyle.NeoX ? 1 : 0,
            queryNorm, keyNorm, epsilon);
    }

    /// <summary>Throws unless every batch token's slot lies in the cache and its position in the RoPE table.</summary>
    private void CheckRopeBatch(CudaRotaryEmbedding rope, CudaKvCache kv)
    {
        var batch = Batch;
        foreach (var slot in batch.Slots)
        {
            if (slot >= kv.Shape.SlotCount)
            {
                throw new ArgumentOutOfRangeException(nameof(kv), slot, $"Slot {slot} is outside the KV cache of {kv.Shape.SlotCount} slots.");
            }
        }

        foreach (var position in batch.Positions)
        {
            if (position >= rope.Spec.MaxPositions)
            {
                throw new ArgumentOutOfRangeException(nameof(rope), position, $"RoPE table covers positions below {rope.Spec.MaxPositions}.");
            }
        }
    }

    public void PagedAttention(DeviceTensor query, PagedKvCache cache, int layer, DeviceTensor output)
    {
        var batch = Batch;
        var kv = (CudaKvCache)cache;
        var q = Input(query);
        var y = Written(output);
        var shape = kv.Shape;
        var heads = q.Columns / shape.HeadDim;
        var group = heads / shape.KvHeads;
        if (!CudaLaunchGeometry.AttentionSupports(group, shape.HeadDim, kv.ElementBytes))
        {
            throw new InvalidOperationException($"The CUDA attention kernel serves up to {CudaLaunchGeometry.AttentionMaxGroup} query heads per KV head and head dimensions up to {CudaLaunchGeometry.AttentionMaxHeadDim} (a multiple of 4 over a float32 KV cache, of 8 over an f16 one, of 16 over an fp8 one), not {group} heads of {shape.HeadDim} over {shape.Dtype.Name()}.");
        }

        if (batch.MaxContextLength > shape.SlotCount)
        {
            throw new InvalidOperationException($"A context of {batch.MaxContextLength} positions exceeds the KV cache of {shape.SlotCount} slots.");
        }

        var scaleLog2 = CudaLaunchGeometry.AttentionScaleLog2(shape.HeadDim);
        // Prefill runs take the tensor-core kernel where it serves the head dimension; every other token (all of a decode
        // batch, which has no query tiles and so launches exactly what it did before attention_prefill existed) takes
        // attention_partition, through the token list where the batch mixes both.
        var prefill = _layout.QueryTileCount > 0 && CudaLaunchGeometry.PrefillSupports(shape.HeadDim);
        if (prefill)
        {
            Kernels.AttentionPrefillFor(kv).Launch(Stream, new Dim3((uint)_layout.QueryTileCount, (uint)heads), CudaLaunchGeometry.PrefillThreads,
                kv.IsHalf || kv.IsFp8 ? CudaLaunchGeometry.PrefillCpAsyncSharedBytes(shape.HeadDim, kv.ElementBytes) : CudaLaunchGeometry.PrefillSharedBytes(shape.HeadDim),
                q.Data, kv.Keys(layer), kv.Values(layer), Meta(_layout.BlockTables), Meta(_layout.Sequences), Meta(_layout.Positions),
                Meta(_layout.QueryTiles), y.Data, _layout.QueryTileCount, heads, shape.KvHeads, shape.HeadDim, shape.BlockSize,
                batch.MaxBlocksPerSequence, scaleLog2);
        }

        var (tokens, maxContext, tokenList) = prefill
            ? (_layout.RestTokenCount, _layout.RestMaxContext, Meta(_layout.RestTokens))
            : (batch.TokenCount, batch.MaxContextLength, DevicePointer.Null);
        if (tokens == 0)
        {
            return;
        }

        var tensorCores = DecodeTensorCores(kv, group);
        var (partition, splits) = CudaLaunchGeometry.AttentionSplit(tokens, shape.KvHeads, maxContext, Context.MultiprocessorCount,
            DecodeAttentionPolicy(kv, group));
        if (splits > 1)
        {
            // Indexed by the token's place in the batch (the kernels write partials of token t at t, list or not).
            EnsureStepCapacity(ref _attentionPartials, (long)batch.TokenCount * heads * splits * shape.HeadDim);
            EnsureStepCapacity(ref _attentionStats, (long)batch.TokenCount * heads * splits * 2);
        }

        // The tensor-core kernels take one argument more: whether partitions below the token's own position may be copied
        // before the wait (EarlyDecodeKv, a decode-only step).
        ReadOnlySpan<KernelArg> args =
        [
            q.Data, kv.Keys(layer), kv.Values(layer), Meta(_layout.BlockTables), Meta(_layout.Sequences), Meta(_layout.Positions), tokenList,
            y.Data, Pointer(_attentionPartials), Pointer(_attentionStats), heads, shape.KvHeads, shape.HeadDim, shape.BlockSize,
            batch.MaxBlocksPerSequence, partition, splits, scaleLog2, EarlyDecodeKv && _layout.DecodeOnly ? 1 : 0,
        ];
        (tensorCores ? (kv.IsFp8 ? Kernels.AttentionDecodeFp8TensorCore : Kernels.AttentionDecodeF16TensorCore) : Kernels.AttentionPartitionFor(kv)).Launch(Stream,
            new Dim3((uint)splits, (uint)shape.KvHeads, (uint)tokens), CudaLaunchGeometry.AttentionThreads,
            tensorCores ? CudaLaunchGeometry.DecodeTensorCoreSharedBytes(shape.HeadDim, kv.ElementBytes) : CudaLaunchGeometry.AttentionSharedBytes(group, shape.HeadDim, kv.ElementBytes),
            tensorCores ? args : args[..^1]);
        if (splits > 1)
        {
            // The reduce writes the whole output's int8 copy too, unless prefill tokens' rows come from attention_prefill.
            var (codes, scaleSums) = !prefill && shape.HeadDim % 32 == 0 ? FusedQuantization(y) : (DevicePointer.Null, DevicePointer.Null);
            Kernels.AttentionReduce.Launch(Stream, new Dim3((uint)heads, (uint)tokens), 128, 0,
                _attentionPartials!, _attentionStats!, Meta(_layout.Positions), tokenList, y.Data, heads, shape.HeadDim, partition, splits,
                codes, scaleSums, DependentsFirst ? 1 : 0);
            FusedCopiesWritten(y, tokens, codes, DevicePointer.Null);
        }
    }

    /// <summary>
    /// One gated Hopper GEMM (gemm_*_wgmma_gated) where both weights are the same half type and shape and the Hopper GEMM
    /// takes the product: SiLU(gate)·up in its epilogue, with the half copy the down projection reads; the gate and up
    /// outputs stay unwritten. At one activation row over float weights the gated split GEMV does the same
    /// (<see cref="GatedGemv"/>). Elsewhere (other GPUs and types, an output with an int8 consumer) as IBackend does.
    /// </summary>
    public void GatedMatMul(DeviceTensor input, MatMulTarget gate, MatMulTarget up, DeviceTensor output, int rows)
    {
        var (g, u) = ((CudaWeight)gate.Weight, (CudaWeight)up.Weight);
        var y = (CudaTensor)output;
        // Both fused paths need gate and up alike and an output that no int8 consumer reads.
        var fusable = u.Layout == g.Layout && u.Rows == g.Rows && u.Columns == g.Columns && FusedQuantization(y).Codes == DevicePointer.Null;
        if (fusable && rows == 1 && GatedGemv && GemvSplitOverride != false && Kernels.GatedGemv(g) is { } gated)
        {
            LaunchGatedGemv(gated, (CudaTensor)input, gate, up, y);
            return;
        }

        if (!fusable || g.Layout is not (CudaWeightLayout.Float16 or CudaWeightLayout.BFloat16) || WarpgroupGemmTile(rows, g, 2 * g.Rows) is not { } tile)
        {
            MatMulGroup(input, [gate, up], rows);
            SiluMul(gate.Output, up.Output, output, rows);
            return;
        }

        var x = Input(input);
        if (x.Columns != g.Columns || y.Columns != g.Rows || rows > x.Rows || rows > y.Rows)
        {
            throw new ArgumentException($"GatedMatMul '{g.Name}'/'{u.Name}': input [{rows} × {x.Columns}] · weights [{g.Rows} × {g.Columns}]ᵀ into [{y.Rows} × {y.Columns}].");
        }

        var halves = EnsureHalf(x, rows, g.Layout == CudaWeightLayout.BFloat16);
        Written(output);
        var (outputHalves, bf16) = FusedHalves(y);
        var tiles = new Dim3((uint)CudaLaunchGeometry.Ceiling(rows, tile.ActivationRows), (uint)CudaLaunchGeometry.Ceiling(g.Rows, tile.WeightRows / 2));
        Kernels.WarpgroupGemm(g, tile, gated: true).Launch(Stream, tiles, tile.Threads, tile.SharedBytes,
            [g.HalfTensorMap, u.HalfTensorMap, g.HalfTensorMapOf(halves.Pointer, rows)], [y.Data, outputHalves, bf16, g.Rows, g.Columns, rows]);
        FusedCopiesWritten(y, rows, DevicePointer.Null, outputHalves);
    }

    /// <summary>
    /// Whether one-row gate/up projections over float weights store SiLU(gate)·up from the split GEMV's epilogue
    /// (<c>_m1_split_gated</c>) instead of a silu_mul launch after the grouped GEMV (the default: true; the split variant
    /// forced off keeps it off too). GpuCheck times the other beside it.
    /// </summary>
    public bool GatedGemv { get; set; } = true;

    /// <summary>
    /// The gated split GEMV: each block the same 4 rows of gate and up, SiLU(gate)·up stored as floats through the gate
    /// part's output, <paramref name="y"/> (what the one-row down GEMV reads; a half copy it has is left stale, as
    /// <see cref="Written"/> marks it). Both parts name <paramref name="y"/>: the up products are never stored.
    /// </summary>
    private void LaunchGatedGemv(CudaKernel kernel, CudaTensor x, MatMulTarget gate, MatMulTarget up, CudaTensor y)
    {
        CheckMatMulTargets(x, [gate, up], 1);
        var g = (CudaWeight)gate.Weight;
        if (y.Columns != g.Rows)
        {
            throw new ArgumentException($"GatedMatMul '{g.Name}'/'{up.Weight.Name}': {g.Rows} rows into an output of {y.Columns} columns.");
        }

        Gemv(x, [new MatMulTarget(g, y), new MatMulTarget(up.Weight, y)], 1, CudaLaunchGeometry.GatedGemv, g.Rows, kernel: kernel);
    }

    public void SiluMul(DeviceTensor gate, DeviceTensor up, DeviceTensor output, int rows)
    {
        var y = Written(output);
        var n = (long)rows * gate.Columns;
        var (codes, scaleSums) = FusedQuantization(y);
        var (halves, bf16) = FusedHalves(y);
        Kernels.SiluMul.Launch(Stream, (int)CudaLaunchGeometry.Ceiling(n, 256), 256, 0, Input(gate).Data, Input(up).Data, y.Data, n,
            codes, scaleSums, halves, bf16, DependentsFirst ? 1 : 0);
        FusedCopiesWritten(y, rows, codes, halves);
    }

    public void GatherLogitRows(DeviceTensor input, DeviceTensor output)
    {
        var batch = Batch;
        var y = Written(output);
        Kernels.GatherRows.Launch(Stream, batch.LogitCount, 256, 0, Input(input).Data, Meta(_layout.LogitIndices), y.Data, input.Columns);
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
        var x = Input(tensor);
        x.Data.CopyTo(Stream, destination[..(rows * x.Columns)]);
    }

    /// <summary>Greedy choice on the device: the first index of each row's largest logit; only the ids are copied back.</summary>
    public void ArgMax(DeviceTensor logits, int rows, Span<int> ids)
    {
        Context.MakeCurrent();
        var x = Input(logits);
        EnsureCapacity(ref _tokenIds, Math.Max(rows, 64));
        Kernels.ArgmaxRows.Launch(Stream, rows, 1024, 0, x.Data, x.Columns, _tokenIds!);
        _tokenIds!.CopyTo(Stream, ids[..rows]);
    }

    /// <summary>
    /// Per-row token choice on the device (sampling.cu's <c>sample_rows</c>, equal to <see cref="TokenChooser"/>): the rows'
    /// parameters, uniforms and penalty lists go up, only the ids come back.
    /// </summary>
    public void Sample(DeviceTensor logits, ReadOnlySpan<SamplingRow> rows, ReadOnlySpan<TokenPenalty> penalties, Span<int> ids)
    {
        SamplingRow.Validate(logits, rows, penalties, ids);
        if (rows.IsEmpty)
        {
            return;
        }

        Context.MakeCurrent();
        var x = Input(logits);
        EnsureCapacity(ref _tokenIds, Math.Max(rows.Length, 64));
        EnsureCapacity(ref _samplingRows, Math.Max(rows.Length, 64));
        EnsureCapacity(ref _sampleWeights, (long)x.Rows * x.Columns);
        _samplingRows!.CopyFrom(Stream, rows);
        if (!penalties.IsEmpty)
        {
            if (_penalties is null || _penalties.Length < penalties.Length)
            {
                // Twice what is needed: the lists grow by a token per sequence and step, and a reallocation synchronises.
                EnsureCapacity(ref _penalties, Math.Max(2L * penalties.Length, 4096));
            }

            _penalties!.CopyFrom(Stream, penalties);
        }

        // −1 first (a memset of a few hundred bytes): a row the kernel failed to write is an error below, not a stale id.
        _tokenIds!.Fill(Stream, 0xFFFFFFFF);
        Kernels.SampleRows.Launch(Stream, rows.Length, 1024, 0, x.Data, _sampleWeights!, x.Columns, _samplingRows!, Pointer(_penalties), _tokenIds);
        _tokenIds.CopyTo(Stream, ids[..rows.Length]);
        for (var r = 0; r < rows.Length; r++)
        {
            if ((uint)ids[r] >= (uint)x.Columns)
            {
                throw new InvalidOperationException($"sample_rows gave row {r} token {ids[r]}, outside the vocabulary of {x.Columns}.");
            }
        }
    }

    private bool EnsureCapacity<T>(ref CudaDeviceBuffer<T>? buffer, long length) where T : unmanaged
    {
        if (buffer is null || buffer.Length < length)
        {
            buffer?.Dispose();
            buffer = new CudaDeviceBuffer<T>(Context, length);
            return true;
        }

        return false;
    }

    /// <summary><see cref="EnsureCapacity"/> for a buffer a forward step addresses: a move makes recorded steps stale.</summary>
    private void EnsureStepCapacity<T>(ref CudaDeviceBuffer<T>? buffer, long length) where T : unmanaged
    {
        if (EnsureCapacity(ref buffer, length))
        {
            StepBufferGeneration++;
        }
    }

    private static DevicePointer Pointer<T>(CudaDeviceBuffer<T>? buffer) where T : unmanaged => buffer?.Pointer ?? DevicePointer.Null;

    /// <summary>A tensor about to be overwritten whole (any norm pending on it is dropped).</summary>
    private CudaTensor Written(DeviceTensor tensor)
    {
        var t = (CudaTensor)tensor;
        t.MarkWritten();
        return t;
    }

    /// <summary>A tensor about to be changed in place: its float values computed first where a norm is pending on it.</summary>
    private CudaTensor Updated(DeviceTensor tensor) => Written(Input(tensor));

    /// <summary>
    /// A tensor about to be read as floats: where a norm was folded into the kernel that made it (<see cref="FoldNorm"/>) and
    /// its reader is not the one-row GEMV that finishes it, the norm runs here from the residual it was taken of.
    /// </summary>
    private CudaTensor Input(DeviceTensor tensor)
    {
        var t = (CudaTensor)tensor;
        if (t.PendingNorm is { } pending)
        {
            if (pending.Residual.Version != pending.ResidualVersion)
            {
                throw new InvalidOperationException("The residual a pending norm was taken of has been written since; its normed values are lost.");
            }

            RmsNorm(pending.Residual, pending.Weight, pending.Epsilon, t, 1);
        }

        return t;
    }

    public void Dispose()
    {
        Context.MakeCurrent();
        Stream.Synchronize();
        _metadata?.Dispose();
        _attentionPartials?.Dispose();
        _splitWorkspace?.Dispose();
        _attentionStats?.Dispose();
        _sampleWeights?.Dispose();
        _samplingRows?.Dispose();
        _penalties?.Dispose();
        _tokenIds?.Dispose();
        foreach (var (plan, _) in _persistentDecodes.Values)
        {
            plan?.Dispose();
        }

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

/// <summary>The RoPE and KV-store arguments of a <c>_m1_split_rope</c> GEMV (matmul.cu's GemvRope), in their launch order.</summary>
internal readonly record struct GemvRopeArgs(
    DevicePointer Cos, DevicePointer Sin, DevicePointer Position, DevicePointer Slot, DevicePointer Keys, DevicePointer Values, int HeadDim)
{
    /// <summary>Kernel arguments they take.</summary>
    public const int Count = 7;
}

/// <summary>A split-K GEMM's partial sums ([splits][rows][outputs] at <paramref name="Partials"/>), left for the kernel that reads the product.</summary>
internal readonly record struct UnsummedSplits(DevicePointer Partials, int Splits);
