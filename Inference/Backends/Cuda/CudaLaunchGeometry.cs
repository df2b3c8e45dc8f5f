namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// Launch shapes of the kernels, as pure functions of the problem (unit-tested on the CPU). The constants mirror the
/// kernel sources' <c>#define</c>s; each kernel's header comment gives its grid and block.
/// </summary>
public static class CudaLaunchGeometry
{
    /// <summary>
    /// Activation rows up to which quantized matmuls take the GEMV path (the <c>_m32</c> kernels of matmul.cu): a decode batch
    /// of up to 32 sequences stays memory-bound, and the dp4a GEMM's 64 × 64 tiles gave it a quarter of the SMs.
    /// </summary>
    public const int QuantizedGemvMaxRows = 32;

    /// <summary>Activation rows up to which float matmuls take the GEMV path; above, the tensor-core GEMM.</summary>
    public const int FloatGemvMaxRows = 8;

    /// <summary>Warps per GEMV block (GEMV_WARPS in matmul.cu).</summary>
    public const int GemvWarps = 4;

    /// <summary>GEMM tiles are 64 weight rows × 64 activation rows.</summary>
    public const int GemmTile = 64;

    /// <summary>
    /// The unit of an attention partition: the positions of one attention_partition tile (its 4 warps take 8 rows each of a
    /// head dimension ≤ 128, 4 rows each of one ≤ 256, so 32 is a whole number of tiles either way).
    /// </summary>
    public const int AttentionTile = 32;

    /// <summary>Threads per attention block (ATT_THREADS): 4 warps.</summary>
    public const int AttentionThreads = 128;

    /// <summary>Query heads per KV head the attention kernel accumulates in registers (ATT_MAX_GROUP).</summary>
    public const int AttentionMaxGroup = 8;

    /// <summary>Largest head dimension: rows of two 128-float pieces (a float4 of each per lane).</summary>
    public const int AttentionMaxHeadDim = 256;

    /// <summary>
    /// The attention kernels' score scale: 1/√headDim times log2(e), since they exponentiate with exp2 (attention.cu, and
    /// the persistent decode kernel's attention).
    /// </summary>
    public static float AttentionScaleLog2(int headDim) => (float)(1.0 / Math.Sqrt(headDim) * 1.4426950408889634);

    /// <summary>
    /// Whether the attention kernel serves this geometry (else a clear error at the first step): rows of whole 16-byte
    /// copies (cp.async), so a head dimension that is a multiple of 4 over a float32 cache, of 8 over an f16 one and of 16
    /// over an fp8 one.
    /// </summary>
    public static bool AttentionSupports(int group, int headDim, int elementBytes) =>
        group is >= 1 and <= AttentionMaxGroup && headDim is > 0 and <= AttentionMaxHeadDim && headDim * elementBytes % 16 == 0;

    /// <summary>
    /// Activation rows up to which weights that have the int8 tensor-core GEMM (<c>gemm_int8_tc</c>) still take the GEMV:
    /// above 8 rows the dp4a GEMV's accumulators crowd its registers (the 32-row variant reached 17 TFLOP/s on an H200,
    /// 28 ms of a batch-32 Llama-3-8B Q8_0 step), while the tensor cores leave such a batch memory-bound.
    /// </summary>
    public const int TensorCoreGemvMaxRows = 8;

    /// <summary>Whether <paramref name="rows"/> activation rows take the GEMV path (else a GEMM).</summary>
    /// <param name="tensorCoreGemm">The weight has the int8 tensor-core GEMM (<see cref="HasTensorCoreGemm"/>).</param>
    public static bool UseGemv(int rows, bool quantized, bool tensorCoreGemm = false) =>
        rows <= (!quantized ? FloatGemvMaxRows : tensorCoreGemm ? TensorCoreGemvMaxRows : QuantizedGemvMaxRows);

    /// <summary>
    /// Whether a quantized weight goes through the int8 tensor-core GEMM: one scale per 32-value block, int8 codes (Q8_0,
    /// Q5_0, Q5_K) or nibbles (Q4_0, Q4_K; Q6_K's half-block scales stay on dp4a), and K a multiple of its 64-value stages.
    /// </summary>
    public static bool HasTensorCoreGemm(CudaWeightLayout layout, int scalesPerBlock, int columns) =>
        layout is CudaWeightLayout.Int8 or CudaWeightLayout.Nibble && scalesPerBlock == 1 && columns % TensorCoreGemmTile == 0;

    /// <summary>gemm_int8_tc's tile: 64 weight rows × 64 activation rows, K in stages of 64 (MT, MK in matmul.cu).</summary>
    public const int TensorCoreGemmTile = 64;

