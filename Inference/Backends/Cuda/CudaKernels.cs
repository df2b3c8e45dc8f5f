using System.Reflection;
using AspireAi.Inference.Backends.Cuda.Driver;

namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// The PTX modules of <c>Backends/Cuda/Kernels</c> (embedded as resources <c>AspireAi.Inference.Cuda.&lt;name&gt;.ptx</c>,
/// or read from a folder when one is given, for kernel development on the GPU machine) and every kernel the backend launches.
/// </summary>
public sealed class CudaKernels : IDisposable
{
    /// <summary>The kernel source files (without extension); each has a PTX file of the same name.</summary>
    public static readonly string[] ModuleNames = ["elementwise", "matmul", "attention", "sampling", "collectives"];

    /// <summary>The GEMV kernel families of matmul.cu; each has a variant per activation-row bound (<c>_m1</c>, <c>_m8</c>, …).</summary>
    private static readonly string[] GemvFamilies =
        ["gemv_int8", "gemv_int8_mins", "gemv_int8_halves", "gemv_nibble", "gemv_nibble_mins", "gemv_f32", "gemv_f16", "gemv_bf16"];

    /// <summary>The GEMV families of float weights.</summary>
    private static readonly string[] FloatGemvFamilies = ["gemv_f32", "gemv_f16", "gemv_bf16"];

    /// <summary>
    /// The GEMV families with a one-wave strided split (<c>_m1_split_strided</c>, matmul.cu): the quantized layouts with one
    /// f16 scale a block and no min (Q8_0, Q5_0, Q4_0). Over float scales it lost every step timed (docs/performance.md).
    /// </summary>
    private static readonly string[] StridedGemvFamilies = ["gemv_int8", "gemv_nibble"];

    /// <summary>The GEMV families with a producer of a folded norm (<c>_m1_residual</c>, matmul.cu): the nibble layouts.</summary>
    private static readonly string[] ResidualGemvFamilies = ["gemv_nibble", "gemv_nibble_mins"];

    /// <summary>
    /// Kernel sources built only for the arch-specific Hopper target (<c>NAME.sm90a.ptx</c>: wgmma), loaded on devices of
    /// compute capability 9.0 alone, where they stand beside the modules above.
    /// </summary>
    public static readonly string[] HopperModuleNames = ["gemm_hopper", "decode_persistent"];

    /// <summary>The suffix of the sm_90a build of a Hopper module.</summary>
    public const string HopperSuffix = ".sm90a";

    /// <summary>Compute capability 9.0: the sm_90a Hopper modules load, and the decode step's carveouts apply.</summary>
    private readonly bool _hopper;
    private readonly CudaModule[] _modules;
    private readonly Dictionary<(string Family, int MaxRows, bool SplitK), CudaKernel> _gemv;
    private readonly Dictionary<string, CudaKernel> _gemvResidual;
    private readonly Dictionary<string, CudaKernel> _gemvRope;
    private readonly Dictionary<string, CudaKernel> _gemvGated;
    private readonly Dictionary<string, CudaKernel> _gemvStrided;
    private readonly CudaKernel _rmsNormRows;
    private readonly CudaKernel _rmsNormRowsOneItem;
    private readonly Dictionary<(string Name, int TileRows), CudaKernel> _halfGemm;
    private readonly Dictionary<(string Name, WarpgroupTile Tile, bool Gated), CudaKernel> _warpgroupGemm = [];

    /// <summary>The suffix of the sm_90 build of a module (<c>matmul.sm90.ptx</c>), whose kernels wait for their predecessor
    /// themselves so that they can be launched before it ends (programmatic dependent launch, kernels/common.cuh).</summary>
    public const string DependentLaunchSuffix = ".sm90";

