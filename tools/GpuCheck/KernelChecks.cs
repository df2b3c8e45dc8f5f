using System.Runtime.InteropServices;
using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Backends.Sampling;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Synthetic;

namespace AspireAi.GpuCheck;

/// <summary>
/// Every backend operation on the GPU against the CPU backend, through <see cref="IBackend"/> on both: fresh random inputs
/// for each case (never zeros), the GPU output poisoned with NaN first (so an unwritten element fails), many shapes with
/// ragged tails (row counts not a multiple of the tiles, K with an odd number of blocks).
/// </summary>
internal sealed class KernelChecks(CudaBackend gpu, CpuBackend cpu, Report report, bool quick)
{
    // Bounds on ‖gpu − cpu‖ / ‖cpu‖. Both backends quantize activations to int8 per 32 values the same way, so quantized
    // matmuls differ only by float summation order (and rare rounding ties): 1e-3 leaves room. F16 tensor-core GEMM rounds
    // the activations to fp16 (11-bit mantissa, ≤ 2⁻¹¹ relative each): ~3e-4 expected over K terms; BF16 rounds them to
    // 8 bits (2⁻⁸ = 4e-3 each, averaging down over K): 1e-2. Element-wise float ops: 1e-5.
    private const double QuantBound = 1e-3;
    private const double FloatBound = 1e-5;
    private const double F32MatMulBound = 1e-5;
    private const double F16GemmBound = 2e-3;
    private const double Bf16GemmBound = 1.5e-2;

    // The fp32 attention kernels (attention_partition/attention_reduce) differ from the CPU only in summation order.
    private const double AttentionBound = 1e-4;

    // attention_prefill rounds four things to f16 (10-bit mantissa; round to nearest: relative error ≤ u = 2⁻¹¹ = 4.9e-4,
    // RMS ≈ u/2 over random mantissas), everything else fp32. With o = Σⱼ pⱼvⱼ / Σⱼ pⱼ over random-normal q, k, v, each
    // rounding's error is a sum of independent terms weighted like o itself, so it is relative to ‖o‖ (not to Σ p|v|):
    // v: Σ pⱼvⱼδⱼ, relative ≈ ε; p (its row sum adds the rounded p, so o stays a convex combination): Σ pⱼδⱼ(vⱼ − o),
    // relative ≈ ε; q·scale and k: the log2-score error Δsⱼ = Σᵢ qᵢkᵢ(δqᵢ + δkᵢ)·scale has RMS √2·ε in natural-log units
    // (q·k/√d is ~N(0, 1)), moving o by Σ pⱼΔsⱼ(vⱼ − o), relative ≈ √2·ε. Independent, they add to ≈ 2ε ≈ u in RMS;
    // a float64 simulation of exactly these roundings gave 2.5e-4 … 3.6e-4 for head dims 48/64/128 and contexts of
    // 17/300/2500. 1.5e-3 (3u, every rounding at its maximum and then some) leaves room for that without hiding a
    // masking or indexing error, which moves a row by ≥ 1e-2.
    private const double PrefillAttentionBound = 1.5e-3;

    // An f16 KV cache (--kv-cache-dtype fp16) rounds each key and value once, when rope_store_kv_f16 stores it (round to
    // nearest even: relative error ≤ u = 2⁻¹¹ = 4.9e-4 per value, RMS ε ≈ u/2); attention_partition_f16 converts them back
    // exactly and computes in fp32 as attention_partition does, so two of the prefill bound's four roundings remain. As
    // derived there, for o = Σⱼ pⱼvⱼ / Σⱼ pⱼ over random-normal q, k, v: V's rounding moves o by Σ pⱼvⱼδⱼ, relative ≈ ε;
    // K's moves each log2-score by Σᵢ qᵢkᵢδkᵢ·scale (RMS ε in natural-log units, q·k/√d being ~N(0, 1)) and o by
    // Σ pⱼΔsⱼ(vⱼ − o), relative ≈ ε. Independent, they add to √2·ε ≈ 0.7u ≈ 3.5e-4 in RMS, plus the fp32 kernel's summation
    // order (AttentionBound). 1e-3 ≈ 2u holds both roundings at their maximum, and stays an order of magnitude below the
    // ≥ 1e-2 by which a masking or indexing error moves a row. The prefill kernel's tiles are f16 either way, and an f16
    // cache holds exactly the halves it would round a float32 cache's values to, so over an f16 cache attention_prefill_f16
    // must equal attention_prefill over the float32 cache bit for bit (checked so), and the CPU within PrefillAttentionBound.
    private const double F16KvAttentionBound = 1e-3;

    /// <summary>
    /// The bound for decode tokens over an f16 cache: attention_decode_f16_tc, where it serves the geometry, rounds q and p
    /// to f16 as attention_prefill does (all four of that bound's roundings); attention_partition_f16 the other geometries.
    /// </summary>
    private static double F16DecodeBound(int heads, PagedKvCache cache, int headDim) =>
        CudaLaunchGeometry.DecodeTensorCoreSupports(heads / cache.Shape.KvHeads, headDim) ? PrefillAttentionBound : F16KvAttentionBound;

    private readonly Random _random = new(20261126);

    private static readonly GgmlType[] AllTypes =
        [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.F16, GgmlType.BF16, GgmlType.F32];

    public void Run()
    {
        MatMuls();
        MatMulGroups();
        StridedGemvs();
        FoldedNorms();
        SplitSumsInNorm();
        RopeInProjections();
        WarpgroupGemmGroups();
        GatedMatMuls();
        GatedGemvs();
        Embeddings();
        Norms();
        ElementWise();
        Attention();
        Fp8KvCache();
        LongDecode();
        Sampling();
    }

    private (DeviceTensor Gpu, DeviceTensor Cpu) Pair(int rows, int columns, float[]? values = null)
    {
        var g = gpu.CreateTensor(rows, columns);
        var c = cpu.CreateTensor(rows, columns);
        if (values is not null)
        {
            gpu.WriteRows(g, values);
            cpu.WriteRows(c, values);
        }
        else
        {
            Poison(g);
        }

        return (g, c);
    }

    private void Poison(DeviceTensor t) => gpu.WriteRows(t, Enumerable.Repeat(float.NaN, t.Rows * t.Columns).ToArray());

    private double Compare(DeviceTensor g, DeviceTensor c, int rows)
    {
        var a = new float[rows * g.Columns];
        var b = new float[rows * c.Columns];
        gpu.ReadRows(g, rows, a);
        cpu.ReadRows(c, rows, b);
        return Report.RelativeError(a, b);
    }