    /// <summary>
    /// How many ways gemm_int8_tc splits K: enough that the tiles × splits give every multiprocessor two blocks, at most 8
    /// and never more than the 64-value stages of K. One where the tiles alone fill the GPU (prefill, large batches).
    /// </summary>
    public static int TensorCoreSplits(int rows, int outputs, int columns, int multiprocessors)
    {
        var tiles = (long)Ceiling(outputs, TensorCoreGemmTile) * Ceiling(rows, TensorCoreGemmTile);
        var wanted = (int)Math.Min(8, Ceiling(2L * multiprocessors, tiles));
        return Math.Clamp(wanted, 1, Math.Max(1, columns / TensorCoreGemmTile));
    }

    /// <summary>gemm_half_tc's tiles (F16/BF16 weights): 128 weight rows × one of these many activation rows (the <c>_mBM</c> variants).</summary>
    public static readonly int[] HalfGemmTileRows = [32, 64, 128, 256];

    /// <summary>Weight rows per gemm_half_tc tile (HG_N).</summary>
    public const int HalfGemmWeightRows = 128;

    /// <summary>
    /// The gemm_half_tc variant for a batch: the smallest tile that holds decode batches of up to 64 rows (a 128-row tile
    /// did 4× the tensor work of a batch of 32, which made it compute-bound), 128 for mid-sized batches, and 256 (warps of
    /// 64 × 64) from 1024 rows, where 256-row tiles still fill 132 SMs: an 8B prefill of 2048 tokens spent 109.5 ms in
    /// matmuls with them against 127.8 ms with 128-row tiles (H100, 2026-11-27).
    /// </summary>
    public static int HalfGemmRows(int rows) => rows switch
    {
        <= 32 => 32,
        <= 64 => 64,
        < 1024 => 128,
        _ => 256,
    };

    /// <summary>gemm_half_tc's dynamic shared memory: 4 stages × (128 + tile rows) rows × 80 bytes.</summary>
    public static int HalfGemmSharedBytes(int tileRows) => 4 * (HalfGemmWeightRows + tileRows) * 40 * 2;

    /// <summary>
    /// How many ways gemm_half_tc splits K: one where the tiles alone give every multiprocessor a block (prefill, large
    /// batches); else as many as keep tiles × splits within one wave of the blocks an SM holds (by shared memory: 228 KB a
    /// multiprocessor), at most 8, and each split at least 4 stages of 32 so that its pipeline fills.
    /// </summary>
    public static int HalfGemmSplits(int rows, int outputs, int columns, int multiprocessors)
    {
        var tileRows = HalfGemmRows(rows);
        var tiles = (long)Ceiling(outputs, HalfGemmWeightRows) * Ceiling(rows, tileRows);
        if (tiles >= multiprocessors)
        {
            return 1;
        }

        var perMultiprocessor = Math.Clamp(227 * 1024 / HalfGemmSharedBytes(tileRows), 1, 4);
        var wanted = (int)Math.Min(8, perMultiprocessor * multiprocessors / tiles);
        return Math.Clamp(wanted, 1, Math.Max(1, columns / 32 / 4));
    }

    /// <summary>gemm_hopper.cu's tiles: 128 × 128, 128 × 256 (prefill) and 256 × 128 (decode batches of a few hundred rows).</summary>
    public static readonly WarpgroupTile[] WarpgroupGemmTiles = [new(128, 128), new(128, 256), new(256, 128)];

    /// <summary>K per gemm_hopper.cu stage (WG_BK): the Hopper GEMM needs K to be a multiple of it.</summary>
    public const int WarpgroupGemmStageColumns = 64;

    /// <summary>Rows of one of the Hopper GEMM's bulk tensor copies (TMA_BOX_ROWS): a tile's rows are whole boxes.</summary>
    public const int WarpgroupGemmBoxRows = 64;

    /// <summary>
    /// Whether an F16/BF16 GEMM of <paramref name="rows"/> activation rows takes the Hopper GEMM (where the device has it):
    /// above 64 rows, where gemm_half_tc's 32- and 64-row decode tiles stop (a 128-row tile would do their work twice or
    /// four times over), and K a multiple of the 64-value stages.
    /// </summary>
    public static bool UseWarpgroupGemm(int rows, int columns) => rows > 64 && columns % WarpgroupGemmStageColumns == 0;

    /// <summary>
    /// The Hopper GEMM's tile for a product: 128 × 256 where such tiles alone give every multiprocessor a block (prefill:
    /// one block an SM, half the shared-memory reads of the activations per multiply); else, above 128 rows, 256 × 128
    /// (one block an SM copying 48 KB a stage where two 128 × 128 blocks copy 64 KB: a Llama-3-8B BF16 batch-256 step
    /// 3.2 % faster, H100, 2026-11-28); else 128 × 128 (two blocks an SM), split K filling the rest.
    /// </summary>
    /// <param name="rowTiles256">False keeps 128 × 128 where 256 × 128 would be picked (GpuCheck's A/B).</param>
    public static WarpgroupTile WarpgroupGemmTile(int rows, int outputs, int multiprocessors, bool rowTiles256 = true) =>
        (long)Ceiling(outputs, 256) * Ceiling(rows, 128) >= multiprocessors ? new(128, 256)
        : rows > 128 && rowTiles256 ? new(256, 128)
        : new(128, 128);