    /// <param name="ptxDirectory">Load PTX from this folder (kernel development on the GPU machine); by default the folder in
    /// <c>ASPIREAI_CUDA_PTX_DIR</c> when set, else the embedded resources.</param>
    public CudaKernels(CudaContext context, string? ptxDirectory = null)
    {
        ptxDirectory ??= Environment.GetEnvironmentVariable("ASPIREAI_CUDA_PTX_DIR") is { Length: > 0 } fromEnvironment ? fromEnvironment : null;
        // Hopper and later get the sm_90 build; ASPIREAI_CUDA_DEPENDENT_LAUNCH=0 keeps the sm_80 one (plain launches, for A/B
        // timing or as a way out), and so does a PTX folder that lacks the sm_90 files.
        _hopper = context.ComputeCapability == (9, 0);
        DependentLaunch = context.ComputeCapability.Major >= 9
            && Environment.GetEnvironmentVariable("ASPIREAI_CUDA_DEPENDENT_LAUNCH") != "0"
            && (ptxDirectory is null || File.Exists(Path.Combine(ptxDirectory, "matmul" + DependentLaunchSuffix + ".ptx")));
        var suffix = DependentLaunch ? DependentLaunchSuffix : "";
        _modules = ModuleNames.Select(name => new CudaModule(context, name + suffix + ".ptx", LoadPtx(name + suffix, ptxDirectory), DependentLaunch)).ToArray();
        // sm_90a PTX runs on compute capability 9.0 only (Blackwell and later keep gemm_half_tc and the layer-by-layer step);
        // a PTX folder without a module's file leaves that module out rather than failing.
        CudaModule? HopperModule(string name)
        {
            if (!_hopper || (ptxDirectory is not null && !File.Exists(Path.Combine(ptxDirectory, name + HopperSuffix + ".ptx"))))
            {
                return null;
            }

            return new CudaModule(context, name + HopperSuffix + ".ptx", LoadPtx(name + HopperSuffix, ptxDirectory), DependentLaunch);
        }

        var hopper = HopperModule("gemm_hopper");
        var persistent = HopperModule("decode_persistent");
        _modules = [.. _modules, .. new[] { hopper, persistent }.OfType<CudaModule>()];
        if (hopper is not null)
        {
            foreach (var name in new[] { "gemm_f16", "gemm_bf16" })
            {
                foreach (var tile in CudaLaunchGeometry.WarpgroupGemmTiles)
                {
                    foreach (var gated in new[] { false, true })
                    {
                        var kernel = hopper.Kernel($"{name}_wgmma{(gated ? "_gated" : "")}{tile.KernelSuffix}");
                        kernel.SetMaxDynamicSharedMemory(tile.SharedBytes);
                        _warpgroupGemm[(name, tile, gated)] = kernel;
                    }
                }
            }
        }

        // The persistent decode kernel (cp.async.bulk, sm_90), off unless CudaBackend.PersistentDecode asks for it.
        PersistentDecodeNibble = persistent?.Kernel("decode_persistent_nibble");

        var elementwise = _modules[0];
        var matmul = _modules[1];
        var attention = _modules[2];
        var sampling = _modules[3];
        PeerAllReduce = _modules[4].Kernel("peer_all_reduce");
        EmbedRows = elementwise.Kernel("embed_rows");
        _rmsNormRows = elementwise.Kernel("rms_norm_rows");
        _rmsNormRowsOneItem = elementwise.Kernel("rms_norm_rows_1");
        RmsNormGroups = elementwise.Kernel("rms_norm_groups");
        RopeStoreKv = elementwise.Kernel("rope_store_kv");
        RopeStoreKvF16 = elementwise.Kernel("rope_store_kv_f16");
        RopeStoreKvFp8 = elementwise.Kernel("rope_store_kv_fp8");
        SiluMul = elementwise.Kernel("silu_mul");
        AddBias = elementwise.Kernel("add_bias");
        GatherRows = elementwise.Kernel("gather_rows");
        QuantizeQ8 = elementwise.Kernel("quantize_q8");
        RoundToHalf = elementwise.Kernel("round_to_half");
        _gemv = GemvFamilies
            .SelectMany(family => CudaLaunchGeometry.GemvVariants(isFloat: FloatGemvFamilies.Contains(family))
                .Select(maxRows => (Family: family, MaxRows: maxRows, SplitK: false))
                .Append((Family: family, MaxRows: 1, SplitK: true)))
            .ToDictionary(key => key, key => matmul.Kernel($"{key.Family}_m{key.MaxRows}{(key.SplitK ? "_split" : "")}"));
        _gemvRope = GemvFamilies.ToDictionary(family => family, family => matmul.Kernel($"{family}_m1_split_rope"));
        _gemvGated = FloatGemvFamilies.ToDictionary(family => family, family => matmul.Kernel($"{family}_m1_split_gated"));
        _gemvResidual = ResidualGemvFamilies.ToDictionary(family => family, family => matmul.Kernel($"{family}_m1_residual"));
        _gemvStrided = StridedGemvFamilies.ToDictionary(family => family, family => matmul.Kernel($"{family}_m1_split_strided"));
        GemmInt8 = matmul.Kernel("gemm_int8");
        GemmInt8TensorCore = matmul.Kernel("gemm_int8_tc");
        GemmInt8MinsTensorCore = matmul.Kernel("gemm_int8_mins_tc");
        GemmNibbleTensorCore = matmul.Kernel("gemm_nibble_tc");
        GemmNibbleMinsTensorCore = matmul.Kernel("gemm_nibble_mins_tc");
        SumSplits = matmul.Kernel("sum_splits");
        GemmInt8Mins = matmul.Kernel("gemm_int8_mins");
        GemmInt8Halves = matmul.Kernel("gemm_int8_halves");
        GemmNibble = matmul.Kernel("gemm_nibble");
        GemmNibbleMins = matmul.Kernel("gemm_nibble_mins");
        GemmF32 = matmul.Kernel("gemm_f32");
        _halfGemm = new[] { "gemm_f16", "gemm_bf16" }
            .SelectMany(name => CudaLaunchGeometry.HalfGemmTileRows.Select(tileRows => (name, tileRows)))
            .ToDictionary(key => key, key =>
            {
                var kernel = matmul.Kernel($"{key.name}_m{key.tileRows}");
                kernel.SetMaxDynamicSharedMemory(CudaLaunchGeometry.HalfGemmSharedBytes(key.tileRows));
                return kernel;
            });
        AttentionPartition = attention.Kernel("attention_partition");
        AttentionPartitionF16 = attention.Kernel("attention_partition_f16");
        AttentionPartitionFp8 = attention.Kernel("attention_partition_fp8");
        AttentionPartition.SetMaxDynamicSharedMemory(CudaLaunchGeometry.AttentionMaxSharedBytes);
        AttentionPartitionF16.SetMaxDynamicSharedMemory(CudaLaunchGeometry.AttentionMaxSharedBytes);
        AttentionPartitionFp8.SetMaxDynamicSharedMemory(CudaLaunchGeometry.AttentionMaxSharedBytes);
        AttentionDecodeF16TensorCore = attention.Kernel("attention_decode_f16_tc");
        AttentionDecodeF16TensorCore.SetMaxDynamicSharedMemory(CudaLaunchGeometry.DecodeTensorCoreSharedBytes(CudaLaunchGeometry.DecodeTensorCoreMaxHeadDim, 2));
        AttentionDecodeFp8TensorCore = attention.Kernel("attention_decode_fp8_tc");
        AttentionDecodeFp8TensorCore.SetMaxDynamicSharedMemory(CudaLaunchGeometry.DecodeTensorCoreSharedBytes(CudaLaunchGeometry.DecodeTensorCoreMaxHeadDim, 1));
        AttentionReduce = attention.Kernel("attention_reduce");
        AttentionPrefill = attention.Kernel("attention_prefill");
        AttentionPrefillFp8 = attention.Kernel("attention_prefill_fp8");
        AttentionPrefillF16 = attention.Kernel("attention_prefill_f16");
        AttentionPrefillF16.SetMaxDynamicSharedMemory(CudaLaunchGeometry.PrefillCpAsyncSharedBytes(CudaLaunchGeometry.PrefillMaxHeadDim, 2));
        AttentionPrefillFp8.SetMaxDynamicSharedMemory(CudaLaunchGeometry.PrefillCpAsyncSharedBytes(CudaLaunchGeometry.PrefillMaxHeadDim, 1));
        ArgmaxRows = sampling.Kernel("argmax_rows");
        SampleRows = sampling.Kernel("sample_rows");
        // Every kernel starts at the driver's choice: only Hopper's decode-step preferences need setting.
        PreferDecodeStepCarveouts();
    }