    private void MatMuls()
    {
        int[] rowCounts = quick ? [1, 9, 33, 200] : [1, 3, 8, 9, 32, 33, 67, 200, 300];
        foreach (var type in AllTypes)
        {
            var kQuant = GgmlTypeInfo.BlockSize(type) == 256;
            // 288: K not a multiple of 64 (no tensor-core GEMM); 320 and 2048: with it.
            // 1024 for the half types in a quick run: the Hopper GEMM splits K at 33 rows (320 is too short to split).
            int[] ks = quick ? (kQuant ? [256] : type is GgmlType.F16 or GgmlType.BF16 ? [288, 320, 1024] : [288, 320]) : kQuant ? [256, 2304] : [288, 2048];
            int[] ns = quick ? [100] : [100, 4100];
            foreach (var k in ks)
            {
                foreach (var n in ns)
                {
                    using var weight = new HostTensor("w", type, [k, n], RandomWeights.Tensor(type, n, k, _random.Next()));
                    using var gw = gpu.LoadWeight(weight.View);
                    using var cw = cpu.LoadWeight(weight.View);
                    foreach (var (rows, split) in WithSplitVariants(rowCounts))
                    {
                        var (gx, cx) = Pair(rows, k, RandomWeights.Floats(rows * k, _random));
                        var (gy, cy) = Pair(rows, n);
                        gpu.GemvSplitOverride = split;
                        gpu.MatMul(gx, gw, gy, rows);
                        gpu.GemvSplitOverride = null;
                        cpu.MatMul(cx, cw, cy, rows);
                        var tensorCore = gpu.Kernels.TensorCoreGemm((CudaWeight)gw) is not null;
                        var gemv = CudaLaunchGeometry.UseGemv(rows, type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16), tensorCore);
                        var bound = type switch
                        {
                            GgmlType.F32 => F32MatMulBound,
                            GgmlType.F16 => gemv ? FloatBound * 10 : F16GemmBound,
                            GgmlType.BF16 => gemv ? FloatBound * 10 : Bf16GemmBound,
                            _ => QuantBound,
                        };
                        var half = type is GgmlType.F16 or GgmlType.BF16;
                        var warpgroup = half && gpu.Kernels.HasWarpgroupGemm && k % CudaLaunchGeometry.WarpgroupGemmStageColumns == 0;
                        var path = gemv ? split == true ? "gemv-split" : "gemv"
                            : warpgroup && CudaLaunchGeometry.UseWarpgroupGemm(rows, k) ? "gemm-wgmma" : tensorCore || half ? "gemm-tc" : "gemm";
                        report.Check($"matmul {type} {path} M={rows} N={n} K={k}", Compare(gy, cy, rows), bound);
                        if (warpgroup && !gemv)
                        {
                            // Every tile of the Hopper GEMM at every batch (9 and 33 rows: a tile mostly past the batch; split
                            // K where the tiles are few), and gemm_half_tc where the rule would take the Hopper one.
                            foreach (var forced in CudaLaunchGeometry.WarpgroupGemmTiles.Prepend(WarpgroupTile.None))
                            {
                                Poison(gy);
                                gpu.WarpgroupGemmOverride = forced;
                                gpu.MatMul(gx, gw, gy, rows);
                                gpu.WarpgroupGemmOverride = null;
                                var splits = forced == WarpgroupTile.None ? 0 : CudaLaunchGeometry.WarpgroupGemmSplits(rows, n, k, gpu.Context.MultiprocessorCount, forced);
                                var variant = forced == WarpgroupTile.None ? "gemm-tc" : $"gemm-wgmma {forced} ({splits} split)";
                                report.Check($"matmul {type} {variant} M={rows} N={n} K={k}", Compare(gy, cy, rows), bound);
                            }
                        }
                        foreach (var t in new[] { gx, cx, gy, cy })
                        {
                            t.Dispose();
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// The activation-row counts to check, one row twice: with warps owning their rows (split false) and with the block
    /// sharing them (true); null leaves the choice to the backend.
    /// </summary>
    private static IEnumerable<(int Rows, bool? Split)> WithSplitVariants(IEnumerable<int> rowCounts) =>
        rowCounts.SelectMany(r => r == 1 ? new (int, bool?)[] { (1, false), (1, true) } : [(r, null)]);

    /// <summary>
    /// Groups through MatMulGroup (one grouped GEMV launch where the weights share a kernel, else one each): q/k/v-like row
    /// counts, a last part with a ragged tail, a part that is not whole warps (falls back), and mixed types (as in Q4_K_M;
    /// int8 before nibble rows, whose warps own different row counts; quantized with float, whose paths differ by M).
    /// Each output against the CPU's; the activations are first normalised, so the fused norm quantization is read.
    /// </summary>
    private void MatMulGroups()
    {
        (GgmlType[] Types, int[] Rows)[] groups =
        [
            ([GgmlType.Q8_0, GgmlType.Q8_0, GgmlType.Q8_0], [512, 128, 128]),
            ([GgmlType.Q4_K, GgmlType.Q4_K, GgmlType.Q4_K], [256, 64, 61]),
            ([GgmlType.Q4_0, GgmlType.Q4_0], [102, 36]),
            ([GgmlType.Q4_K, GgmlType.Q4_K, GgmlType.Q6_K], [256, 64, 64]),
            ([GgmlType.BF16, GgmlType.BF16, GgmlType.BF16], [256, 64, 66]),
            ([GgmlType.Q6_K, GgmlType.Q4_K], [64, 62]),
            ([GgmlType.Q8_0, GgmlType.F32], [64, 64]),
        ];
        foreach (var (types, rowsOfParts) in groups)
        {
            var k = types.Any(t => GgmlTypeInfo.BlockSize(t) == 256) ? 512 : 288;
            var hosts = types.Select((t, i) => new HostTensor($"w{i}", t, [k, rowsOfParts[i]], RandomWeights.Tensor(t, rowsOfParts[i], k, _random.Next()))).ToArray();
            var gw = hosts.Select(h => gpu.LoadWeight(h.View)).ToArray();
            var cw = hosts.Select(h => cpu.LoadWeight(h.View)).ToArray();
            using var norm = new HostTensor("norm", GgmlType.F32, [k], RandomWeights.Tensor(GgmlType.F32, 1, k, _random.Next()));
            using var gn = gpu.LoadWeight(norm.View);
            using var cn = cpu.LoadWeight(norm.View);
            foreach (var (rows, split) in WithSplitVariants(quick ? [1, 20] : [1, 5, 20, 32, 40]))
            {
                var (gx, cx) = Pair(rows, k, RandomWeights.Floats(rows * k, _random));
                var outputs = rowsOfParts.Select(n => Pair(rows, n)).ToArray();
                // Twice: the first product makes the int8 copy, after which the norm writes it (fused) for the second.
                gpu.GemvSplitOverride = split;
                for (var pass = 0; pass < 2; pass++)
                {
                    gpu.RmsNorm(gx, gn, 1e-5f, gx, rows);
                    cpu.RmsNorm(cx, cn, 1e-5f, cx, rows);
                    gpu.MatMulGroup(gx, gw.Select((w, i) => new MatMulTarget(w, outputs[i].Gpu)).ToArray(), rows);
                    ((IBackend)cpu).MatMulGroup(cx, cw.Select((w, i) => new MatMulTarget(w, outputs[i].Cpu)).ToArray(), rows);
                }

                gpu.GemvSplitOverride = null;
                var name = $"matmul group {string.Join("+", types.Select((t, i) => $"{t}×{rowsOfParts[i]}"))} M={rows}{(split == true ? " split" : "")} K={k}";
                var error = outputs.Select(o => Compare(o.Gpu, o.Cpu, rows)).Max();
                report.Check(name, error, types[0] == GgmlType.BF16 ? (rows > 8 ? Bf16GemmBound : FloatBound * 10) : QuantBound);
                foreach (var (g, c) in outputs)
                {
                    g.Dispose();
                    c.Dispose();
                }

                gx.Dispose();
                cx.Dispose();
            }

            foreach (var w in gw.Concat(cw))
            {
                w.Dispose();
            }

            foreach (var h in hosts)
            {
                h.Dispose();
            }
        }
    }

    /// <summary>
    /// The one-wave strided split GEMV over quantized weights (<see cref="CudaBackend.StridedSplitGemvs"/>) of more rows than
    /// a wave of split blocks covers: bit for bit the plain split GEMV, and against the CPU; a single weight of a ragged row
    /// count and a gate/up-like group of two; K of one pass (4,096), of several (14,336: down, its last pass half full) and
    /// of a last pass of one unit a thread for a few threads (4,128). The layouts with float scales, which have no strided
    /// kernel, are confirmed to take the plain split.
    /// </summary>
    private void StridedGemvs()
    {
        (GgmlType Type, int K)[] cases = quick
            ? [(GgmlType.Q8_0, 4096), (GgmlType.Q8_0, 14336), (GgmlType.Q4_0, 4096)]
            : [(GgmlType.Q8_0, 4096), (GgmlType.Q8_0, 14336), (GgmlType.Q5_0, 4128), (GgmlType.Q5_0, 14336), (GgmlType.Q4_0, 4096),
               (GgmlType.Q4_0, 14336), (GgmlType.Q4_0, 4128)];
        foreach (var type in new[] { GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q4_K })
        {
            var host = new HostTensor("w", type, [4096, 12002], RandomWeights.Tensor(type, 12002, 4096, _random.Next()));
            var weight = gpu.LoadWeight(host.View);
            var gx = GpuTensor(1, 4096, RandomWeights.Floats(4096, _random));
            var y = GpuTensor(1, 12002);
            var before = gpu.StridedGemvLaunches;
            gpu.GemvSplitOverride = true;
            gpu.MatMul(gx, weight, y, 1);
            gpu.GemvSplitOverride = null;
            var what = $"strided split GEMV: {type} (float scales) takes the plain split";
            if (gpu.StridedGemvLaunches == before)
            {
                report.Pass(what);
            }
            else
            {
                report.Fail(what, "a strided launch was made");
            }

            Dispose([gx, y, weight, host]);
        }

        foreach (var (type, k) in cases)
        {
            foreach (var rowsOfParts in new[] { new[] { 12002 }, new[] { 8192, 4002 } })
            {
                var hosts = rowsOfParts.Select((n, i) => new HostTensor($"w{i}", type, [k, n], RandomWeights.Tensor(type, n, k, _random.Next()))).ToArray();
                var gw = hosts.Select(h => gpu.LoadWeight(h.View)).ToArray();
                var cw = hosts.Select(h => cpu.LoadWeight(h.View)).ToArray();
                var x = RandomWeights.Floats(k, _random);
                var what = $"strided split GEMV {type} {string.Join("+", rowsOfParts)} × K={k}";
                float[][] Run(bool stridedOn)
                {
                    var gx = GpuTensor(1, k, x);
                    var outputs = rowsOfParts.Select(n => GpuTensor(1, n)).ToArray();
                    gpu.GemvSplitOverride = true;
                    gpu.StridedSplitGemvs = stridedOn;
                    gpu.MatMulGroup(gx, gw.Select((w, i) => new MatMulTarget(w, outputs[i])).ToArray(), 1);
                    gpu.StridedSplitGemvs = true;
                    gpu.GemvSplitOverride = null;
                    var ys = outputs.Select(o => Read(o, 1)).ToArray();
                    Dispose([gx, .. outputs]);
                    return ys;
                }

                var launches = gpu.StridedGemvLaunches;
                var on = Run(true);
                if (gpu.StridedGemvLaunches == launches)
                {
                    report.Fail($"{what}: the strided kernel ran", "no strided launch was made");
                }

                var off = Run(false);
                report.BitForBit($"{what}: = the split GEMV", Report.CountDifferentBits([.. on.SelectMany(y => y)], [.. off.SelectMany(y => y)]),
                    rowsOfParts.Sum());
                using var cx = cpu.CreateTensor(1, k);
                cpu.WriteRows(cx, x);
                var expected = rowsOfParts.Select(n => cpu.CreateTensor(1, n)).ToArray();
                ((IBackend)cpu).MatMulGroup(cx, cw.Select((w, i) => new MatMulTarget(w, expected[i])).ToArray(), 1);
                var error = 0.0;
                for (var i = 0; i < rowsOfParts.Length; i++)
                {
                    var c = new float[rowsOfParts[i]];
                    cpu.ReadRows(expected[i], 1, c);
                    error = Math.Max(error, Report.RelativeError(on[i], c));
                    expected[i].Dispose();
                }

                report.Check(what, error, QuantBound);
                Dispose(gw);
                Dispose(cw);
                Dispose(hosts);
            }
        }
    }

    /// <summary>
    /// Groups of half weights on the Hopper GEMM (one launch where every part but the last is a whole number of tiles: with
    /// 128-wide tiles here, while 256-wide tiles fall back to a launch per part), at each tile width forced and as chosen,
    /// against the CPU part by part; 100 rows in the last part make its last tile ragged, and 9 rows split K.
    /// </summary>
    private void WarpgroupGemmGroups()
    {
        if (!gpu.Kernels.HasWarpgroupGemm)
        {
            return;
        }

        int[] partRows = [256, 128, 100];
        const int k = 320;
        foreach (var type in new[] { GgmlType.F16, GgmlType.BF16 })
        {
            var hosts = partRows.Select((n, i) => new HostTensor($"w{i}", type, [k, n], RandomWeights.Tensor(type, n, k, _random.Next()))).ToArray();
            var gw = hosts.Select(h => gpu.LoadWeight(h.View)).ToArray();
            var cw = hosts.Select(h => cpu.LoadWeight(h.View)).ToArray();
            foreach (var rows in new[] { 9, 100, 200 })
            {
                foreach (var tile in CudaLaunchGeometry.WarpgroupGemmTiles.Select(t => (WarpgroupTile?)t).Prepend(null))
                {
                    var (gx, cx) = Pair(rows, k, RandomWeights.Floats(rows * k, _random));
                    var outputs = partRows.Select(n => Pair(rows, n)).ToArray();
                    gpu.WarpgroupGemmOverride = tile;
                    gpu.MatMulGroup(gx, gw.Select((w, i) => new MatMulTarget(w, outputs[i].Gpu)).ToArray(), rows);
                    gpu.WarpgroupGemmOverride = null;
                    ((IBackend)cpu).MatMulGroup(cx, cw.Select((w, i) => new MatMulTarget(w, outputs[i].Cpu)).ToArray(), rows);
                    var label = tile is { } forced ? $"{forced}{(partRows[..^1].All(n => n % forced.WeightRows == 0) ? " one launch" : " a launch per part")}" : "as chosen";
                    report.Check($"matmul group {type}×{string.Join("+", partRows)} wgmma {label} M={rows} K={k}",
                        outputs.Select(o => Compare(o.Gpu, o.Cpu, rows)).Max(), type == GgmlType.BF16 ? Bf16GemmBound : F16GemmBound);
                    foreach (var (g, c) in outputs.Append((gx, cx)))
                    {
                        g.Dispose();
                        c.Dispose();
                    }
                }
            }

            foreach (var w in gw.Concat(cw))
            {
                w.Dispose();
            }

            foreach (var h in hosts)
            {
                h.Dispose();
            }
        }
    }

    /// <summary>
    /// The gated feed-forward product SiLU(x·gateᵀ)·(x·upᵀ) and the down projection after it, against the CPU (products, then
    /// SiluMul, then the down matmul): on the Hopper GEMM's gated kernel (every tile width forced, and as chosen) where the
    /// device has it, else the unfused path. Twice per case: the first pass makes the activation's half copy, which the
    /// gated kernel then writes itself for the second pass's down projection to read. 160 gate rows: a ragged last tile.
    /// </summary>
    private void GatedMatMuls()
    {
        foreach (var type in new[] { GgmlType.F16, GgmlType.BF16 })
        {
            foreach (var (k, f) in new[] { (320, 160), (1024, 192) })
            {
                using var gateHost = new HostTensor("gate", type, [k, f], RandomWeights.Tensor(type, f, k, _random.Next()));
                using var upHost = new HostTensor("up", type, [k, f], RandomWeights.Tensor(type, f, k, _random.Next()));
                using var downHost = new HostTensor("down", type, [f, 64], RandomWeights.Tensor(type, 64, f, _random.Next()));
                var gw = new[] { gpu.LoadWeight(gateHost.View), gpu.LoadWeight(upHost.View), gpu.LoadWeight(downHost.View) };
                var cw = new[] { cpu.LoadWeight(gateHost.View), cpu.LoadWeight(upHost.View), cpu.LoadWeight(downHost.View) };
                var tiles = gpu.Kernels.HasWarpgroupGemm ? CudaLaunchGeometry.WarpgroupGemmTiles.Select(t => (WarpgroupTile?)t).Prepend(null) : [null];
                foreach (var rows in quick ? [9, 200] : new[] { 9, 33, 67, 200 })
                {
                    foreach (var tile in tiles)
                    {
                        var (gx, cx) = Pair(rows, k, RandomWeights.Floats(rows * k, _random));
                        var (gGate, cGate) = Pair(rows, f);
                        var (gUp, cUp) = Pair(rows, f);
                        var (gAct, cAct) = Pair(rows, f);
                        var (gDown, cDown) = Pair(rows, 64);
                        gpu.WarpgroupGemmOverride = tile;
                        for (var pass = 0; pass < 2; pass++)
                        {
                            gpu.GatedMatMul(gx, new MatMulTarget(gw[0], gGate), new MatMulTarget(gw[1], gUp), gAct, rows);
                            gpu.MatMul(gAct, gw[2], gDown, rows);
                        }

                        gpu.WarpgroupGemmOverride = null;
                        ((IBackend)cpu).GatedMatMul(cx, new MatMulTarget(cw[0], cGate), new MatMulTarget(cw[1], cUp), cAct, rows);
                        cpu.MatMul(cAct, cw[2], cDown, rows);
                        var fused = gpu.Kernels.HasWarpgroupGemm && k % CudaLaunchGeometry.WarpgroupGemmStageColumns == 0
                            && (tile is not null || CudaLaunchGeometry.UseWarpgroupGemm(rows, k));
                        var path = fused ? $"wgmma gated{(tile is { } forced ? $" {forced}" : "")}" : "products + silu_mul";
                        var bound = type == GgmlType.BF16 ? Bf16GemmBound : F16GemmBound;
                        report.Check($"gated matmul {type} {path} M={rows} F={f} K={k}", Compare(gAct, cAct, rows), bound);
                        report.Check($"gated matmul {type} {path} M={rows} F={f} K={k}, then down [64 × {f}] from its half copy", Compare(gDown, cDown, rows), 2 * bound);
                        foreach (var t in new[] { gx, cx, gGate, cGate, gUp, cUp, gAct, cAct, gDown, cDown })
                        {
                            t.Dispose();
                        }
                    }
                }

                foreach (var w in gw.Concat(cw))
                {
                    w.Dispose();
                }
            }
        }
    }

    /// <summary>
    /// The one-row gated split GEMV over float weights (<see cref="CudaBackend.GatedGemv"/>): SiLU(gate)·up bit for bit the
    /// split GEMV over gate and up and silu_mul after it (<see cref="CudaBackend.GatedGemv"/> off), and against the CPU;
    /// ragged row counts (not multiples of the block's 4 rows), K of several passes, and an input with a folded norm (a Q4_0
    /// producer's). The gate and up outputs staying NaN show that the gated kernel, not the two launches, ran.
    /// </summary>
    private void GatedGemvs()
    {
        foreach (var (type, k, f, folded) in new[]
        {
            (GgmlType.BF16, 320, 162, false), (GgmlType.F16, 2048, 1000, false), (GgmlType.F32, 512, 301, false),
            (GgmlType.BF16, 14336, 256, false), (GgmlType.BF16, 2048, 516, true),
        })
        {
            using var gateHost = new HostTensor("gate", type, [k, f], RandomWeights.Tensor(type, f, k, _random.Next()));
            using var upHost = new HostTensor("up", type, [k, f], RandomWeights.Tensor(type, f, k, _random.Next()));
            using var producerHost = new HostTensor("producer", GgmlType.Q4_0, [512, k], RandomWeights.Tensor(GgmlType.Q4_0, k, 512, _random.Next()));
            DeviceWeight[] gw = [gpu.LoadWeight(gateHost.View), gpu.LoadWeight(upHost.View), gpu.LoadWeight(producerHost.View)];
            DeviceWeight[] cw = [cpu.LoadWeight(gateHost.View), cpu.LoadWeight(upHost.View), cpu.LoadWeight(producerHost.View)];
            var norm = Vector(RandomWeights.Floats(k, _random, 0.2, 1), "norm");
            var x = RandomWeights.Floats(folded ? 512 : k, _random);
            var h = RandomWeights.Floats(k, _random, 3);
            var what = $"gated split GEMV {type} F={f} K={k}{(folded ? ", input with a folded norm" : "")}";

            float[] Run(bool gated, out bool productsWritten)
            {
                DeviceTensor gx = GpuTensor(1, x.Length, x), gh = GpuTensor(1, k, h), gIn = GpuTensor(1, k, folded ? null : x),
                    gProduct = GpuTensor(1, k), gGate = GpuTensor(1, f), gUp = GpuTensor(1, f), gAct = GpuTensor(1, f);
                if (folded)
                {
                    gpu.MatMulAddRmsNorm(gx, gw[2], gProduct, gh, norm[0], 1e-5f, gIn, 1);
                }

                gpu.GatedGemv = gated;
                gpu.GatedMatMul(gIn, new MatMulTarget(gw[0], gGate), new MatMulTarget(gw[1], gUp), gAct, 1);
                gpu.GatedGemv = true;
                var y = Read(gAct, 1);
                productsWritten = !Read(gGate, 1).Concat(Read(gUp, 1)).All(float.IsNaN);
                Dispose([gx, gh, gIn, gProduct, gGate, gUp, gAct]);
                return y;
            }

            var fused = Run(true, out var fusedWrote);
            var unfused = Run(false, out var unfusedWrote);
            report.BitForBit($"{what}: = split GEMV + silu_mul", Report.CountDifferentBits(fused, unfused), f);
            if (!fusedWrote && unfusedWrote)
            {
                report.Pass($"{what}: the gated kernel ran (gate and up unwritten)");
            }
            else
            {
                report.Fail($"{what}: the gated kernel ran", fusedWrote ? "gate or up was written: the two launches ran" : "the unfused path left gate and up unwritten");
            }

            using var cIn = cpu.CreateTensor(1, k);
            using var cGate = cpu.CreateTensor(1, f);
            using var cUp = cpu.CreateTensor(1, f);
            using var cAct = cpu.CreateTensor(1, f);
            if (folded)
            {
                CpuNormedInput(x, cw[2], h, norm[1], cIn);
            }
            else
            {
                cpu.WriteRows(cIn, x);
            }

            ((IBackend)cpu).GatedMatMul(cIn, new MatMulTarget(cw[0], cGate), new MatMulTarget(cw[1], cUp), cAct, 1);
            var expected = new float[f];
            cpu.ReadRows(cAct, 1, expected);
            report.Check($"{what}: against the CPU", Report.RelativeError(fused, expected), type == GgmlType.F32 ? FloatBound * 10 : QuantBound);
            Dispose(norm);
            Dispose(gw.Concat(cw));
        }
    }

    /// <summary>Embedding rows against the CPU: one pass of the block's threads (768 values) and more than one (4,608).</summary>
    private void Embeddings()
    {
        foreach (var (type, columns) in AllTypes.SelectMany(type => new[] { (type, 768), (type, 4608) }))
        {
            const int vocabulary = 300;
            using var table = new HostTensor("embd", type, [columns, vocabulary], RandomWeights.Tensor(type, vocabulary, columns, _random.Next()));
            using var gw = gpu.LoadWeight(table.View);
            using var cw = cpu.LoadWeight(table.View);
            var batch = new ForwardBatch(37, 1, 4);
            batch.AddSequence([0, 1, 2, 3]);
            for (var i = 0; i < 37; i++)
            {
                batch.AddToken(_random.Next(vocabulary), i, 0, i, false);
            }

            gpu.BeginBatch(batch);
            cpu.BeginBatch(batch);
            var (gy, cy) = Pair(37, columns);
            gpu.Embed(gw, gy);
            cpu.Embed(cw, cy);
            report.Check($"embed {type} 37 tokens × {columns}", Compare(gy, cy, 37), 1e-6);
            gy.Dispose();
            cy.Dispose();
        }
    }

    /// <summary>
    /// q/k/v rotated and stored in the projections' own launch (<see cref="CudaBackend.ProjectQueryKeyValue"/>, one token,
    /// the split GEMV's _rope kernel) against the same call with <see cref="CudaBackend.RopeInProjections"/> off (the split
    /// GEMV, then rope_store_kv_f16): q, k, v and both layers' whole key and value caches (filled alike beforehand, so a
    /// stray store shows) bit for bit — the same arithmetic — and q/k/v against the CPU. rope_store_kv_f16 is left out of
    /// the fused call, so the stores it shows can only come from the GEMV. Where named, the input carries a folded norm
    /// (a Q4_0 producer's h·w and Σh², as every layer after the first in a model's step), so the GEMV's norm scale is not 1.
    /// </summary>
    private void RopeInProjections()
    {
        const int heads = 8, kvHeads = 2, inputs = 512, blockSize = 16, position = 37, layer = 1;
        const uint cacheFill = 0x3C003C00;  // f16 1.0 in every element
        int[] blockTable = [2, 0, 3, 1];
        var slot = blockTable[position / blockSize] * blockSize + position % blockSize;
        foreach (var (type, headDim, folded) in new[]
        {
            (GgmlType.Q4_0, 64, false), (GgmlType.Q4_0, 128, true), (GgmlType.Q4_K, 64, true), (GgmlType.Q8_0, 64, true),
            (GgmlType.Q6_K, 128, false), (GgmlType.BF16, 64, true), (GgmlType.F32, 64, false),
        })
        {
            int[] rows = [heads * headDim, kvHeads * headDim, kvHeads * headDim];
            var hosts = rows.Select((n, i) => new HostTensor($"qkv{i}", type, [inputs, n], RandomWeights.Tensor(type, n, inputs, _random.Next()))).ToArray();
            var gw = hosts.Select(h => gpu.LoadWeight(h.View)).ToArray();
            var cw = hosts.Select(h => cpu.LoadWeight(h.View)).ToArray();
            using var producerHost = new HostTensor("p", GgmlType.Q4_0, [inputs, inputs], RandomWeights.Tensor(GgmlType.Q4_0, inputs, inputs, _random.Next()));
            using var gp = gpu.LoadWeight(producerHost.View);
            using var cp = cpu.LoadWeight(producerHost.View);
            var norm = Vector(RandomWeights.Floats(inputs, _random, 0.2, 1), "norm");
            var x = RandomWeights.Floats(inputs, _random);
            var h = RandomWeights.Floats(inputs, _random, 3);
            var shape = new KvCacheShape(2, kvHeads, headDim, blockSize, blockTable.Length);
            using var cc = cpu.CreateKvCache(shape);
            var spec = new RopeSpec(headDim, 10000f, RopeStyle.AdjacentPairs, null, 64);
            using var gr = gpu.CreateRotaryEmbedding(spec);
            using var cr = cpu.CreateRotaryEmbedding(spec);
            var batch = new ForwardBatch(1, 1, blockTable.Length);
            batch.AddSequence(blockTable);
            batch.AddToken(7, position, 0, slot, false);
            var what = $"q/k/v {type} {heads}/{kvHeads}×{headDim}{(folded ? ", input with a folded norm" : "")}: rope and kv store in the split GEMV";

            // One token through ProjectQueryKeyValue into a fresh f16 cache: the outputs, and every key and value of the cache.
            (float[][] Outputs, ushort[] Cache) Run(bool fused)
            {
                using var cache = (CudaKvCache)gpu.CreateKvCache(shape with { Dtype = KvCacheDtype.Float16 });
                for (var l = 0; l < shape.Layers; l++)
                {
                    cache.Keys(l).Fill(gpu.Stream, cacheFill);
                    cache.Values(l).Fill(gpu.Stream, cacheFill);
                }

                var outputs = rows.Select(n => GpuTensor(1, n)).ToArray();
                DeviceTensor[] scratch = folded ? [GpuTensor(1, inputs, x), GpuTensor(1, inputs, h), GpuTensor(1, inputs)] : [];
                var input = GpuTensor(1, inputs, folded ? null : x);
                if (folded)
                {
                    gpu.MatMulAddRmsNorm(scratch[0], gp, scratch[2], scratch[1], norm[0], 1e-5f, input, 1);
                }

                gpu.BeginBatch(batch);
                try
                {
                    gpu.RopeInProjections = fused;
                    gpu.Kernels.RopeStoreKvF16.Omitted = fused;
                    gpu.ProjectQueryKeyValue(input, [new(gw[0], outputs[0]), new(gw[1], outputs[1]), new(gw[2], outputs[2])], 1, gr, cache, layer);
                }
                finally
                {
                    gpu.Kernels.RopeStoreKvF16.Omitted = false;
                    gpu.RopeInProjections = true;
                }

                var read = outputs.Select(o => Read(o, 1)).ToArray();
                var stored = Enumerable.Range(0, shape.Layers).SelectMany(l => ReadHalves(cache.Keys(l)).Concat(ReadHalves(cache.Values(l)))).ToArray();
                Dispose([.. outputs, .. scratch, input]);
                return (read, stored);
            }

            var fused = Run(true);
            var unfused = Run(false);
            var differing = fused.Outputs.Zip(unfused.Outputs, Report.CountDifferentBits).Sum() + fused.Cache.Zip(unfused.Cache).Count(p => p.First != p.Second);
            report.BitForBit($"{what}: q, k, v and the whole f16 cache = the unfused path's", differing, rows.Sum() + fused.Cache.Length);

            var cpuOutputs = rows.Select(n => cpu.CreateTensor(1, n)).ToArray();
            using var cpuInput = cpu.CreateTensor(1, inputs);
            if (folded)
            {
                CpuNormedInput(x, cp, h, norm[1], cpuInput);
            }
            else
            {
                cpu.WriteRows(cpuInput, x);
            }

            cpu.BeginBatch(batch);
            ((IBackend)cpu).ProjectQueryKeyValue(cpuInput, [new(cw[0], cpuOutputs[0]), new(cw[1], cpuOutputs[1]), new(cw[2], cpuOutputs[2])], 1, cr, cc, layer);
            for (var i = 0; i < rows.Length; i++)
            {
                var expected = new float[rows[i]];
                cpu.ReadRows(cpuOutputs[i], 1, expected);
                report.Check($"{what}: {"qkv"[i]} against the CPU", Report.RelativeError(fused.Outputs[i], expected), QuantBound);
            }

            Dispose(cpuOutputs);
            Dispose(norm);
            Dispose(gw);
            Dispose(cw);
            Dispose(hosts);
        }
    }

    /// <summary>
    /// The norm folded into the one-row GEMVs around it (<see cref="CudaBackend.MatMulAddRmsNorm"/>): a nibble producer
    /// (attention output, down) and consumers of every GEMV kind (nibble, int8 split, Q6_K's halves, BF16, F32), reading an
    /// int8 copy the producer wrote or making it themselves, against the same calls with the fold off (the matmul, then
    /// add+rmsnorm) and against the CPU. The residual must be the unfused one bit for bit (the same float sum, with the
    /// unfused matmul on the whole one-row kernel, whose order of sums the producer shares), and so must
    /// the normed values when something other than the GEMV reads them (computed then from the residual); the consumer's
    /// product differs only by where r multiplies (QuantBound; BF16 rounds the weights alike on both sides). The product
    /// scratch staying NaN shows that the producer GEMV, not the matmul and norm, ran.
    /// </summary>
    private void FoldedNorms()
    {
        foreach (var (producerType, inputs, hidden, consumerType, outputs, copy) in new[]
        {
            (GgmlType.Q4_0, 320, 288, GgmlType.Q4_0, 100, true), (GgmlType.Q4_0, 1024, 2048, GgmlType.Q8_0, 300, true),
            (GgmlType.Q4_K, 1024, 2048, GgmlType.Q4_0, 130, true), (GgmlType.Q4_K, 2048, 4096, GgmlType.Q6_K, 64, true),
            (GgmlType.Q4_0, 1024, 2048, GgmlType.Q8_0, 77, false), (GgmlType.Q4_0, 1024, 2048, GgmlType.BF16, 300, false),
            (GgmlType.Q4_K, 2048, 4096, GgmlType.F32, 40, false),
            // K of several passes of the producer's 32 lanes × 4 units, the last one partial (as Llama-3-8B's down, 14336)
            (GgmlType.Q4_0, 7168, 1024, GgmlType.Q4_0, 64, true), (GgmlType.Q4_K, 14336, 512, GgmlType.BF16, 40, false),
        })
        {
            using var producerHost = new HostTensor("p", producerType, [inputs, hidden], RandomWeights.Tensor(producerType, hidden, inputs, _random.Next()));
            using var consumerHost = new HostTensor("c", consumerType, [hidden, outputs], RandomWeights.Tensor(consumerType, outputs, hidden, _random.Next()));
            using var gp = gpu.LoadWeight(producerHost.View);
            using var cp = cpu.LoadWeight(producerHost.View);
            using var gc = gpu.LoadWeight(consumerHost.View);
            using var cc = cpu.LoadWeight(consumerHost.View);
            var norm = Vector(RandomWeights.Floats(hidden, _random, 0.2, 1), "norm");
            var x = RandomWeights.Floats(inputs, _random);
            var h = RandomWeights.Floats(hidden, _random, 3);
            var what = $"folded norm {producerType} {hidden} × {inputs} → {consumerType} {outputs} × {hidden}{(copy || consumerType is GgmlType.BF16 or GgmlType.F32 ? "" : ", int8 copy made by the consumer")}";

            float[] Run(bool fold, out float[] residual, out float[] normed, out float[] product)
            {
                DeviceTensor gx = GpuTensor(1, inputs, x), gh = GpuTensor(1, hidden, h), gn = GpuTensor(1, hidden, RandomWeights.Floats(hidden, _random)),
                    gProduct = GpuTensor(1, hidden), gy = GpuTensor(1, outputs);
                if (copy)
                {
                    gpu.MatMul(gn, gc, gy, 1);  // the normed tensor's int8 copy exists, as in a model's second step
                }

                gpu.FoldNorms = fold;
                gpu.GemvSplitOverride = false;  // the producer's order of sums is the whole one-row kernel's
                gpu.MatMulAddRmsNorm(gx, gp, gProduct, gh, norm[0], 1e-5f, gn, 1);
                gpu.GemvSplitOverride = null;
                gpu.MatMul(gn, gc, gy, 1);
                gpu.FoldNorms = true;
                var y = Read(gy, 1);
                (residual, normed, product) = (Read(gh, 1), Read(gn, 1), Read(gProduct, 1));
                Dispose([gx, gh, gn, gProduct, gy]);
                return y;
            }

            var folded = Run(true, out var foldedResidual, out var foldedNormed, out var foldedProduct);
            var unfolded = Run(false, out var residual, out var normed, out _);
            report.BitForBit($"{what}: residual = unfolded", Report.CountDifferentBits(foldedResidual, residual), hidden);
            report.BitForBit($"{what}: normed values read back = unfolded", Report.CountDifferentBits(foldedNormed, normed), hidden);
            if (foldedProduct.All(float.IsNaN))
            {
                report.Pass($"{what}: the producer GEMV ran (product scratch unwritten)");
            }
            else
            {
                report.Fail($"{what}: the producer GEMV ran", "the product scratch was written: the matmul and norm ran instead");
            }

            report.Check($"{what}: consumer = unfolded", Report.RelativeError(folded, unfolded), QuantBound);
            using var cn = cpu.CreateTensor(1, hidden);
            using var cy = cpu.CreateTensor(1, outputs);
            CpuNormedInput(x, cp, h, norm[1], cn);
            cpu.MatMul(cn, cc, cy, 1);
            var expected = new float[outputs];
            cpu.ReadRows(cy, 1, expected);
            report.Check($"{what}: consumer against the CPU", Report.RelativeError(folded, expected), QuantBound);
            Dispose(norm);
        }
    }

    /// <summary>
    /// The CPU's <paramref name="output"/> = RMSNorm(h + x · producerᵀ) · norm over <paramref name="rows"/> rows
    /// (IBackend.MatMulAddRmsNorm): the reference for a GPU input with a folded norm, or a norm that summed split partials.
    /// </summary>
    private void CpuNormedInput(float[] x, DeviceWeight producer, float[] h, DeviceWeight norm, DeviceTensor output, int rows = 1)
    {
        using var cx = cpu.CreateTensor(rows, x.Length / rows);
        using var ch = cpu.CreateTensor(rows, h.Length / rows);
        using var cProduct = cpu.CreateTensor(rows, h.Length / rows);
        cpu.WriteRows(cx, x);
        cpu.WriteRows(ch, h);
        ((IBackend)cpu).MatMulAddRmsNorm(cx, producer, cProduct, ch, norm, 1e-5f, output, rows);
    }

    /// <summary>
    /// A split-K GEMM's partials summed by the norm after it (<see cref="CudaBackend.SplitSumsInNorm"/>): MatMulAddRmsNorm
    /// at batches whose GEMM splits K 4–8 ways (gemm_half_tc at 9 and 33 rows, the Hopper GEMM at 200 where the device has
    /// it, the int8 and nibble tensor-core GEMM) against the same call with a sum_splits launch — the residual, the normed
    /// output and the product bit for bit (the product starts as NaN, so it must have been written) — and the normed output
    /// against the CPU.
    /// </summary>
    private void SplitSumsInNorm()
    {
        const int inputs = 1024, hidden = 256;
        foreach (var (type, rows) in new[] { (GgmlType.F16, 9), (GgmlType.BF16, 33), (GgmlType.BF16, 200), (GgmlType.Q8_0, 33), (GgmlType.Q4_0, 200), (GgmlType.Q4_K, 9) })
        {
            using var host = new HostTensor("w", type, [inputs, hidden], RandomWeights.Tensor(type, hidden, inputs, _random.Next()));
            using var gw = gpu.LoadWeight(host.View);
            using var cw = cpu.LoadWeight(host.View);
            var norm = Vector(RandomWeights.Floats(hidden, _random, 0.2, 1), "norm");
            var x = RandomWeights.Floats(rows * inputs, _random);
            var h = RandomWeights.Floats(rows * hidden, _random, 3);
            var what = $"split sums in the norm {type} {hidden} × {inputs} M={rows}";

            (float[] Residual, float[] Normed, float[] Product) Run(bool inNorm)
            {
                DeviceTensor gx = GpuTensor(rows, inputs, x), gh = GpuTensor(rows, hidden, h), gn = GpuTensor(rows, hidden), gProduct = GpuTensor(rows, hidden);
                gpu.SplitSumsInNorm = inNorm;
                gpu.MatMulAddRmsNorm(gx, gw, gProduct, gh, norm[0], 1e-5f, gn, rows);
                gpu.SplitSumsInNorm = true;
                var result = (Read(gh, rows), Read(gn, rows), Read(gProduct, rows));
                Dispose([gx, gh, gn, gProduct]);
                return result;
            }

            var inNorm = Run(true);
            var after = Run(false);
            report.BitForBit($"{what}: residual, normed values and product = with sum_splits",
                Report.CountDifferentBits(inNorm.Residual, after.Residual) + Report.CountDifferentBits(inNorm.Normed, after.Normed)
                + Report.CountDifferentBits(inNorm.Product, after.Product), 3L * rows * hidden);

            using var cn = cpu.CreateTensor(rows, hidden);
            CpuNormedInput(x, cw, h, norm[1], cn, rows);
            var expected = new float[rows * hidden];
            cpu.ReadRows(cn, rows, expected);
            var bound = type switch { GgmlType.BF16 => Bf16GemmBound, GgmlType.F16 => F16GemmBound, _ => QuantBound };
            report.Check($"{what}: normed values against the CPU", Report.RelativeError(inNorm.Normed, expected), 2 * bound);
            Dispose(norm);
        }
    }

    private DeviceWeight[] Vector(float[] values, string name)
    {
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        using var host = new HostTensor(name, GgmlType.F32, [values.Length], bytes);
        return [gpu.LoadWeight(host.View), cpu.LoadWeight(host.View)];
    }

    private void Norms()
    {
        // Up to 4,096 values the one-item norm kernel, beyond it the 4-item one (4,128: two items for the first thread; 14,336: 3.5 items a thread).
        foreach (var (rows, columns) in new[] { (1, 288), (7, 2048), (33, 4096), (130, 896), (1, 4128), (3, 14336) })
        {
            var w = Vector(RandomWeights.Floats(columns, _random, 0.2, 1), "norm");
            var x = RandomWeights.Floats(rows * columns, _random, 3);
            var (gx, cx) = Pair(rows, columns, x);
            var (gy, cy) = Pair(rows, columns);
            gpu.RmsNorm(gx, w[0], 1e-5f, gy, rows);
            cpu.RmsNorm(cx, w[1], 1e-5f, cy, rows);
            report.Check($"rmsnorm {rows} × {columns}", Compare(gy, cy, rows), FloatBound);

            var (gd, cd) = Pair(rows, columns, RandomWeights.Floats(rows * columns, _random));
            gpu.AddRmsNorm(gx, gd, w[0], 1e-6f, gy, rows);
            cpu.AddRmsNorm(cx, cd, w[1], 1e-6f, cy, rows);
            report.Check($"add+rmsnorm {rows} × {columns} (output)", Compare(gy, cy, rows), FloatBound);
            report.Check($"add+rmsnorm {rows} × {columns} (residual)", Compare(gx, cx, rows), FloatBound);
            foreach (var d in new IDisposable[] { gx, cx, gy, cy, gd, cd, w[0], w[1] })
            {
                d.Dispose();
            }
        }

        foreach (var (rows, heads, headDim) in new[] { (5, 16, 128), (19, 8, 64) })
        {
            var w = Vector(RandomWeights.Floats(headDim, _random, 0.2, 1), "qnorm");
            var columns = heads * headDim;
            var x = RandomWeights.Floats(rows * columns, _random, 2);
            var (gx, cx) = Pair(rows, columns, x);
            gpu.RmsNorm(gx, w[0], 1e-6f, gx, rows);
            cpu.RmsNorm(cx, w[1], 1e-6f, cx, rows);
            report.Check($"rmsnorm per head in place {rows} × {heads} × {headDim}", Compare(gx, cx, rows), FloatBound);
            foreach (var d in new IDisposable[] { gx, cx, w[0], w[1] })
            {
                d.Dispose();
            }
        }

        HeadNormsInRope();
    }

    /// <summary>
    /// Qwen3's per-head q/k norms inside rope_store_kv (one launch instead of three) against the CPU's norm, then rotation:
    /// head dimensions of 128 (heads across two warps: shared-memory sums), 64 (one warp) and 32 (four heads a warp), over
    /// both cache types.
    /// </summary>
    private void HeadNormsInRope()
    {
        foreach (var (heads, kvHeads, headDim) in new[] { (16, 8, 128), (14, 2, 64), (8, 4, 32) })
        {
            const int tokens = 7, blockSize = 16;
            var shape = new KvCacheShape(1, kvHeads, headDim, blockSize, 2);
            using var gc = gpu.CreateKvCache(shape);
            using var gh = gpu.CreateKvCache(shape with { Dtype = KvCacheDtype.Float16 });
            using var cc = cpu.CreateKvCache(shape);
            var spec = new RopeSpec(headDim, 1000000f, RopeStyle.NeoX, null, 64);
            using var gr = gpu.CreateRotaryEmbedding(spec);
            using var cr = cpu.CreateRotaryEmbedding(spec);
            var batch = new ForwardBatch(tokens, 1, 2);
            batch.AddSequence([1, 0]);
            for (var p = 20; p < 20 + tokens; p++)
            {
                batch.AddToken(0, p, 0, p % blockSize, false);  // positions 16…31 lie in the table's second entry, cache block 0
            }

            var qn = Vector(RandomWeights.Floats(headDim, _random, 0.2, 1), "q_norm");
            var kn = Vector(RandomWeights.Floats(headDim, _random, 0.2, 1), "k_norm");
            float[] q = RandomWeights.Floats(tokens * heads * headDim, _random, 2), k = RandomWeights.Floats(tokens * kvHeads * headDim, _random, 2),
                v = RandomWeights.Floats(tokens * kvHeads * headDim, _random);
            var (gq, cq) = Pair(tokens, heads * headDim, q);
            var (gk, ck) = Pair(tokens, kvHeads * headDim, k);
            var (gv, cv) = Pair(tokens, kvHeads * headDim, v);
            var (hq, _) = Pair(tokens, heads * headDim, q);
            var (hk, _) = Pair(tokens, kvHeads * headDim, k);
            gpu.BeginBatch(batch);
            cpu.BeginBatch(batch);
            gpu.RopeAndStoreKv(gq, gk, gv, gr, gc, 0, new HeadNorms(qn[0], kn[0], 1e-6f));
            cpu.RopeAndStoreKv(cq, ck, cv, cr, cc, 0, new HeadNorms(qn[1], kn[1], 1e-6f));
            gpu.RopeAndStoreKv(hq, hk, gv, gr, gh, 0, new HeadNorms(qn[0], kn[0], 1e-6f));
            var label = $"rope+kv store with per-head q/k norms {heads}/{kvHeads}×{headDim} ({(CudaLaunchGeometry.RopeFusesHeadNorms(headDim) ? "one launch" : "norms first")})";
            report.Check($"{label}: queries", Compare(gq, cq, tokens), FloatBound);
            report.Check($"{label}: keys", Compare(gk, ck, tokens), FloatBound);
            report.Check($"{label}, f16 cache: queries", Compare(hq, cq, tokens), FloatBound);
            Dispose([gq, cq, gk, ck, gv, cv, hq, hk, qn[0], qn[1], kn[0], kn[1]]);
        }
    }

    private void ElementWise()
    {
        foreach (var (rows, columns) in new[] { (1, 768), (13, 8192), (100, 4864) })
        {
            var (gg, cg) = Pair(rows, columns, RandomWeights.Floats(rows * columns, _random, 4));
            var (gu, cu) = Pair(rows, columns, RandomWeights.Floats(rows * columns, _random));
            var (gy, cy) = Pair(rows, columns);
            gpu.SiluMul(gg, gu, gy, rows);
            cpu.SiluMul(cg, cu, cy, rows);
            report.Check($"silu·mul {rows} × {columns}", Compare(gy, cy, rows), FloatBound);

            var b = Vector(RandomWeights.Floats(columns, _random), "bias");
            gpu.AddBias(gu, b[0], rows);
            cpu.AddBias(cu, b[1], rows);
            report.Check($"bias add {rows} × {columns}", Compare(gu, cu, rows), FloatBound);

            var batch = new ForwardBatch(rows, 1, 1);
            batch.AddSequence([0]);
            for (var i = 0; i < rows; i++)
            {
                batch.AddToken(1, i, 0, i, _random.Next(2) == 0 || i == rows - 1);
            }

            gpu.BeginBatch(batch);
            cpu.BeginBatch(batch);
            var (go, co) = Pair(rows, columns);
            gpu.GatherLogitRows(gg, go);
            cpu.GatherLogitRows(cg, co);
            report.Check($"gather logit rows {batch.LogitCount} of {rows} × {columns}", Compare(go, co, batch.LogitCount), 0);
            foreach (var d in new IDisposable[] { gg, cg, gu, cu, gy, cy, go, co, b[0], b[1] })
            {
                d.Dispose();
            }
        }
    }

    private void Attention()
    {
        // (query heads, KV heads, head dim, style, frequency factors): stories15M, Llama-3.2-1B (Llama-3 scaling), Qwen3-0.6B,
        // Llama-3-8B, Qwen2-0.5B (group 7), a group of 8 and head dimension 256.
        var cases = new (int Heads, int KvHeads, int HeadDim, RopeStyle Style, bool Scaled)[]
        {
            (6, 6, 48, RopeStyle.AdjacentPairs, false),
            (32, 8, 64, RopeStyle.AdjacentPairs, true),
            (16, 8, 128, RopeStyle.NeoX, false),
            (32, 8, 128, RopeStyle.AdjacentPairs, false),
            (14, 2, 64, RopeStyle.NeoX, false),
            (64, 8, 128, RopeStyle.NeoX, false),
            (8, 2, 256, RopeStyle.NeoX, false),
        };
        int[] lengths = quick ? [1, 40, 300] : [1, 17, 300, 2500];
        foreach (var (heads, kvHeads, headDim, style, scaled) in cases)
        {
            const int blockSize = 16;
            var maxLength = lengths.Max() + 1;
            var blocksPerSequence = (maxLength + blockSize - 1) / blockSize;
            var blockCount = blocksPerSequence * lengths.Length + 3;
            var shape = new KvCacheShape(1, kvHeads, headDim, blockSize, blockCount);
            using var gc = gpu.CreateKvCache(shape);
            using var gh = gpu.CreateKvCache(shape with { Dtype = KvCacheDtype.Float16 });
            using var cc = cpu.CreateKvCache(shape);
            var factors = scaled ? new Llama3RopeScaling(32, 1, 4, 8192).FrequencyFactors(headDim, 500000f) : null;
            var spec = new RopeSpec(headDim, scaled ? 500000f : 10000f, style, factors, maxLength + 1);
            using var gr = gpu.CreateRotaryEmbedding(spec);
            using var cr = cpu.CreateRotaryEmbedding(spec);
            // Step 1: every sequence's tokens 0…length−1 rotated and written to the cache in one batch.
            var total = lengths.Sum();
            var (fill, tables) = ShuffledPrompts(lengths, blockCount, blocksPerSequence, blockSize);

            var label = $"{heads}/{kvHeads}×{headDim}";
            Dispose(Rope($"{label} {total} tokens of {string.Join("+", lengths)}", fill, heads, kvHeads, headDim, gc, gh, cc, gr, cr));

            // Step 2, chunked prefill over a cached prefix: the last (up to) 9 positions of each sequence attend causally.
            var chunk = new ForwardBatch(total, lengths.Length, blocksPerSequence);
            for (var s = 0; s < lengths.Length; s++)
            {
                chunk.AddSequence(tables[s]);
                for (var p = Math.Max(0, lengths[s] - 9); p < lengths[s]; p++)
                {
                    chunk.AddToken(0, p, s, tables[s][p / blockSize] * blockSize + p % blockSize, false);
                }
            }

            var (cq, cqCpu) = Pair(chunk.TokenCount, heads * headDim, RandomWeights.Floats(chunk.TokenCount * heads * headDim, _random));
            gpu.BeginBatch(chunk);
            cpu.BeginBatch(chunk);
            Attend($"{label} prefill chunks of {chunk.TokenCount} tokens over cached prefixes", chunk, heads, headDim, cq, cqCpu, gc, gh, cc);
            Dispose([cq, cqCpu]);

            // Step 2b, whole prompts: every sequence's tokens 0…length−1 attend at once (runs of ≥ 16 take attention_prefill:
            // several query tiles and K/V tiles, a partial last tile of each; the 1-token prompt attention_partition).
            var prompts = new ForwardBatch(total, lengths.Length, blocksPerSequence);
            for (var s = 0; s < lengths.Length; s++)
            {
                prompts.AddSequence(tables[s]);
                for (var p = 0; p < lengths[s]; p++)
                {
                    prompts.AddToken(0, p, s, tables[s][p / blockSize] * blockSize + p % blockSize, false);
                }
            }

            AttendSplit($"{label} whole prompts of {string.Join("+", lengths)}", prompts, heads, headDim, gc, gh, cc);

            // Step 2c, the serving scheduler's mixed batch: a long chunk of the longest sequence over its cached prefix
            // (starting mid-tile, so the causal diagonal crosses K/V tiles off their edges), a short chunk of the second
            // longest (attention_partition through its token list) and a decode token of every other sequence.
            var longest = Array.IndexOf(lengths, lengths.Max());
            var second = Array.IndexOf(lengths, lengths.Where((_, s) => s != longest).Max());
            var mixed = new ForwardBatch(total, lengths.Length, blocksPerSequence);
            for (var s = 0; s < lengths.Length; s++)
            {
                mixed.AddSequence(tables[s]);
                var from = s == longest ? lengths[s] - 150 : s == second ? Math.Max(0, lengths[s] - 9) : lengths[s] - 1;
                for (var p = from; p < lengths[s]; p++)
                {
                    mixed.AddToken(0, p, s, tables[s][p / blockSize] * blockSize + p % blockSize, false);
                }
            }

            AttendSplit($"{label} mixed: 150-token chunk at {lengths.Max() - 150} + 9-token chunk + decodes", mixed, heads, headDim, gc, gh, cc);

            // Step 3, decode: one new token per sequence at position length (rotated, stored, attending; long contexts split).
            var decode = new ForwardBatch(lengths.Length, lengths.Length, blocksPerSequence);
            for (var s = 0; s < lengths.Length; s++)
            {
                decode.AddSequence(tables[s]);
                var p = lengths[s];
                decode.AddToken(0, p, s, tables[s][p / blockSize] * blockSize + p % blockSize, true);
            }

            var tensors = Rope($"{label} decode", decode, heads, kvHeads, headDim, gc, gh, cc, gr, cr);
            var (partition, splits) = CudaLaunchGeometry.AttentionSplit(decode.TokenCount, kvHeads, decode.MaxContextLength, gpu.Context.MultiprocessorCount);
            Attend($"{label} decode after {string.Join("/", lengths)} ({splits} splits of {partition}; {style}{(scaled ? ", llama3 scaling" : "")})",
                decode, heads, headDim, tensors[0], tensors[1], gc, gh, cc);
            Dispose(tensors);
        }
    }

    /// <summary>
    /// The fp8 (E4M3) KV cache. rope_store_kv_fp8: its rotations are the float32 variant's and its stored codes are
    /// <see cref="Float8E4M3.Round"/> of them, bit for bit. Attention over it — attention_prefill_fp8 for the prefill runs of
    /// a batch of whole prompts; for its 1-token sequence and for a decode batch over the filled contexts
    /// attention_decode_fp8_tc where it serves the geometry, else attention_partition_fp8 — against the same kind of kernel
    /// over a cache holding the codes' values exactly (<see cref="Float8E4M3.Decode"/>): the float32 kernels, which the
    /// prefill kernel (attention_prefill_f16's arithmetic on exactly widened tiles, which equals attention_prefill's) and
    /// the partition kernel must equal bit for bit (the float32 kernels are held to the CPU by Attention() above). The
    /// tensor-core decode kernel rounds q and p to f16 and sums the head dimensions in its own order, so it is held to them
    /// within <see cref="PrefillAttentionBound"/>, as attention_decode_f16_tc is to the CPU.
    /// </summary>
    private void Fp8KvCache()
    {
        var cases = new (int Heads, int KvHeads, int HeadDim, RopeStyle Style)[]
        {
            (32, 8, 128, RopeStyle.AdjacentPairs),
            (14, 2, 64, RopeStyle.NeoX),
            (6, 6, 48, RopeStyle.AdjacentPairs),  // a head dimension not a multiple of 64: the decode kernel's 4-byte code loads
            (8, 2, 256, RopeStyle.NeoX),
        };
        int[] lengths = [1, 40, 300];
        foreach (var (heads, kvHeads, headDim, style) in cases)
        {
            const int blockSize = 16;
            var blocksPerSequence = (lengths.Max() + 1 + blockSize - 1) / blockSize;
            var blockCount = blocksPerSequence * lengths.Length + 3;
            var shape = new KvCacheShape(1, kvHeads, headDim, blockSize, blockCount);
            using var exact = (CudaKvCache)gpu.CreateKvCache(shape with { Dtype = KvCacheDtype.Float32 });
            using var fp8 = (CudaKvCache)gpu.CreateKvCache(shape with { Dtype = KvCacheDtype.Float8E4M3 });
            using var rope = gpu.CreateRotaryEmbedding(new RopeSpec(headDim, 10000f, style, null, lengths.Max() + 2));
            var total = lengths.Sum();
            var (fill, tables) = ShuffledPrompts(lengths, blockCount, blocksPerSequence, blockSize);
            var label = $"fp8 KV {heads}/{kvHeads}×{headDim}";
            var kvWidth = kvHeads * headDim;
            float[] q = RandomWeights.Floats(total * heads * headDim, _random), k = RandomWeights.Floats(total * kvWidth, _random), v = RandomWeights.Floats(total * kvWidth, _random);
            DeviceTensor fq = GpuTensor(total, heads * headDim, q), fk = GpuTensor(total, kvWidth, k), fv = GpuTensor(total, kvWidth, v);
            DeviceTensor eq = GpuTensor(total, heads * headDim, q), ek = GpuTensor(total, kvWidth, k), ev = GpuTensor(total, kvWidth, v);
            gpu.BeginBatch(fill);
            gpu.RopeAndStoreKv(eq, ek, ev, rope, exact, 0, null);
            gpu.RopeAndStoreKv(fq, fk, fv, rope, fp8, 0, null);

            // Codes against the reference rounding of what the float32 variant stored.
            var differing = Report.CountDifferentBits(Read(fq, total), Read(eq, total)) + Report.CountDifferentBits(Read(fk, total), Read(ek, total));
            var exactKeys = ReadFloats(exact.Keys(0));
            var exactValues = ReadFloats(exact.Values(0));
            var codes = (Keys: ReadBytes(fp8.Keys(0)), Values: ReadBytes(fp8.Values(0)));
            var wrongCodes = 0L;
            for (var i = 0; i < total; i++)
            {
                var slot = (long)fill.Slots[i] * kvWidth;
                for (var j = 0; j < kvWidth; j++)
                {
                    wrongCodes += codes.Keys[slot + j] == Float8E4M3.Round(exactKeys[slot + j]) ? 0 : 1;
                    wrongCodes += codes.Values[slot + j] == Float8E4M3.Round(exactValues[slot + j]) ? 0 : 1;
                }
            }

            var storeLabel = $"rope+kv store {label}: rotations = the float32 variant's, stored codes = them rounded to E4M3, bit for bit";
            if (differing == 0 && wrongCodes == 0)
            {
                report.Pass(storeLabel);
            }
            else
            {
                report.Fail(storeLabel, $"{differing} rotated values differ, {wrongCodes} of {2L * total * kvWidth} stored codes differ");
            }

            // The float32 cache made to hold exactly the codes' values.
            exact.Keys(0).CopyFrom(gpu.Stream, MemoryMarshal.AsBytes(codes.Keys.Select(Float8E4M3.Decode).ToArray().AsSpan()));
            exact.Values(0).CopyFrom(gpu.Stream, MemoryMarshal.AsBytes(codes.Values.Select(Float8E4M3.Decode).ToArray().AsSpan()));
            var prefillTiles = CudaLaunchGeometry.PrefillSupports(headDim);
            var tensorCores = CudaLaunchGeometry.DecodeTensorCoreSupports(heads / kvHeads, headDim);
            var decodeKernel = tensorCores ? "attention_decode_fp8_tc" : "attention_partition_fp8";
            // Tokens of runs too short for prefill tiles (all, where the head dimension has none) take the decode kernel.
            var fillDecodeRows = lengths.SelectMany(n => Enumerable.Repeat(!prefillTiles || n < CudaLaunchGeometry.PrefillMinRun, n)).ToArray();
            CompareAttention($"{label} whole prompts of {string.Join("+", lengths)} ({(prefillTiles ? $"attention_prefill_fp8 and {decodeKernel}" : decodeKernel)})", fill, fq, fillDecodeRows);

            // A decode batch: one new query per sequence at its last filled position, attending over the whole context.
            var decode = new ForwardBatch(lengths.Length, lengths.Length, blocksPerSequence);
            for (var s = 0; s < lengths.Length; s++)
            {
                decode.AddSequence(tables[s]);
            }

            for (var s = 0; s < lengths.Length; s++)
            {
                var p = lengths[s] - 1;
                decode.AddToken(0, p, s, tables[s][p / blockSize] * blockSize + p % blockSize, true);
            }

            using var dq = GpuTensor(lengths.Length, heads * headDim, RandomWeights.Floats(lengths.Length * heads * headDim, _random));
            gpu.BeginBatch(decode);
            CompareAttention($"{label} decode over contexts of {string.Join("+", lengths)} ({decodeKernel})", decode, dq, Enumerable.Repeat(true, lengths.Length).ToArray());
            Dispose([fq, fk, fv, eq, ek, ev]);

            // decodeRows[i]: token i takes the decode kernel, held to the bound where it is the tensor-core one.
            void CompareAttention(string what, ForwardBatch batch, DeviceTensor query, bool[] decodeRows)
            {
                var (t, width) = (batch.TokenCount, heads * headDim);
                using var reference = gpu.CreateTensor(t, width);
                using var output = gpu.CreateTensor(t, width);
                gpu.BeginBatch(batch);
                gpu.PagedAttention(query, exact, 0, reference);
                gpu.PagedAttention(query, fp8, 0, output);
                var (a, b) = (Read(output, t), Read(reference, t));
                var bounded = Enumerable.Range(0, t).Where(i => tensorCores && decodeRows[i]).ToArray();
                var exactRows = Enumerable.Range(0, t).Except(bounded).ToArray();
                var differing = Report.CountDifferentBits(Rows(a, exactRows), Rows(b, exactRows));
                var error = Report.RelativeError(Rows(a, bounded), Rows(b, bounded));
                var name = bounded.Length == 0
                    ? $"attention {what} = the float32 kernels' over the codes' values, bit for bit"
                    : exactRows.Length == 0
                        ? $"attention {what} = the float32 kernels' over the codes' values within {PrefillAttentionBound:E1}"
                        : $"attention {what} = the float32 kernels' over the codes' values, bit for bit (prefill rows) and within {PrefillAttentionBound:E1} (decode rows)";
                if (differing == 0 && error <= PrefillAttentionBound)
                {
                    report.Pass($"{name}: relative error {error:E2}");
                    return;
                }

                report.Fail(name, $"{differing} of {(long)exactRows.Length * width} values of the bit-for-bit rows differ, relative error {error:E2} in the others");

                float[] Rows(float[] values, int[] rows) => rows.SelectMany(i => values.AsSpan(i * width, width).ToArray()).ToArray();
            }
        }
    }

    private float[] ReadFloats(Inference.Backends.Cuda.Driver.CudaDeviceBuffer<byte> buffer) => MemoryMarshal.Cast<byte, float>(ReadBytes(buffer)).ToArray();

    private byte[] ReadBytes(Inference.Backends.Cuda.Driver.CudaDeviceBuffer<byte> buffer)
    {
        var bytes = new byte[buffer.Length];
        buffer.CopyTo(gpu.Stream, bytes);
        return bytes;
    }

    /// <summary>
    /// Whole prompts of <paramref name="lengths"/> tokens over the cache's blocks shuffled among the sequences (so no table
    /// is contiguous): the batch that writes positions 0…length − 1 of every sequence, and each sequence's block table.
    /// </summary>
    private (ForwardBatch Fill, int[][] Tables) ShuffledPrompts(int[] lengths, int blockCount, int blocksPerSequence, int blockSize)
    {
        var blocks = Enumerable.Range(0, blockCount).OrderBy(_ => _random.Next()).ToArray();
        var tables = lengths.Select((_, s) => blocks.Skip(s * blocksPerSequence).Take(blocksPerSequence).ToArray()).ToArray();
        var fill = new ForwardBatch(lengths.Sum(), lengths.Length, blocksPerSequence);
        for (var s = 0; s < lengths.Length; s++)
        {
            fill.AddSequence(tables[s]);
            for (var p = 0; p < lengths[s]; p++)
            {
                fill.AddToken(0, p, s, tables[s][p / blockSize] * blockSize + p % blockSize, false);
            }
        }

        return (fill, tables);
    }

    /// <summary>
    /// attention_partition over long contexts. Decode after 8,200 and 3,001 positions: split partitions of several batches
    /// per warp (the register pipeline's steady state and a partial last batch) and attention_reduce over tens to a hundred
    /// partitions. For head dimension 128 also a batch of tokens at every other position below 8,200 of the long sequence
    /// (no prefill runs), enough of them that tokens × KV heads fill the GPU: one partition per token, walked whole. Groups
    /// of 8 heads of 256 take two passes over each partition. The cache is filled by one RoPE/store pass whose queries are
    /// only KV-heads wide (they are discarded), which keeps the quick mode quick.
    /// </summary>
    private void LongDecode()
    {
        (int Heads, int KvHeads, int HeadDim)[] cases = quick
            ? [(32, 8, 128), (16, 2, 256)]
            : [(32, 8, 128), (32, 8, 64), (16, 2, 256), (8, 2, 256), (6, 6, 48)];
        int[] lengths = [8200, 3001];
        foreach (var (heads, kvHeads, headDim) in cases)
        {
            const int blockSize = 16;
            var maxLength = lengths.Max() + 1;
            var blocksPerSequence = (maxLength + blockSize - 1) / blockSize;
            var blockCount = blocksPerSequence * lengths.Length;
            var shape = new KvCacheShape(1, kvHeads, headDim, blockSize, blockCount);
            using var gc = gpu.CreateKvCache(shape);
            using var gh = gpu.CreateKvCache(shape with { Dtype = KvCacheDtype.Float16 });
            using var cc = cpu.CreateKvCache(shape);
            var spec = new RopeSpec(headDim, 10000f, RopeStyle.NeoX, null, maxLength + 1);
            using var gr = gpu.CreateRotaryEmbedding(spec);
            using var cr = cpu.CreateRotaryEmbedding(spec);
            var (fill, tables) = ShuffledPrompts(lengths, blockCount, blocksPerSequence, blockSize);
            int SlotOf(int s, int p) => tables[s][p / blockSize] * blockSize + p % blockSize;

            var label = $"{heads}/{kvHeads}×{headDim}";
            Dispose(Rope($"{label} long contexts {string.Join("+", lengths)}", fill, kvHeads, kvHeads, headDim, gc, gh, cc, gr, cr));

            var decode = new ForwardBatch(lengths.Length, lengths.Length, blocksPerSequence);
            for (var s = 0; s < lengths.Length; s++)
            {
                decode.AddSequence(tables[s]);
                decode.AddToken(0, lengths[s], s, SlotOf(s, lengths[s]), true);
            }

            var tensors = Rope($"{label} decode after {string.Join("/", lengths)}", decode, heads, kvHeads, headDim, gc, gh, cc, gr, cr);
            var (partition, splits) = CudaLaunchGeometry.AttentionSplit(decode.TokenCount, kvHeads, decode.MaxContextLength, gpu.Context.MultiprocessorCount);
            Attend($"{label} decode after {string.Join("/", lengths)} ({splits} splits of {partition})", decode, heads, headDim, tensors[0], tensors[1], gc, gh, cc);
            Dispose(tensors);

            if (headDim != 128)
            {
                continue;
            }

            var tokens = CudaLaunchGeometry.Ceiling(AttentionSplitPolicy.Default.BlocksPerMultiprocessor * gpu.Context.MultiprocessorCount, kvHeads);
            var spread = new ForwardBatch(tokens, 1, blocksPerSequence);
            spread.AddSequence(tables[0]);
            for (var i = 0; i < tokens; i++)
            {
                var p = lengths[0] - 1 - 2 * i;
                spread.AddToken(0, p, 0, SlotOf(0, p), false);
            }

            (partition, splits) = CudaLaunchGeometry.AttentionSplit(tokens, kvHeads, spread.MaxContextLength, gpu.Context.MultiprocessorCount);
            var (gq, cq) = Pair(tokens, heads * headDim, RandomWeights.Floats(tokens * heads * headDim, _random));
            gpu.BeginBatch(spread);
            cpu.BeginBatch(spread);
            Attend($"{label} {tokens} tokens at every other position below {lengths[0]} ({splits} splits of {partition})", spread, heads, headDim, gq, cq, gc, gh, cc);
            Dispose([gq, cq]);
        }
    }

    private static void Dispose(IEnumerable<IDisposable> items)
    {
        foreach (var d in items)
        {
            d.Dispose();
        }
    }

    /// <summary>
    /// Random q/k/v for the batch's tokens, rotated and stored on both backends; returns [gpu q, cpu q, …]. The GPU also
    /// rotates and stores the same inputs into the f16 cache <paramref name="gh"/> (rope_store_kv_f16): its rotated queries and
    /// keys must be the float32 variant's bit for bit, and the keys and values it stored those rounded to f16 (to nearest
    /// even, as .NET's float → Half conversion rounds) bit for bit.
    /// </summary>
    private DeviceTensor[] Rope(string what, ForwardBatch batch, int heads, int kvHeads, int headDim, PagedKvCache gc, PagedKvCache gh,
        PagedKvCache cc, RotaryEmbedding gr, RotaryEmbedding cr)
    {
        var t = batch.TokenCount;
        var kvWidth = kvHeads * headDim;
        float[] q = RandomWeights.Floats(t * heads * headDim, _random), k = RandomWeights.Floats(t * kvWidth, _random), v = RandomWeights.Floats(t * kvWidth, _random);
        var (gq, cq) = Pair(t, heads * headDim, q);
        var (gk, ck) = Pair(t, kvWidth, k);
        var (gv, cv) = Pair(t, kvWidth, v);
        DeviceTensor hq = GpuTensor(t, heads * headDim, q), hk = GpuTensor(t, kvWidth, k), hv = GpuTensor(t, kvWidth, v);
        gpu.BeginBatch(batch);
        cpu.BeginBatch(batch);
        gpu.RopeAndStoreKv(gq, gk, gv, gr, gc, 0, null);
        cpu.RopeAndStoreKv(cq, ck, cv, cr, cc, 0, null);
        gpu.RopeAndStoreKv(hq, hk, hv, gr, gh, 0, null);
        report.Check($"rope+kv store {what}: rotated queries", Compare(gq, cq, t), FloatBound);
        report.Check($"rope+kv store {what}: rotated keys", Compare(gk, ck, t), FloatBound);

        var rotatedKeys = Read(gk, t);
        var differing = Report.CountDifferentBits(Read(hq, t), Read(gq, t)) + Report.CountDifferentBits(Read(hk, t), rotatedKeys);
        var half = (CudaKvCache)gh;
        var storedKeys = ReadHalves(half.Keys(0));
        var storedValues = ReadHalves(half.Values(0));
        var wrongStores = 0L;
        for (var i = 0; i < t; i++)
        {
            var slot = (long)batch.Slots[i] * kvWidth;
            for (var j = 0; j < kvWidth; j++)
            {
                wrongStores += storedKeys[slot + j] == BitConverter.HalfToUInt16Bits((Half)rotatedKeys[i * kvWidth + j]) ? 0 : 1;
                wrongStores += storedValues[slot + j] == BitConverter.HalfToUInt16Bits((Half)v[i * kvWidth + j]) ? 0 : 1;
            }
        }

        var label = $"rope+kv store {what}, f16 cache: rotations = the float32 variant's, stored keys/values = them rounded to f16, bit for bit";
        if (differing == 0 && wrongStores == 0)
        {
            report.Pass(label);
        }
        else
        {
            report.Fail(label, $"{differing} rotated values differ, {wrongStores} of {2L * t * kvWidth} stored halves differ");
        }

        Dispose([hq, hk, hv]);
        return [gq, cq, gk, ck, gv, cv];
    }

    /// <summary>A GPU tensor holding <paramref name="values"/>, or poisoned with NaN without them (an output).</summary>
    private DeviceTensor GpuTensor(int rows, int columns, float[]? values = null)
    {
        var tensor = gpu.CreateTensor(rows, columns);
        if (values is null)
        {
            Poison(tensor);
        }
        else
        {
            gpu.WriteRows(tensor, values);
        }

        return tensor;
    }

    private float[] Read(DeviceTensor tensor, int rows)
    {
        var values = new float[rows * tensor.Columns];
        gpu.ReadRows(tensor, rows, values);
        return values;
    }

    private ushort[] ReadHalves(Inference.Backends.Cuda.Driver.CudaDeviceBuffer<byte> buffer)
    {
        var halves = new ushort[buffer.Length / sizeof(ushort)];
        buffer.CopyTo(gpu.Stream, System.Runtime.InteropServices.MemoryMarshal.AsBytes(halves.AsSpan()));
        return halves;
    }

    /// <summary>Decode/chunk attention over the float32 GPU cache (<see cref="AttentionBound"/>) and the f16 one
    /// (<see cref="F16DecodeBound"/>) against the CPU backend's float32 cache.</summary>
    private void Attend(string what, ForwardBatch batch, int heads, int headDim, DeviceTensor gq, DeviceTensor cq, PagedKvCache gc,
        PagedKvCache gh, PagedKvCache cc)
    {
        var t = batch.TokenCount;
        var width = heads * headDim;
        var (go, co) = Pair(t, width);
        var ho = gpu.CreateTensor(t, width);
        // A Q8_0 projection of the f16 output before the attention gives it an int8 copy, which attention_reduce then
        // writes itself (fused quantization) where the head dimension allows.
        using var projection = new HostTensor("projection", GgmlType.Q8_0, [width, 64], RandomWeights.Tensor(GgmlType.Q8_0, 64, width, _random.Next()));
        using var pw = gpu.LoadWeight(projection.View);
        using var fused = gpu.CreateTensor(t, 64);
        gpu.MatMul(ho, pw, fused, t);
        gpu.PagedAttention(gq, gc, 0, go);
        cpu.PagedAttention(cq, cc, 0, co);
        gpu.PagedAttention(gq, gh, 0, ho);
        report.Check($"attention {what}", Compare(go, co, t), AttentionBound);
        report.Check($"attention {what}, f16 cache", Compare(ho, co, t), F16DecodeBound(heads, gh, headDim));

        // The projection through that copy against the same values quantized by quantize_q8: bit for bit.
        gpu.MatMul(ho, pw, fused, t);
        using var copied = gpu.CreateTensor(t, width);
        gpu.WriteRows(copied, Read(ho, t));
        using var plain = gpu.CreateTensor(t, 64);
        gpu.MatMul(copied, pw, plain, t);
        var differing = Report.CountDifferentBits(Read(fused, t), Read(plain, t));
        var label = $"attention {what}, f16 cache: a Q8_0 projection of the output = of the same values quantized apart, bit for bit";
        report.BitForBit(label, differing, t * 64);

        Dispose([go, co, ho]);
    }

    /// <summary>
    /// Attention of a batch with prefill runs over random queries: the tokens of query tiles (attention_prefill where it
    /// serves the head dimension) against <see cref="PrefillAttentionBound"/>, the others (attention_partition through its
    /// token list) against <see cref="AttentionBound"/>; then the same over the f16 cache <paramref name="gh"/>: the tiles
    /// bit for bit equal to the float32 cache's (see <see cref="F16KvAttentionBound"/>) and within the prefill bound of the
    /// CPU, the other tokens within <see cref="F16DecodeBound"/>.
    /// </summary>
    private void AttendSplit(string what, ForwardBatch batch, int heads, int headDim, PagedKvCache gc, PagedKvCache gh, PagedKvCache cc)
    {
        var t = batch.TokenCount;
        var width = heads * headDim;
        var (gq, cq) = Pair(t, width, RandomWeights.Floats(t * width, _random));
        var (go, co) = Pair(t, width);
        var ho = gpu.CreateTensor(t, width);
        gpu.BeginBatch(batch);
        cpu.BeginBatch(batch);
        gpu.PagedAttention(gq, gc, 0, go);
        cpu.PagedAttention(cq, cc, 0, co);
        gpu.PagedAttention(gq, gh, 0, ho);
        var a = Read(go, t);
        var b = new float[t * width];
        cpu.ReadRows(co, t, b);
        var h = Read(ho, t);
        Dispose([gq, cq, go, co, ho]);

        var (tiles, rest, _) = CudaLaunchGeometry.CountQueryTiles(batch.Positions, batch.SequenceIndices);
        var tileList = new int[2 * tiles];
        var restTokens = new int[rest];
        CudaLaunchGeometry.BuildQueryTiles(batch.Positions, batch.SequenceIndices, tileList, restTokens);
        var tiled = Enumerable.Range(0, tiles).SelectMany(i => Enumerable.Range(tileList[2 * i], tileList[2 * i + 1])).ToArray();
        var fast = CudaLaunchGeometry.PrefillSupports(headDim);
        report.Check($"attention {what}: {tiled.Length} tokens in {tiles} query tiles ({(fast ? "attention_prefill, f16" : "attention_partition")})",
            RelativeError(a, b, tiled, width), fast ? PrefillAttentionBound : AttentionBound);
        report.Check($"attention {what}, f16 cache: {tiled.Length} tokens in {tiles} query tiles ({(fast ? "attention_prefill_f16" : "attention_partition_f16")})",
            RelativeError(h, b, tiled, width), fast ? PrefillAttentionBound : F16KvAttentionBound);
        if (fast)
        {
            var differing = tiled.Sum(row => Report.CountDifferentBits(h.AsSpan(row * width, width).ToArray(), a.AsSpan(row * width, width).ToArray()));
            var label = $"attention {what}, f16 cache: the query tiles = the float32 cache's, bit for bit";
            report.BitForBit(label, differing, (long)tiled.Length * width);
        }

        if (rest > 0)
        {
            report.Check($"attention {what}: the other {rest} tokens", RelativeError(a, b, restTokens, width), AttentionBound);
            report.Check($"attention {what}, f16 cache: the other {rest} tokens", RelativeError(h, b, restTokens, width), F16DecodeBound(heads, gh, headDim));
        }
    }

    /// <summary>‖a − b‖ / ‖b‖ over the given rows.</summary>
    private static double RelativeError(float[] a, float[] b, int[] rows, int width)
    {
        var x = new float[rows.Length * width];
        var y = new float[rows.Length * width];
        for (var i = 0; i < rows.Length; i++)
        {
            a.AsSpan(rows[i] * width, width).CopyTo(x.AsSpan(i * width));
            b.AsSpan(rows[i] * width, width).CopyTo(y.AsSpan(i * width));
        }

        return Report.RelativeError(x, y);
    }

    /// <summary>Per-row parameter mixes for one sample_rows launch: greedy, each filter alone, combinations, penalties.</summary>
    private static readonly SamplingRow[] SamplingMixes =
    [
        SamplingRow.Greedy,
        Mix(1f), Mix(0.6f), Mix(1.5f), Mix(0.02f),
        Mix(1f, topK: 1), Mix(0.8f, topK: 40), Mix(1f, topK: 1000),
        Mix(1f, topP: 0.5f), Mix(0.9f, topP: 0.9f), Mix(1.2f, topP: 0.99f),
        Mix(1f, minP: 0.05f), Mix(1.3f, minP: 0.3f),
        Mix(0.7f, topK: 50, topP: 0.95f), Mix(1f, topK: 20, minP: 0.1f), Mix(0.8f, topK: 64, topP: 0.9f, minP: 0.02f),
        SamplingRow.Greedy with { RepetitionPenalty = 1.3f, FrequencyPenalty = 0.5f },
        Mix(1f, topP: 0.9f) with { RepetitionPenalty = 1.2f, PresencePenalty = 0.6f, FrequencyPenalty = 0.3f },
        Mix(0.9f, topK: 40) with { RepetitionPenalty = 0.85f, PresencePenalty = -1f, FrequencyPenalty = 1.5f },
    ];

    private static SamplingRow Mix(float temperature, int topK = 0, float topP = 1, float minP = 0) =>
        new(temperature, topK, topP, minP, 1, 0, 0, 0, 0, 0);

    /// <summary>
    /// 7 rows of 1,003 logits with 8 distinct values (ties everywhere). Row r starts at float r · 1003, so rows 1–3 begin 3,
    /// 2 and 1 values before a 16-byte boundary: argmax_rows reads those one by one before its float4 chunks, and the last 3
    /// values of rows 0 and 4 after them. Row 3's maximum is its value 2 (before the chunks), row 4's its last value, and
    /// row 6 holds its maximum twice, at value 1 (before the chunks) and 700 (in them): the first must win.
    /// </summary>
    private float[] ArgMaxEdgeLogits()
    {
        const int vocabulary = 1003;
        var logits = SamplingLogits(7, vocabulary, 1);
        logits[3 * vocabulary + 2] = 100;
        logits[4 * vocabulary + vocabulary - 1] = 100;
        logits[6 * vocabulary + 1] = logits[6 * vocabulary + 700] = 50;
        return logits;
    }

    /// <summary>
    /// argmax_rows against the CPU's first maximum; sample_rows against the CPU backend's IDeviceSampler (TokenChooser, what
    /// the host sampler runs) on the same random logits, every row of a launch with its own parameters, uniform and penalty
    /// list; half the rows without top-k/top-p draw at the edge of a token's share (<see cref="BoundaryUniform"/>), where
    /// any weight that is not bit-identical shows. Allowance: none. The kernel computes the weights with the CPU's
    /// operations rounded one by one (no FMA), so they are bit-identical, and every sum is over fixed-point integers,
    /// exact in any order: any differing id is a bug.
    /// The backend fills the ids with −1 before each launch and refuses an id outside the vocabulary (an unwritten row).
    /// </summary>
    private void Sampling()
    {
        foreach (var (rows, vocabulary, logits, what) in new[]
                 {
                     (1, 32000, RandomWeights.Floats(32000, _random, 3), ""),
                     (5, 151936, RandomWeights.Floats(5 * 151936, _random, 3), ""),
                     (32, 128256, RandomWeights.Floats(32 * 128256, _random, 3), ""),
                     (7, 1003, ArgMaxEdgeLogits(), ", rows off the 16-byte grid, maxima in their first and last values, ties"),
                 })
        {
            using var g = gpu.CreateTensor(rows, vocabulary);
            gpu.WriteRows(g, logits);
            var ids = new int[rows];
            gpu.ArgMax(g, rows, ids);
            var mismatches = Enumerable.Range(0, rows).Count(r => ids[r] != AspireAi.Inference.Engine.Sampler.ArgMax(logits.AsSpan(r * vocabulary, vocabulary)));
            if (mismatches == 0)
            {
                report.Pass($"argmax {rows} × {vocabulary}{what}: ids equal the CPU's");
            }
            else
            {
                report.Fail($"argmax {rows} × {vocabulary}{what}", $"{mismatches} of {rows} ids differ from the CPU's");
            }
        }

        string[] kinds = ["normal(0, 3)", "ties (8 distinct values)", "peaked (a few logits 8-14 above a normal(0, 2) tail)"];
        foreach (var vocabulary in quick ? new[] { 1000, 32000 } : [1000, 32000, 128256])
        {
            for (var kind = 0; kind < kinds.Length; kind++)
            {
                var rows = 2 * SamplingMixes.Length;
                var logits = SamplingLogits(rows, vocabulary, kind);
                var penalties = new List<TokenPenalty>();
                var parameters = new SamplingRow[rows];
                for (var r = 0; r < rows; r++)
                {
                    var mix = SamplingMixes[r % SamplingMixes.Length];
                    var start = penalties.Count;
                    if (mix.RepetitionPenalty != 1 || mix.PresencePenalty != 0 || mix.FrequencyPenalty != 0)
                    {
                        foreach (var token in Enumerable.Range(0, vocabulary).OrderBy(_ => _random.Next()).Take(Math.Min(300, vocabulary / 2)))
                        {
                            penalties.Add(new TokenPenalty(token, _random.Next(4)));
                        }
                    }

                    var uniform = (r / SamplingMixes.Length, r % 5) switch { (0, 0) => 0, (0, 1) => Math.BitDecrement(1.0), _ => _random.NextDouble() };
                    parameters[r] = mix with { PenaltyStart = start, PenaltyCount = penalties.Count - start, Uniform = uniform };
                    if (r >= SamplingMixes.Length && mix.TopK == 0 && mix.TopP >= 1 && !TokenChooser.IsGreedy(mix.Temperature, out _))
                    {
                        parameters[r] = parameters[r] with { Uniform = BoundaryUniform(logits.AsSpan(r * vocabulary, vocabulary), parameters[r], penalties.ToArray()) };
                    }
                }

                var (g, c) = Pair(rows, vocabulary, logits);
                var gpuIds = Enumerable.Repeat(-7, rows).ToArray();
                var cpuIds = new int[rows];
                gpu.Sample(g, parameters, penalties.ToArray(), gpuIds);
                cpu.Sample(c, parameters, penalties.ToArray(), cpuIds);
                var logitsAfter = new float[rows * vocabulary];
                gpu.ReadRows(g, rows, logitsAfter);
                var wrong = Enumerable.Range(0, rows).Where(r => gpuIds[r] != cpuIds[r]).ToArray();
                var what = $"sample {rows} rows × {vocabulary}, {kinds[kind]}, {SamplingMixes.Length} parameter mixes ({penalties.Count} penalty entries)";
                if (wrong.Length == 0 && logitsAfter.AsSpan().SequenceEqual(logits))
                {
                    report.Pass($"{what}: ids equal the CPU's, logits untouched");
                }
                else
                {
                    report.Fail(what, wrong.Length == 0 ? "the logits tensor changed"
                        : $"{wrong.Length} of {rows} ids differ: " + string.Join("; ", wrong.Take(4).Select(r => $"row {r} GPU {gpuIds[r]} CPU {cpuIds[r]} ({parameters[r]})")));
                }

                Dispose([g, c]);
            }
        }
    }

    /// <summary>
    /// A uniform whose draw lands on the very edge of a random kept token's share (r = its running sum, or one less):
    /// then a weight of that token or any before it that differs by one ulp from the CPU's moves the edge by hundreds
    /// of fixed-point units and changes the id. (Emulating sample_rows on the CPU, one fused multiply-add in the exp
    /// polynomial changed 5 of 440 ids with these uniforms and none with random ones.) Rows without top-k and top-p only,
    /// whose kept set is {w ≥ max(2⁻³², min-p)}.
    /// </summary>
    private double BoundaryUniform(ReadOnlySpan<float> logits, SamplingRow row, TokenPenalty[] penalties)
    {
        var adjusted = logits.ToArray();
        TokenChooser.ApplyPenalties(adjusted, penalties, row);
        TokenChooser.IsGreedy(row.Temperature, out var inverse);
        var weights = new float[adjusted.Length];
        TokenChooser.Weights(adjusted, inverse, weights);
        var floor = MathF.Max(TokenChooser.MinimumWeight, row.MinP);
        var kept = Enumerable.Range(0, weights.Length).Where(i => weights[i] >= floor).ToArray();
        var upTo = kept[_random.Next(kept.Length)];
        var prefix = kept.Where(i => i <= upTo).Aggregate(0UL, (sum, i) => sum + TokenChooser.Fixed(weights[i]));
        var total = TokenChooser.KeptTotal(weights, floor);
        var r = Math.Min(prefix - (ulong)_random.Next(2), total - 1);
        return (r + 0.5) / total;
    }

    private float[] SamplingLogits(int rows, int vocabulary, int kind)
    {
        var logits = kind switch
        {
            0 => RandomWeights.Floats(rows * vocabulary, _random, 3),
            1 => Enumerable.Range(0, rows * vocabulary).Select(_ => _random.Next(8) * 0.5f).ToArray(),
            _ => RandomWeights.Floats(rows * vocabulary, _random, 2),
        };
        if (kind == 2)
        {
            for (var r = 0; r < rows; r++)
            {
                for (var i = 0; i < 6; i++)
                {
                    logits[r * vocabulary + _random.Next(vocabulary)] += 8 + 6 * (float)_random.NextDouble();
                }
            }
        }

        return logits;
    }
}