    /// <summary>
    /// How many ways the Hopper GEMM splits K: one where the tiles fill the blocks the GPU holds at once (two an SM for
    /// 128 × 128 tiles, one for the others), else enough to fill them, at most 8, each split at least 4 stages of 64.
    /// </summary>
    public static int WarpgroupGemmSplits(int rows, int outputs, int columns, int multiprocessors, WarpgroupTile tile)
    {
        var tiles = (long)Ceiling(outputs, tile.WeightRows) * Ceiling(rows, tile.ActivationRows);
        var slots = (long)tile.BlocksPerMultiprocessor * multiprocessors;
        if (tiles >= slots)
        {
            return 1;
        }

        var wanted = (int)Math.Min(8, slots / tiles);
        return Math.Clamp(wanted, 1, Math.Max(1, columns / WarpgroupGemmStageColumns / 4));
    }

    /// <summary>The activation-row bounds that GEMV kernels are compiled for (the <c>_mR</c> suffixes).</summary>
    public static int[] GemvVariants(bool isFloat) => isFloat ? [1, 8] : [1, 8, 32];

    /// <summary>
    /// The GEMV variant for <paramref name="rows"/> activation rows: its row bound, the weight rows each warp works on (RW in matmul.cu: 4; 2 for nibbles at one row,
    /// which keep 4 blocks per row in flight instead; 2 for 32 activation rows, whose 64 accumulators per lane leave no
    /// registers for more), and whether the block's warps share their rows (<see cref="GemvShape.SplitK"/>).
    /// </summary>
    /// <remarks>
    /// One activation row takes the split variant. It began as the narrow matrices' kernel (below 24 owner warps an SM,
    /// the int8 one kept unsplit for a single wave of short rows); a whole-step A/B on an H100 (docs/performance.md, "Every
    /// one-row GEMV split") then found splitting every matrix faster in every model timed: Llama-3-8B BF16 177.1 → 180.8
    /// tok/s, Q8_0 268.0 → 273.3, Llama-3.2-1B BF16 838.5 → 884.8, Q8_0 1,149.5 → 1,189.5, Qwen3-0.6B BF16 1,032.3 →
    /// 1,037.7.
    /// </remarks>
    /// <param name="splitK">Forces the one-row split variant on or off (GpuCheck times both); null: split unless the weight
    /// (group) is wide (<see cref="WideGemvRows"/>).</param>
    /// <param name="weightRows">Rows of the weight, or of all weights of a group launched together.</param>
    public static GemvShape Gemv(int rows, CudaWeightLayout layout, bool? splitK = null, int weightRows = 0)
    {
        switch (rows)
        {
            case <= 0:
                throw new ArgumentOutOfRangeException(nameof(rows), rows, "A matmul needs at least one activation row.");
            case 1:
                return splitK ?? !(weightRows >= WideGemvRows && layout is CudaWeightLayout.Float32 or CudaWeightLayout.Float16 or CudaWeightLayout.BFloat16)
                    ? new GemvShape(1, GemvSplitRows(layout), SplitK: true)
                    : new GemvShape(1, layout == CudaWeightLayout.Nibble ? 2 : 4, SplitK: false);
            case <= 8:
                return new GemvShape(8, 4, SplitK: false);
            case <= QuantizedGemvMaxRows:
                return new GemvShape(32, 2, SplitK: false);
            default:
                throw new ArgumentOutOfRangeException(nameof(rows), rows, $"GEMV kernels serve at most {QuantizedGemvMaxRows} activation rows.");
        }
    }

    /// <summary>
    /// Weight rows from which a one-row GEMV over float weights keeps whole rows in each warp (<c>gemv_*_m1</c>) instead
    /// of splitting them among the block's warps: there each warp's longer stretch of loads streams better than many short
    /// split blocks. Llama-3-8B BF16 alone (H200, 2026-11-28): logits 0.234 against 0.254 ms, gate/up 1.737 against 1.852
    /// (that one takes the gated split GEMV, 1.825, which saves silu_mul's launch); q/k/v (6,144 rows), attention output
    /// and down (4,096) ran faster split. In the step against every GEMV split beside it: +0.4 % (8B, contexts 128 and
    /// 2,048), +0.7 / +0.2 % (Llama-3.2-1B). Quantized weights stay split: int8 warps holding 2 units (80 registers) lost
    /// 3.2 % in the Llama-3-8B Q8_0 step (gate/up 1.053 against 1.022 ms alone), nibble warps were slower at every width.
    /// </summary>
    public const int WideGemvRows = 16384;

    /// <summary>
    /// The gated split GEMV's shape (<c>_m1_split_gated</c>): a block covers 4 output rows, reading those rows of gate and
    /// of up (8 weight rows, as the float split's 4 rows × 2 chunks in flight).
    /// </summary>
    public static GemvShape GatedGemv { get; } = new(1, 4, SplitK: true);