    /// <summary>
    /// The preferred shared-memory carveouts the backend runs with: on Hopper (compute capability 9.0, where they were
    /// measured) the kernels of a decode step that need little shared memory — the GEMVs, the elementwise, sampling and
    /// collective kernels, attention_reduce — prefer <see cref="DecodeStepCarveout"/> and the tensor-core decode attention
    /// 100 % (two of its blocks an SM); the rest (GEMMs, prefill attention, the CUDA-core decode attention) keep the
    /// driver's choice, as everything does elsewhere.
    /// </summary>
    public void UseDefaultCarveouts()
    {
        SetSharedCarveout(-1);
        PreferDecodeStepCarveouts();
    }

    private void PreferDecodeStepCarveouts()
    {
        if (!_hopper)
        {
            return;
        }

        var decodeStep = new[] { "elementwise", "sampling", "collectives" }
            .SelectMany(name => _modules[Array.IndexOf(ModuleNames, name)].Kernels)
            .Concat(GemvKernels)
            .Append(AttentionReduce);
        foreach (var kernel in decodeStep)
        {
            kernel.SetPreferredSharedCarveout(DecodeStepCarveout);
        }

        AttentionDecodeF16TensorCore.SetPreferredSharedCarveout(100);
        AttentionDecodeFp8TensorCore.SetPreferredSharedCarveout(100);
    }