    /// <summary>
    /// Weight rows the block of a split GEMV shares (RW of the _m1_split kernels): 8 for nibbles, whose 4096-wide rows are
    /// then one 32-value block for each of the block's 128 threads; 4 for every other layout.
    /// </summary>
    public static int GemvSplitRows(CudaWeightLayout layout) => layout == CudaWeightLayout.Nibble ? 8 : 4;

    /// <summary>
    /// The grid of the strided split GEMV (<c>_m1_split_strided</c>, quantized layouts) for a split GEMV of <paramref name="grid"/>
    /// blocks over rows of <paramref name="columns"/> values: one wave, <paramref name="natural"/> blocks (as its registers
    /// allow) on each of the <paramref name="multiprocessors"/>, where the split grid is larger than that and a pass gives
    /// every thread all its units (<see cref="StridedGemvMinColumns"/>); else null (the plain split).
    /// </summary>
    public static int? StridedGemvGrid(int grid, CudaWeightLayout layout, int columns, int multiprocessors, int natural)
    {
        var wave = natural * multiprocessors;
        return layout is CudaWeightLayout.Int8 or CudaWeightLayout.Nibble && columns >= StridedGemvMinColumns && natural > 0 && grid > wave
            ? wave : null;
    }

    /// <summary>
    /// The narrowest rows the strided split GEMV takes: 128 threads × 2 half-block units of 16 int8 values (or 1 block of 32
    /// nibbles), so that each pass has every thread's loads of a row in flight. Narrower, half the threads' second unit is
    /// empty and it lost to the plain split (H200, 2026-11-28, Llama-3.2-1B Q8_0, K = 2,048: gate/up alone 0.182 against
    /// 0.179 ms, logits 0.079 against 0.073, the step −2.5 %), where at K = 4,096 and 14,336 it won (Llama-3-8B Q8_0: +4.6 %).
    /// </summary>
    public const int StridedGemvMinColumns = GemvWarps * 32 * 2 * 16;

    /// <summary>
    /// Resident blocks an SM that a one-row split GEMV of <paramref name="grid"/> blocks is held to, where its registers
    /// allow <paramref name="natural"/> (<see cref="CudaBackend.SpreadSplitGemvs"/>): for a grid of at most half a wave,
    /// as few as still take it at once, ceil(grid / SMs); else null (not held). Such a grid is otherwise not spread over
    /// every SM: under dependent launch its blocks are placed while the kernel before it still holds most SMs, so the first
    /// SMs to free up take as many as fit and the rest none. Measured on an H200 (2026-11-28, docs/performance.md, "Split
    /// GEMVs under half a wave spread over every SM"): Llama-3.2-1B BF16's down GEMV (512 blocks, 8 an SM by its registers)
    /// alone 0.147 against 0.165 ms at 4 an SM, the step +7.1 / +7.4 % at contexts 128 / 2,048 (Qwen3-0.6B BF16 +2.4 /
    /// +2.3 %); holding every grid under one wave also took Llama-3-8B Q4_0's q/k/v (768 blocks, 7 an SM: 0.83 of a wave)
    /// to 6, which lost 0.6 / 1.0 %, hence half a wave.
    /// </summary>
    public static int? SplitGemvBlocksPerMultiprocessor(int grid, int multiprocessors, int natural) =>
        2L * grid <= (long)natural * multiprocessors ? Ceiling(grid, multiprocessors) : null;