    /// <summary>
    /// 58 % of an H100's 228 KB of L1/shared as shared memory (the driver rounds it to a supported size, 132 or 164 KB; not
    /// read back): room for a tensor-core decode attention block (104 KB) beside the GEMVs' blocks. With the driver's choice
    /// an SM apparently had to drain the one kind of kernel before taking the other (its split changes only while empty),
    /// losing the overlap a dependent launch gives. Timed beside the driver's choice, every kernel at 58 % and the decode
    /// attention at 100 % (H100, Llama-3-8B batch 1, GpuCheck --shapes, 2026-11-28): Q4_0 −0.1 % at context 128, +5.9 % at
    /// 2,048; Q8_0 +3.4 / +4.9 %. Every kernel at 100 %: Q4_0 −2.5 to −3.2 % at 128–512.
    /// </summary>
    public const int DecodeStepCarveout = 58;

    /// <summary>The PTX text of module <paramref name="name"/>: from <paramref name="directory"/> when given, else embedded.</summary>
    public static string LoadPtx(string name, string? directory = null)
    {
        if (directory is not null)
        {
            var path = Path.Combine(directory, name + ".ptx");
            return File.Exists(path) ? File.ReadAllText(path) : throw new FileNotFoundException($"PTX module '{path}' does not exist.", path);
        }

        var resource = $"AspireAi.Inference.Cuda.{name}.ptx";
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"The assembly holds no PTX resource '{resource}': regenerate the PTX with tools/gpu/build-ptx.sh.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>The modules are the sm_90 build: launch on a stream with <see cref="CudaStream.DependentLaunch"/>.</summary>
    public bool DependentLaunch { get; }

    public CudaKernel EmbedRows { get; }

    /// <summary>
    /// rms_norm_rows for rows of <paramref name="columns"/> values: the one-item kernel (<c>rms_norm_rows_1</c>) where a
    /// thread holds one float4 of the row (<see cref="CudaLaunchGeometry.NormItemsFor"/>), the 4-item one beyond or where
    /// <paramref name="oneItem"/> is false (GpuCheck's A/B).
    /// </summary>
    public CudaKernel RmsNormRows(int columns, bool oneItem = true) =>
        oneItem && CudaLaunchGeometry.NormItemsFor(columns) == 1 ? _rmsNormRowsOneItem : _rmsNormRows;

    public CudaKernel RmsNormGroups { get; }
    public CudaKernel RopeStoreKv { get; }
    public CudaKernel RopeStoreKvF16 { get; }
    public CudaKernel RopeStoreKvFp8 { get; }
    public CudaKernel SiluMul { get; }
    public CudaKernel AddBias { get; }
    public CudaKernel GatherRows { get; }
    public CudaKernel QuantizeQ8 { get; }
    public CudaKernel RoundToHalf { get; }
    public CudaKernel GemmInt8 { get; }
    public CudaKernel GemmInt8TensorCore { get; }
    public CudaKernel GemmInt8MinsTensorCore { get; }
    public CudaKernel GemmNibbleTensorCore { get; }
    public CudaKernel GemmNibbleMinsTensorCore { get; }
    public CudaKernel SumSplits { get; }
    public CudaKernel GemmInt8Mins { get; }
    public CudaKernel GemmInt8Halves { get; }
    public CudaKernel GemmNibble { get; }
    public CudaKernel GemmNibbleMins { get; }
    public CudaKernel GemmF32 { get; }
    public CudaKernel AttentionPartition { get; }
    public CudaKernel AttentionPartitionF16 { get; }
    public CudaKernel AttentionPartitionFp8 { get; }
    public CudaKernel AttentionDecodeF16TensorCore { get; }
    public CudaKernel AttentionDecodeFp8TensorCore { get; }
    public CudaKernel AttentionReduce { get; }
    public CudaKernel AttentionPrefill { get; }
    public CudaKernel AttentionPrefillFp8 { get; }
    public CudaKernel AttentionPrefillF16 { get; }

    // The kernels that read or write the KV cache have a variant per element type (float32, f16, fp8): the cache picks it.
    public CudaKernel RopeStoreKvFor(CudaKvCache cache) => cache.IsHalf ? RopeStoreKvF16 : cache.IsFp8 ? RopeStoreKvFp8 : RopeStoreKv;

    public CudaKernel AttentionPartitionFor(CudaKvCache cache) => cache.IsHalf ? AttentionPartitionF16 : cache.IsFp8 ? AttentionPartitionFp8 : AttentionPartition;

    public CudaKernel AttentionPrefillFor(CudaKvCache cache) => cache.IsHalf ? AttentionPrefillF16 : cache.IsFp8 ? AttentionPrefillFp8 : AttentionPrefill;
    public CudaKernel ArgmaxRows { get; }
    public CudaKernel PeerAllReduce { get; }
    public CudaKernel SampleRows { get; }

    /// <summary>Every GEMV kernel (for reports of their registers and spills).</summary>
    public IEnumerable<CudaKernel> GemvKernels =>
        _gemv.Values.Concat(_gemvRope.Values).Concat(_gemvResidual.Values).Concat(_gemvGated.Values).Concat(_gemvStrided.Values);

    /// <summary>The one-row split GEMV that rotates q/k/v and stores k and v in an f16 cache in its epilogue (<c>_m1_split_rope</c>).</summary>
    public CudaKernel GemvRope(CudaWeight weight) => _gemvRope[GemvFamily(weight)];

    /// <summary>
    /// The one-row split GEMV over gate and up that stores SiLU(gate)·up in its epilogue (<c>_m1_split_gated</c>), or null
    /// where the weight's layout has none (quantized layouts, whose down GEMV reads int8 blocks of 32 values that a block of
    /// 4 rows cannot quantize).
    /// </summary>
    public CudaKernel? GatedGemv(CudaWeight weight) => _gemvGated.GetValueOrDefault(GemvFamily(weight));

    /// <summary>
    /// The one-row split GEMV over one wave of blocks, each taking every grid-th group of rows with the next pass's weights
    /// in flight (<c>_m1_split_strided</c>), or null where the weight has none (float scales or weights).
    /// </summary>
    public CudaKernel? StridedGemv(CudaWeight weight) => _gemvStrided.GetValueOrDefault(GemvFamily(weight));

    /// <summary>
    /// The one-row GEMV that adds its product to the residual and leaves the next norm's int8 block and Σh² for the GEMV that
    /// reads it (<c>_m1_residual</c>), or null where the weight's layout has none.
    /// </summary>
    public CudaKernel? ResidualGemv(CudaWeight weight) => _gemvResidual.GetValueOrDefault(GemvFamily(weight));

    /// <summary>The GEMV kernel for a weight's layout and a launch shape.</summary>
    /// <remarks>Keyed by (family, rows, split) rather than the kernel's name: no string is built per launch.</remarks>
    public CudaKernel Gemv(CudaWeight weight, GemvShape shape) => _gemv[(GemvFamily(weight), shape.MaxRows, shape.SplitK)];

    /// <summary>The int8 tensor-core GEMM for a weight, or null where it has none (<see cref="CudaLaunchGeometry.HasTensorCoreGemm"/>).</summary>
    public CudaKernel? TensorCoreGemm(CudaWeight weight) =>
        !CudaLaunchGeometry.HasTensorCoreGemm(weight.Layout, weight.ScalesPerBlock, weight.Columns) ? null
        : weight.Layout == CudaWeightLayout.Nibble ? (weight.Mins is null ? GemmNibbleTensorCore : GemmNibbleMinsTensorCore)
        : weight.Mins is null ? GemmInt8TensorCore : GemmInt8MinsTensorCore;

    /// <summary>The GEMM kernel for a weight's layout.</summary>
    public CudaKernel Gemm(CudaWeight weight) => GemvFamily(weight) switch
    {
        "gemv_int8" => GemmInt8,
        "gemv_int8_mins" => GemmInt8Mins,
        "gemv_int8_halves" => GemmInt8Halves,
        "gemv_nibble" => GemmNibble,
        "gemv_nibble_mins" => GemmNibbleMins,
        "gemv_f32" => GemmF32,
        _ => throw new InvalidOperationException($"F16/BF16 weight '{weight.Name}' takes the tensor-core GEMM (HalfGemm)."),
    };

    /// <summary>The F16/BF16 tensor-core GEMM variant with <paramref name="tileRows"/> activation rows per tile
    /// (<see cref="CudaLaunchGeometry.HalfGemmRows"/>).</summary>
    public CudaKernel HalfGemm(CudaWeight weight, int tileRows) =>
        _halfGemm[(weight.Layout == CudaWeightLayout.BFloat16 ? "gemm_bf16" : "gemm_f16", tileRows)];

    /// <summary>Every F16/BF16 GEMM variant (for reports of their registers and spills).</summary>
    public IEnumerable<CudaKernel> HalfGemmKernels => _halfGemm.Values.Concat(_warpgroupGemm.Values);

    /// <summary>
    /// decode_persistent.cu's kernel (every block of a one-token step over Q4_0 weights in one launch; CudaPersistentDecode),
    /// where compute capability 9.0 loads its module; else null.
    /// </summary>
    public CudaKernel? PersistentDecodeNibble { get; }

    /// <summary>The device has the Hopper (wgmma) F16/BF16 GEMM: compute capability 9.0 and its module loaded.</summary>
    public bool HasWarpgroupGemm => _warpgroupGemm.Count > 0;

    /// <summary>The Hopper F16/BF16 GEMM of one tile (<see cref="CudaLaunchGeometry.WarpgroupGemmTiles"/>), or its gated
    /// variant (SiLU(gate)·up, half the tile's weight rows from each); only where <see cref="HasWarpgroupGemm"/>.</summary>
    public CudaKernel WarpgroupGemm(CudaWeight weight, WarpgroupTile tile, bool gated = false) =>
        _warpgroupGemm[(weight.Layout == CudaWeightLayout.BFloat16 ? "gemm_bf16" : "gemm_f16", tile, gated)];

    /// <summary>Weights that share a family share a kernel (and can share one grouped GEMV launch).</summary>
    public static string GemvFamily(CudaWeight weight) => (weight.Layout, weight.ScalesPerBlock, weight.Mins is not null) switch
    {
        (CudaWeightLayout.Int8, 1, false) => "gemv_int8",
        (CudaWeightLayout.Int8, 1, true) => "gemv_int8_mins",
        (CudaWeightLayout.Int8, 2, false) => "gemv_int8_halves",
        (CudaWeightLayout.Nibble, 1, false) => "gemv_nibble",
        (CudaWeightLayout.Nibble, 1, true) => "gemv_nibble_mins",
        (CudaWeightLayout.Float32, _, _) => "gemv_f32",
        (CudaWeightLayout.Float16, _, _) => "gemv_f16",
        (CudaWeightLayout.BFloat16, _, _) => "gemv_bf16",
        _ => throw new InvalidOperationException($"No matmul kernel for weight '{weight.Name}' ({weight.Layout}, {weight.ScalesPerBlock} scales per block)."),
    };

    /// <summary>Every kernel taken from the modules so far (those loaded on first use included once used).</summary>
    public IEnumerable<CudaKernel> Loaded => _modules.SelectMany(module => module.Kernels);

    /// <summary>
    /// Sets the preferred shared-memory carveout of every kernel, in percent (−1: the driver's choice for each); the
    /// backend's own are <see cref="UseDefaultCarveouts"/>. GpuCheck times the step with others beside them.
    /// </summary>
    public void SetSharedCarveout(int percent)
    {
        foreach (var kernel in Loaded)
        {
            kernel.SetPreferredSharedCarveout(percent);
        }
    }

    public void Dispose()
    {
        foreach (var module in _modules)
        {
            module.Dispose();
        }
    }
}