    /// <summary>
    /// Dynamic shared memory that holds a kernel to <paramref name="blocks"/> resident blocks an SM, whatever its registers
    /// allow: each block then takes just over 1 / (blocks + 1) of the SM's shared memory (with the per-block reservation and
    /// the kernel's static bytes counted in, in the 128-byte units it is allocated in). The split GEMVs' resident blocks
    /// followed their register counts, and 6 blocks an SM ran faster than 7 (docs/performance.md, "RoPE in the q/k/v GEMV;
    /// …"); this sets the number on purpose, for GpuCheck to sweep. Null where the kernel's static bytes alone exceed it.
    /// </summary>
    public static int? SharedBytesForBlocksPerMultiprocessor(int blocks, int sharedPerMultiprocessor, int reservedPerBlock, int staticBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blocks);
        var perBlock = (sharedPerMultiprocessor / (blocks + 1) / SharedAllocationUnit + 1) * SharedAllocationUnit;
        var dynamic = perBlock - reservedPerBlock - staticBytes;
        return dynamic >= 0 && (long)blocks * perBlock <= sharedPerMultiprocessor ? dynamic : null;
    }

    /// <summary>Bytes shared memory is allocated to a block in (Hopper, Ampere: 128).</summary>
    public const int SharedAllocationUnit = 128;

    /// <summary>Dynamic shared memory a launch may ask for without raising the kernel's limit first (CUDA's 48 KB).</summary>
    public const int DefaultDynamicSharedLimit = 48 * 1024;

    /// <summary>Weights one GEMV launch can serve (the parts p0…p2 of matmul.cu).</summary>
    public const int MaxGemvParts = 3;

    /// <summary>
    /// Whether weights (kernel family, rows) can share one GEMV launch: at most <see cref="MaxGemvParts"/>, one family (the
    /// same kernel and row layout), and every part but the last a whole number of warps' rows, so no warp straddles two.
    /// </summary>
    public static bool CanShareGemvLaunch(ReadOnlySpan<(string Family, int Rows)> parts, int rowsPerWarp)
    {
        if (parts.Length is 0 or > MaxGemvParts)
        {
            return false;
        }

        for (var i = 0; i < parts.Length; i++)
        {
            if (parts[i].Family != parts[0].Family || (i < parts.Length - 1 && parts[i].Rows % rowsPerWarp != 0))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>GEMV blocks for <paramref name="weightRows"/> rows (of all parts of a group).</summary>
    public static int GemvGrid(int weightRows, GemvShape shape) => Ceiling(weightRows, shape.RowsPerBlock);

    public static (int X, int Y) GemmGrid(int rows, int outputs) => (Ceiling(outputs, GemmTile), Ceiling(rows, GemmTile));

    /// <summary>
    /// How to split each token's context across attention blocks: a partition length (a multiple of
    /// <see cref="AttentionTile"/>) and the number of partitions of the longest context. One partition (no reduce pass)
    /// for short contexts (≤ <see cref="AttentionSplitPolicy.UnsplitContext"/>) and where tokens × KV heads alone give every
    /// multiprocessor <see cref="AttentionSplitPolicy.BlocksPerMultiprocessor"/> blocks; otherwise flash-decoding's split
    /// into the number of partitions that brings the blocks to that target, each the shortest whole number of tiles that
    /// needs no more partitions than that, and no shorter than <see cref="AttentionSplitPolicy.MinPartition"/>. Partials cost
    /// headDim floats per query head per split against 2 · partition · headDim per KV head read: G / (2 · partition),
    /// 6 % at a one-tile partition and group 4.
    /// </summary>
    public static (int Partition, int Splits) AttentionSplit(int tokens, int kvHeads, int maxContext, int multiprocessors) =>
        AttentionSplit(tokens, kvHeads, maxContext, multiprocessors, AttentionSplitPolicy.Default);

    /// <inheritdoc cref="AttentionSplit(int, int, int, int)"/>
    public static (int Partition, int Splits) AttentionSplit(int tokens, int kvHeads, int maxContext, int multiprocessors, AttentionSplitPolicy policy)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxContext);
        var whole = Ceiling(maxContext, AttentionTile) * AttentionTile;
        var units = (long)tokens * kvHeads;
        var target = (long)policy.BlocksPerMultiprocessor * multiprocessors;
        if (maxContext <= policy.UnsplitContext || units >= target)
        {
            return (whole, 1);
        }

        var wanted = (int)Math.Min(Ceiling(maxContext, AttentionTile), Ceiling(target, units));
        var partition = Math.Max(policy.MinPartition, Ceiling(Ceiling(maxContext, wanted), AttentionTile) * AttentionTile);
        return (partition, Ceiling(maxContext, partition));
    }

    /// <summary>
    /// Dynamic shared memory of attention_partition: the scaled queries [group][W] float4 (W = 32 per 128-float piece), the
    /// warps' p scratch [4][64] and statistics [4][8] float2, then the cp.async stages — 2 of a float32 cache, 4 of an f16
    /// or fp8 one, each a tile's K and V rows (<see cref="AttentionTile"/> rows, half that above 128) — which the 4 warps'
    /// accumulators [4][8 / pieces][W] float4 reuse at the end.
    /// </summary>
    public static int AttentionSharedBytes(int group, int headDim, int elementBytes)
    {
        var pieces = headDim > 128 ? 2 : 1;
        var width = 32 * pieces * 4;  // floats of a zero-padded row
        var stages = (elementBytes == 4 ? 2 : 4) * 2 * (AttentionTile / pieces) * headDim * elementBytes;
        var accumulators = 4 * (8 / pieces) * width * sizeof(float);
        return (group * width + 4 * 64 + 4 * AttentionMaxGroup * 2) * sizeof(float) + Math.Max(stages, accumulators);
    }

    /// <summary>
    /// Whether attention_decode_f16_tc / _fp8_tc serve decode over an f16 / fp8 cache of this geometry (head dimensions
    /// that are whole mma k-steps of 16, up to 128; the group is at most 8 either way); others take attention_partition_f16
    /// / _fp8.
    /// </summary>
    public static bool DecodeTensorCoreSupports(int group, int headDim) =>
        group is >= 1 and <= AttentionMaxGroup && headDim is > 0 and <= DecodeTensorCoreMaxHeadDim && headDim % 16 == 0;

    /// <summary>Largest head dimension of attention_decode_f16_tc (PF_MAX_DIM): its O fragments are 64 floats a lane there.</summary>
    public const int DecodeTensorCoreMaxHeadDim = 128;

    /// <summary>
    /// Dynamic shared memory of attention_decode_f16_tc (<paramref name="elementBytes"/> 2): 3 stages of a 64-position
    /// tile's K and V rows, each headDim + 8 halves (the padding spreads ldmatrix's rows over the banks), then the warps'
    /// statistics [4][8] float2; the warps' accumulators [4][8][headDim] float reuse the stages at the end. 104 KB at
    /// headDim 128: two blocks per H100 SM. attention_decode_fp8_tc (1): the stages hold headDim + 16 bytes of codes a row,
    /// and each of the 4 warps has [16][headDim + 8] halves for its widened V rows — 71 KB at 128: three blocks per SM.
    /// </summary>
    public static int DecodeTensorCoreSharedBytes(int headDim, int elementBytes)
    {
        var stats = 4 * AttentionMaxGroup * 2 * sizeof(float);
        return elementBytes == 1
            ? 3 * 2 * 64 * (headDim + 16) + 4 * 16 * (headDim + 8) * sizeof(ushort) + stats
            : 3 * 2 * 64 * (headDim + 8) * sizeof(ushort) + stats;
    }

    /// <summary>The most <see cref="AttentionSharedBytes"/> asks for (group 8, head dimension 256, a float32 cache): ≈ 78 KB.</summary>
    public static int AttentionMaxSharedBytes => AttentionSharedBytes(AttentionMaxGroup, AttentionMaxHeadDim, sizeof(float));

    /// <summary>Threads per attention_prefill block (PF_THREADS): 8 warps of 16 query rows.</summary>
    public const int PrefillThreads = 256;

    /// <summary>Query rows per attention_prefill block (PF_ROWS): 8 warps × the 16 rows of an mma tile.</summary>
    public const int PrefillTile = 128;

    /// <summary>
    /// Shortest run of consecutive tokens (one sequence, consecutive positions) that takes attention_prefill; shorter runs
    /// (decode tokens, the small chunks of a mixed batch) stay on attention_partition. 16 is one warp's mma row tile: a
    /// shorter run leaves every warp of the block with rows it computes for nothing, and reads each K/V row once per query
    /// head where attention_partition reads it once per group and splits long contexts across blocks. Not yet tuned by a
    /// measurement.
    /// </summary>
    public const int PrefillMinRun = 16;

    /// <summary>Largest head dimension attention_prefill serves (PF_MAX_DIM: its Q and O fragments live in registers).</summary>
    public const int PrefillMaxHeadDim = 128;

    /// <summary>Whether attention_prefill serves this head dimension: a multiple of the mma's k of 16, up to 128.</summary>
    public static bool PrefillSupports(int headDim) => headDim is > 0 and <= PrefillMaxHeadDim && headDim % 16 == 0;

    /// <summary>Dynamic shared memory of attention_prefill (float32 cache): K and V tiles [64][headDim + 8] f16 and two tiles' slots.</summary>
    public static int PrefillSharedBytes(int headDim) => 2 * PrefillKeys * (headDim + 8) * sizeof(ushort) + 2 * PrefillKeys * sizeof(int);

    /// <summary>
    /// Dynamic shared memory of attention_prefill_f16 (<paramref name="elementBytes"/> 2): 3 stages (PF_STAGES) of K and V
    /// tiles [64][headDim + 8] f16, 102 KB at 128; attention_prefill_fp8 (1): 3 stages of [64][headDim] codes and the
    /// widened K and V tiles [64][headDim + 8] f16, 82 KB at 128.
    /// </summary>
    public static int PrefillCpAsyncSharedBytes(int headDim, int elementBytes) => elementBytes == 1
        ? 3 * 2 * PrefillKeys * headDim + 2 * PrefillKeys * (headDim + 8) * sizeof(ushort)
        : 3 * 2 * PrefillKeys * (headDim + 8) * sizeof(ushort);

    /// <summary>Positions per K/V tile of attention_prefill (PF_KEYS).</summary>
    public const int PrefillKeys = 64;

    /// <summary>
    /// How many query tiles <see cref="BuildQueryTiles"/> makes, how many tokens it leaves to attention_partition, and the
    /// longest context among those.
    /// </summary>
    public static (int Tiles, int RestTokens, int RestMaxContext) CountQueryTiles(ReadOnlySpan<int> positions, ReadOnlySpan<int> sequences)
    {
        int tiles = 0, rest = 0, restContext = 0;
        for (int start = 0, end; start < positions.Length; start = end)
        {
            end = RunEnd(positions, sequences, start);
            if (end - start >= PrefillMinRun)
            {
                tiles += Ceiling(end - start, PrefillTile);
            }
            else
            {
                rest += end - start;
                for (var t = start; t < end; t++)
                {
                    restContext = Math.Max(restContext, positions[t] + 1);
                }
            }
        }

        return (tiles, rest, restContext);
    }

    /// <summary>
    /// Splits a batch's tokens between the attention kernels: runs of consecutive tokens of one sequence at consecutive
    /// positions, of at least <see cref="PrefillMinRun"/> tokens, cut from their start into tiles of up to
    /// <see cref="PrefillTile"/> tokens, written to <paramref name="tiles"/> as (first token, count) pairs; every other token
    /// to <paramref name="restTokens"/> in batch order. The destinations must hold what <see cref="CountQueryTiles"/> counts.
    /// </summary>
    public static void BuildQueryTiles(ReadOnlySpan<int> positions, ReadOnlySpan<int> sequences, Span<int> tiles, Span<int> restTokens)
    {
        int tile = 0, rest = 0;
        for (int start = 0, end; start < positions.Length; start = end)
        {
            end = RunEnd(positions, sequences, start);
            if (end - start >= PrefillMinRun)
            {
                for (var first = start; first < end; first += PrefillTile)
                {
                    tiles[2 * tile] = first;
                    tiles[2 * tile + 1] = Math.Min(PrefillTile, end - first);
                    tile++;
                }
            }
            else
            {
                for (var t = start; t < end; t++)
                {
                    restTokens[rest++] = t;
                }
            }
        }
    }

    /// <summary>The end (exclusive) of the run of consecutive tokens of one sequence at consecutive positions from <paramref name="start"/>.</summary>
    private static int RunEnd(ReadOnlySpan<int> positions, ReadOnlySpan<int> sequences, int start)
    {
        var end = start + 1;
        while (end < positions.Length && sequences[end] == sequences[start] && positions[end] == positions[end - 1] + 1)
        {
            end++;
        }

        return end;
    }

    /// <summary>Values an embed_rows thread gathers before it stores them (EMBED_ITEMS in elementwise.cu).</summary>
    public const int EmbedItems = 4;

    /// <summary>Threads of an embed_rows block: one per <see cref="EmbedItems"/> values, whole warps, at most 1024 (wider rows loop).</summary>
    public static int EmbedThreads(int columns) => Math.Clamp(Ceiling(Ceiling(columns, EmbedItems), 32) * 32, 32, 1024);

    /// <summary>
    /// Threads of an rms_norm_rows block: one per 4 values up to 1024, whole warps (the fused quantization needs them); each
    /// thread holds at most <see cref="NormItems"/> float4 of the row.
    /// </summary>
    public static int NormThreads(int columns)
    {
        if (columns % 4 != 0 || columns > NormItems * 4 * 1024)
        {
            throw new NotSupportedException(
                $"The CUDA backend's RMS norm takes rows of a multiple of 4 values up to {NormItems * 4 * 1024}, not {columns}; use the CPU backend for this model.");
        }

        return Math.Clamp(Ceiling(columns / 4, 32) * 32, 32, 1024);
    }

    /// <summary>float4 items an rms_norm_rows thread holds in registers (NORM_ITEMS in elementwise.cu).</summary>
    public const int NormItems = 4;

    /// <summary>
    /// The float4 items each thread of the norm for rows of <paramref name="columns"/> values holds: 1 up to 4,096 values
    /// (1,024 threads cover the row once: <c>rms_norm_rows_1</c>), else <see cref="NormItems"/>.
    /// </summary>
    public static int NormItemsFor(int columns) => Ceiling(columns, 4) <= 1024 ? 1 : NormItems;

    /// <summary>rope_store_kv's blocks per token: one thread per rotated pair of every query and key head, 128 per block.</summary>
    public static int RopeBlocksPerToken(int heads, int kvHeads, int headDim) => Ceiling((heads + kvHeads) * (headDim / 2), RopeThreads);

    /// <summary>Threads of a rope_store_kv block.</summary>
    public const int RopeThreads = 128;

    /// <summary>
    /// Whether rope_store_kv can apply per-head q/k norms itself: every head's pairs within one block (a power of two of at
    /// most <see cref="RopeThreads"/> pairs: head dimensions 2 … 256).
    /// </summary>
    public static bool RopeFusesHeadNorms(int headDim) => headDim / 2 is > 0 and <= RopeThreads && RopeThreads % (headDim / 2) == 0 && headDim % 2 == 0;

    public static int Ceiling(int value, int divisor) => (value + divisor - 1) / divisor;

    public static long Ceiling(long value, long divisor) => (value + divisor - 1) / divisor;
}

/// <summary>
/// The knobs of <see cref="CudaLaunchGeometry.AttentionSplit(int, int, int, int, AttentionSplitPolicy)"/>, settable on the
/// backend (<see cref="CudaBackend.AttentionPolicy"/>) so that GpuCheck times policies side by side (its kernel benchmarks
/// print every policy below for batch 1 and 32 at contexts 129, 2048 and 8192).
/// </summary>
/// <param name="UnsplitContext">Contexts up to which a token's whole context is one block (no reduce pass).</param>
/// <param name="BlocksPerMultiprocessor">Blocks per multiprocessor a split aims at; three blocks of 4 warps fit an SM at
/// once at ≈ 160 registers a thread.</param>
/// <param name="MinPartition">Shortest partition (a multiple of <see cref="CudaLaunchGeometry.AttentionTile"/>): a block's
/// fixed cost (queries in, the warps' merge, partials out) is paid per partition.</param>
public readonly record struct AttentionSplitPolicy(int UnsplitContext, int BlocksPerMultiprocessor, int MinPartition)
{
    /// <summary>
    /// From timing policies side by side (Llama-3-8B attention, 32/8 × 128, fp32 KV; H200, 2026-11-27): splitting pays even
    /// at context 129 (5 partitions and the reduce pass 11.8 µs against one block per KV head 22.0 µs), so only contexts of
    /// one minimum partition stay whole; 4 blocks per SM beat 2 and 8 at batch 32 (context 2048: 293 µs against 407 and 329;
    /// 8192: 1,097 against 1,572 and 1,276); a minimum partition of 64 gave batch 1 at context 2048 17.8 µs against 20.7 with
    /// 32 (36.3 with 256), and batch 1 at 8192 took 60–63 µs for every minimum up to 256.
    /// </summary>
    public static AttentionSplitPolicy Default { get; } = new(64, 4, 64);

    /// <summary>
    /// attention_decode_f16_tc's: two of its blocks fit an SM (104 KB of stages each), and aiming at two halves the
    /// partitions of batch 1 at long contexts. H100, Llama-3-8B attention over f16 (2026-11-27, against <see cref="Default"/>):
    /// batch 1 at context 129 / 2048 / 8192 13.0 / 15.0 / 23.6 µs against 13.6 / 15.5 / 27.6; batch 32 at 2048 / 8192
    /// 121.9 / 421.7 against 125.2 / 429.0. The float32 kernel keeps <see cref="Default"/> (at 2 its batch 32 at 2048 went
    /// 206.6 → 264.2 µs).
    /// </summary>
    public static AttentionSplitPolicy TensorCore { get; } = new(64, 2, 64);

    /// <summary>
    /// attention_decode_fp8_tc's: three of its blocks fit an SM (71 KB of shared memory each at headDim 128, registers
    /// for three), and Nsight Compute showed the tensor-core decode latency-bound at 8 warps an SM, so the partitions aim
    /// at all three.
    /// </summary>
    public static AttentionSplitPolicy TensorCoreFp8 { get; } = new(64, 3, 64);
}

/// <summary>
/// A GEMV launch shape (<see cref="CudaLaunchGeometry.Gemv"/>): the kernel's activation-row bound (its <c>_mR</c> suffix),
/// the weight rows each warp works on, and whether the block's warps share those rows, splitting K among them (the
/// <c>_m1_split</c> kernels: a block covers <see cref="RowsPerWarp"/> rows rather than four times that).
/// </summary>
public readonly record struct GemvShape(int MaxRows, int RowsPerWarp, bool SplitK)
{
    /// <summary>Weight rows one block covers.</summary>
    public int RowsPerBlock => SplitK ? RowsPerWarp : CudaLaunchGeometry.GemvWarps * RowsPerWarp;
}

/// <summary>
/// A gemm_hopper.cu tile: activation rows (a warpgroup of 128 threads per 64) × weight rows, K in stages of 64 halves
/// through shared memory — 3 stages for 128 × 128 (97 KB: two blocks an SM), 4 for the larger ones (193 KB: one).
/// </summary>
public readonly record struct WarpgroupTile(int ActivationRows, int WeightRows)
{
    /// <summary>No Hopper tile: as <see cref="CudaBackend.WarpgroupGemmOverride"/>, keeps the Hopper GEMM off (gemm_half_tc).</summary>
    public static readonly WarpgroupTile None = default;

    /// <summary>A consumer warpgroup per 64 activation rows and the producer warp that issues the tile's copies.</summary>
    public int Threads => ActivationRows / 64 * 128 + 32;

    public int BlocksPerMultiprocessor => Stages == 3 ? 2 : 1;

    /// <summary>Dynamic shared memory: the stages, plus 1 KB for aligning the buffer to the swizzle's 1024 bytes.</summary>
    public int SharedBytes => Stages * (ActivationRows + WeightRows) * 128 + 1024;

    /// <summary>The kernels' name suffix: <c>_n128</c>, <c>_n256</c>, <c>_m256_n128</c>.</summary>
    public string KernelSuffix => ActivationRows == 128 ? $"_n{WeightRows}" : $"_m{ActivationRows}_n{WeightRows}";

    private int Stages => ActivationRows == 128 && WeightRows == 128 ? 3 : 4;

    public override string ToString() => $"{ActivationRows}×{WeightRows}";
}
