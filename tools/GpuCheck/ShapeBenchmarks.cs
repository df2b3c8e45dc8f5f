using System.Diagnostics;
using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Synthetic;
using AspireAi.Inference.Serving;

namespace AspireAi.GpuCheck;

/// <summary>
/// The GPU performance issue's table for one random-weight model of a real shape, loaded once: decode at each batch size
/// (eager and as a replayed CUDA graph, with and without programmatic dependent launch), decode at long contexts with
/// attention's share of the step and its KV read rate, and one long prefill with its FLOP rate. The KV cache is filled
/// with a non-zero constant instead of prefilling (attention's speed does not depend on the values, and a 32 × 8k prefill
/// would take minutes); every step really reads the whole context.
/// </summary>
/// <param name="copyBandwidth">The device-to-device copy's GB/s measured in the same run (the roofline of the KV read).</param>
/// <param name="omissions">
/// Sets of kernel names (--omit): at batch 1 each set's kernels are left out of a replayed step in turn, so the step's time
/// without them says what they cost on its critical path (the step's results are then wrong; only its time counts).
/// </param>
/// <param name="besideFilter">
/// Which batch-1 "beside" lines to time (--beside): null every one; else only those whose text contains one of these
/// strings (an empty list: none — a same-machine A/B of two builds, tools/gpu/ab-run.sh, needs only the default's lines).
/// </param>
internal sealed class ShapeBenchmarks(CudaBackend gpu, Report report, KvCacheDtype kvDtype, double copyBandwidth, IReadOnlyList<string[]> omissions,
    IReadOnlyList<string>? besideFilter = null)
{
    private const int BlockSize = 16;

    /// <summary>Rounds of replays a graph-step timing takes the median of (<see cref="GraphStepMs"/>).</summary>
    private const int GraphRounds = 7;

    /// <summary>0.01f: keys and values of the filled contexts.</summary>
    private const uint FillPattern = 0x3C23D70A;

    /// <summary>The same ≈ 0.01 as two f16 values (0x211F), for an f16 cache.</summary>
    private const uint FillPatternF16 = 0x211F211F;

    /// <summary>≈ 0.0098 (E4M3 0x05, the subnormal 5 · 2⁻⁹) in each of four fp8 codes.</summary>
    private const uint FillPatternFp8 = 0x05050505;

    private string KvLabel => kvDtype.Name();

    /// <param name="decode">(batch, context) pairs to decode at; batch 1 also gets the CUDA graph and the launch A/B.</param>
    /// <param name="prefill">Tokens of the one-sequence prefill (0: none).</param>
    public void Run(string name, ModelConfig config, GgmlType type, IReadOnlyList<(int Batch, int Context)> decode, int prefill)
    {
        var clock = Stopwatch.StartNew();
        using var source = new RandomModel(name, config, type, 99);
        var maxBatch = decode.Max(d => d.Batch);
        using var model = new LlamaModel(source, gpu, Math.Max(prefill, maxBatch), maxBatch);
        var parameters = MatMulParameters(config);
        report.Line($"---- {name} {type}: {model.WeightBytesPerStep / 1e9:F2} GB of weights per step, {parameters / 1e9:F2} G matmul parameters; {KvLabel} KV cache; made and loaded in {clock.Elapsed.TotalSeconds:F0} s; programmatic dependent launch {(gpu.Kernels.DependentLaunch ? "available" : "unavailable")}");
        var graphSteps = new Dictionary<(int Batch, int Context), double>();
        foreach (var (batch, context) in decode)
        {
            var (free, _) = gpu.Context.MemoryInfo();
            var kvBytes = (long)batch * (context + 64) * KvCacheSizing.BytesPerToken(config, kvDtype);
            if (kvBytes > free - (2L << 30))
            {
                report.Line($"decode {name} {type} batch {batch} context {context}: skipped, its KV cache ({kvBytes / 1e9:F1} GB, {KvLabel}) exceeds the {free / 1e9:F1} GB free");
                continue;
            }

            if (Decode(model, config, $"{name} {type}", batch, context, parameters) is { } graphMs)
            {
                graphSteps[(batch, context)] = graphMs;
            }
        }

        // The KV read as the step sees it: what a longer context adds to the replayed step (graphs, so no launch or event
        // overhead) against the extra KV bytes — the per-kernel profile's rate includes each launch's fixed cost.
        foreach (var ((batch, context), ms) in graphSteps.OrderBy(e => e.Key))
        {
            var shortest = graphSteps.Keys.Where(k => k.Batch == batch).Min(k => k.Context);
            if (context > shortest)
            {
                var extraBytes = (double)batch * (context - shortest) * KvCacheSizing.BytesPerToken(config, kvDtype);
                var extraMs = ms - graphSteps[(batch, shortest)];
                var rate = extraBytes / (extraMs * 1e-3) / 1e9;
                report.Timing($"KV read in the step {name} {type} batch {batch,3} context {shortest} → {context}: +{extraMs:F3} ms for +{extraBytes / 1e9:F2} GB of {KvLabel} KV = {rate:F0} GB/s ({100 * rate / copyBandwidth:F0}% of copy)");
            }
        }

        if (prefill > 0)
        {
            Prefill(model, config, $"{name} {type}", prefill, parameters);
        }
    }

    /// <summary>Times decode steps at one (batch, context); returns the replayed graph's ms a step in the serving engine's
    /// launch mode, or null where no graph was timed (batches above 32).</summary>
    private double? Decode(LlamaModel model, ModelConfig config, string name, int batchSize, int context, double parameters)
    {
        const int steps = 32;
        var blocksPerSequence = (context + steps + BlockSize) / BlockSize + 1;
        using var cache = (CudaKvCache)gpu.CreateKvCache(model.KvCacheShape(BlockSize, blocksPerSequence * batchSize) with { Dtype = kvDtype });
        var pattern = kvDtype switch { KvCacheDtype.Float16 => FillPatternF16, KvCacheDtype.Float8E4M3 => FillPatternFp8, _ => FillPattern };
        for (var l = 0; l < config.LayerCount; l++)
        {
            cache.Keys(l).Fill(gpu.Stream, pattern);
            cache.Values(l).Fill(gpu.Stream, pattern);
        }

        var tables = Enumerable.Range(0, batchSize).Select(s => Enumerable.Range(s * blocksPerSequence, blocksPerSequence).ToArray()).ToArray();
        var batch = new ForwardBatch(batchSize, batchSize, blocksPerSequence);
        var ids = new int[batchSize];
        var random = new Random(batchSize * 31 + context);
        for (var s = 0; s < batchSize; s++)
        {
            ids[s] = random.Next(config.VocabularySize);
        }

        // Token s of the step at `position`: attends over the filled context (positions < position) and itself.
        void Step(int position)
        {
            batch.Clear();
            for (var s = 0; s < batchSize; s++)
            {
                batch.AddSequence(tables[s]);
            }

            for (var s = 0; s < batchSize; s++)
            {
                batch.AddToken(ids[s], position, s, tables[s][position / BlockSize] * BlockSize + position % BlockSize, true);
            }

            gpu.ArgMax(model.ForwardToLogits(batch, cache)!, batchSize, ids);
        }

        var label = $"decode {name} batch {batchSize,3} context {context,5}";
        var launchModes = gpu.Kernels.DependentLaunch && batchSize == 1 ? new[] { true, false } : [gpu.Kernels.DependentLaunch];
        double? defaultGraphMs = null;
        // Milliseconds of an eager step: one warm-up, then `steps` of them around the context.
        double EagerStepMs()
        {
            Step(context);
            gpu.Context.Synchronize();
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < steps; i++)
            {
                Step(context + i % 8);
            }

            return clock.Elapsed.TotalMilliseconds / steps;
        }

        // Milliseconds of the step captured as a graph and replayed (positions one past the context).
        double GraphMs() => GraphStepMs(model, cache, batch, batchSize, ids, () => Step(context + 1), steps);

        // A step's time as the decode lines print it (tools/gpu/ab-run.sh reads them: "N tok/s (…), how").
        string Rate(double ms) => $"{batchSize / (ms * 1e-3),9:F1} tok/s ({ms:F3} ms/step, {model.WeightBytesPerStep / (ms * 1e-3) / 1e9:F0} GB/s of weights)";

        foreach (var dependent in launchModes)
        {
            gpu.Stream.DependentLaunch = dependent;
            var stepMs = EagerStepMs();
            var mode = dependent ? "dependent launch" : "plain launch";

            // An alternative timed twice between two timings of the default (default, it, it, default), so that a drifting
            // clock favours neither side; its line gives the default's mean beside it. stepMs: an eager or a replayed step.
            void TimeBeside(Func<double> stepMs, string how, string what, Action on, Action off)
            {
                var before = stepMs();
                double ms;
                on();
                try
                {
                    ms = (stepMs() + stepMs()) / 2;
                }
                finally
                {
                    off();
                }

                var beside = (before + stepMs()) / 2;
                // The default's rate inside the parentheses: ab-run.sh keys its lines on the text after them.
                report.Timing($"{label}: {batchSize / (ms * 1e-3),9:F1} tok/s ({ms:F3} ms/step; the default beside it {batchSize / (beside * 1e-3):F1} tok/s), {how}, {mode}, {what}");
            }

            void EagerBeside(string what, Action on, Action off) => TimeBeside(EagerStepMs, "eager", what, on, off);

            report.Timing($"{label}: {Rate(stepMs)}, eager, {mode}");
            if (batchSize > 64 && gpu.Kernels.HasWarpgroupGemm && model.Weights.Layers[0].Down is CudaWeight { Layout: CudaWeightLayout.Float16 or CudaWeightLayout.BFloat16 })
            {
                // The same with gemm_half_tc (mma.sync) instead of the Hopper GEMM, for the A/B in one run.
                gpu.WarpgroupGemmOverride = WarpgroupTile.None;
                var mmaMs = EagerStepMs();
                gpu.WarpgroupGemmOverride = null;
                report.Timing($"{label}: {batchSize / (mmaMs * 1e-3),9:F1} tok/s ({mmaMs:F3} ms/step), eager, {mode}, no wgmma (gemm_half_tc)");

                EagerBeside("Hopper GEMM tiles 128 × 128 where the rule takes 256 × 128", () => gpu.WarpgroupGemm256RowTiles = false, () => gpu.WarpgroupGemm256RowTiles = true);
            }

            if (batchSize > 8)
            {
                // Split-K products into the residual summed by a sum_splits launch, not by the norm after them.
                EagerBeside("split sums of the products into the residual by sum_splits launches", () => gpu.SplitSumsInNorm = false, () => gpu.SplitSumsInNorm = true);
            }

            if (batchSize > 8 && model.Weights.Layers[0].Down is CudaWeight { Layout: CudaWeightLayout.Nibble })
            {
                // Nibble weights on the GEMV and dp4a GEMM instead of the int8 tensor-core GEMM, for the A/B in one run.
                gpu.NibbleTensorCoreGemm = false;
                var dp4aMs = EagerStepMs();
                gpu.NibbleTensorCoreGemm = true;
                report.Timing($"{label}: {batchSize / (dp4aMs * 1e-3),9:F1} tok/s ({dp4aMs:F3} ms/step), eager, {mode}, nibble weights without tensor cores (GEMV to 32 rows, dp4a GEMM)");
            }

            if (batchSize <= 32)
            {
                // One replay round thrown away first: the first of the lines below came out 1–2 % slower than the same
                // kernels timed later in the same process (H100, 2026-11-28: Llama-3.2-1B BF16 911.9 against 932.5 tok/s).
                GraphMs();
                var graphMs = GraphMs();
                if (dependent == gpu.Kernels.DependentLaunch)
                {
                    defaultGraphMs = graphMs;
                }

                report.Timing($"{label}: {Rate(graphMs)}, CUDA graph, {mode}");
                if (batchSize == 1 && dependent)
                {
                    void Beside(string what, Action on, Action off)
                    {
                        if (besideFilter is null || besideFilter.Any(f => what.Contains(f, StringComparison.Ordinal)))
                        {
                            TimeBeside(GraphMs, "CUDA graph", what, on, off);
                        }
                    }

                    // Every GEMV's warps owning their rows (no _m1_split kernel).
                    Beside("no split GEMV", () => gpu.GemvSplitOverride = false, () => gpu.GemvSplitOverride = null);

                    // Every one-row GEMV split, wide weights (gate/up, logits: CudaLaunchGeometry.WideGemvRows) too.
                    Beside("every GEMV split, wide ones too", () => gpu.GemvSplitOverride = true, () => gpu.GemvSplitOverride = null);

                    // The norms on the 4-item kernel, whose registers spill, rather than the one-item one (rows ≤ 4,096).
                    Beside("norms on the 4-item kernel", () => gpu.OneItemNorms = false, () => gpu.OneItemNorms = true);

                    // Every norm a launch of its own (no fold into the GEMVs).
                    Beside("norms not folded into the GEMVs", () => gpu.FoldNorms = false, () => gpu.FoldNorms = true);

                    // SiLU·mul a launch of its own after the gate/up GEMV (float weights: else the gated split GEMV).
                    Beside("SiLU·mul a launch of its own", () => gpu.GatedGemv = false, () => gpu.GatedGemv = true);

                    // q/k/v rotated and stored by rope_store_kv after their GEMV, not in its epilogue.
                    Beside("RoPE a launch of its own", () => gpu.RopeInProjections = false, () => gpu.RopeInProjections = true);

                    // Decode attention copying earlier steps' keys and values only after its wait for the q/k/v GEMV.
                    Beside("decode KV copied after the wait", () => gpu.EarlyDecodeKv = false, () => gpu.EarlyDecodeKv = true);

                    // Every kernel's shared-memory carveout the driver's choice (CudaKernels.UseDefaultCarveouts sets them
                    // on Hopper), and all at the most shared memory.
                    Beside("every kernel's shared carveout the driver's choice", () => gpu.Kernels.SetSharedCarveout(-1), gpu.Kernels.UseDefaultCarveouts);
                    Beside("every kernel's shared carveout 100 %", () => gpu.Kernels.SetSharedCarveout(100), gpu.Kernels.UseDefaultCarveouts);

                    // Split GEMVs of one shape held to fewer resident blocks an SM, asked as "split GEMVs alone by blocks
                    // an SM" asks (the 58 % carveout leaves one fewer resident than asked): gate/up (4·K ≤ N < 16·K, as
                    // the gated split GEMV over float weights too), down (K > N). Q8_0, Q5_0 and Q4_0 shapes over a wave
                    // take the strided kernel (StridedSplitGemvs), which is not held: for them these lines time the default.
                    void Held(string which, Func<int, int, bool> shape, int blocks) =>
                        Beside($"split GEMVs of {which} held to {blocks} blocks an SM asked", () => gpu.GemvSplitBlocksPerMultiprocessor = (n, k) => shape(n, k) ? blocks : null,
                            () => gpu.GemvSplitBlocksPerMultiprocessor = null);
                    Held("gate/up", (n, k) => n >= 4 * k && n < 16 * k, 5);
                    Held("down", (n, k) => k > n, 5);

                    // Every transformer block in one persistent kernel (decode_persistent.cu), where the model qualifies.
                    Beside($"every block in the persistent kernel{(gpu.Kernels.PersistentDecodeNibble is null ? " (not loaded)" : "")}",
                        () => gpu.PersistentDecode = true, () => gpu.PersistentDecode = false);
                    if (gpu.PersistentDecodeUnsupported is { } unserved)
                    {
                        report.Line($"     {label}: the persistent kernel does not serve this model: {unserved}");
                    }
                    else if (gpu.Kernels.PersistentDecodeNibble is not null)
                    {
                        PersistentKernelStages(config, label, () => Step(context + 1));
                    }

                    // Split GEMVs of more than a wave as waves of the plain split, not one wave of the strided kernel.
                    Beside("split GEMVs over a wave not strided", () => gpu.StridedSplitGemvs = false, () => gpu.StridedSplitGemvs = true);

                    // Split GEMVs of at most half a wave at as many resident blocks an SM as their registers allow.
                    Beside("split GEMVs under half a wave not spread", () => gpu.SpreadSplitGemvs = false, () => gpu.SpreadSplitGemvs = true);

                    // attention_reduce and silu_mul letting the GEMV after them in before their own wait.
                    var dependentsFirst = gpu.DependentsFirst;
                    Beside($"attention_reduce and silu_mul let their dependents in {(dependentsFirst ? "after" : "before")} their wait",
                        () => gpu.DependentsFirst = !dependentsFirst, () => gpu.DependentsFirst = dependentsFirst);

                    foreach (var names in omissions)
                    {
                        var omittedMs = GraphStepMsWithout(names, GraphMs);
                        report.Timing($"{label}: {batchSize / (omittedMs * 1e-3),9:F1} tok/s ({omittedMs:F3} ms/step: {graphMs - omittedMs:F3} ms less), CUDA graph, {mode}, without {string.Join(" + ", names)}");
                    }
                }
            }
        }

        gpu.Stream.DependentLaunch = gpu.Kernels.DependentLaunch;
        if (batchSize == 1 && context <= 128)
        {
            MatMulsAlone(model, config, label, batchSize);
        }

        if (batchSize <= 32)
        {
            AttentionAlone(config, cache, batch, label);
        }

        var profile = Profile(() => Step(context + 1));
        var attentionMs = profile.Where(k => k.Kernel.StartsWith("attention_", StringComparison.Ordinal)).Sum(k => k.Milliseconds);
        var matmulMs = profile.Where(k => IsMatMul(k.Kernel)).Sum(k => k.Milliseconds);
        var totalMs = profile.Sum(k => k.Milliseconds);
        var kvBytes = (double)batchSize * (context + 1) * KvCacheSizing.BytesPerToken(config, kvDtype);
        report.Timing($"  profile ({profile.Sum(k => k.Launches)} launches, event-timed): kernels {totalMs:F3} ms; matmuls {matmulMs:F3} ms ({100 * matmulMs / totalMs:F0}%, {2 * parameters * batchSize / (matmulMs * 1e-3) / 1e12:F1} TFLOP/s); attention {attentionMs:F3} ms ({100 * attentionMs / totalMs:F0}%, {kvBytes / 1e9:F2} GB of {KvLabel} KV at {kvBytes / (attentionMs * 1e-3) / 1e9:F0} GB/s)");
        ReportTopKernels(profile, 6);
        if (batchSize > 8 && gpu.SplitSumsInNorm)
        {
            // rms_norm_rows sums the attention-output and down partials (CudaBackend.SplitSumsInNorm), so the figure above
            // leaves that split-K work out; here every split is summed by a sum_splits launch and counted as matmul time.
            gpu.SplitSumsInNorm = false;
            var allSums = Profile(() => Step(context + 1));
            gpu.SplitSumsInNorm = true;
            var allSumsMs = allSums.Where(k => IsMatMul(k.Kernel)).Sum(k => k.Milliseconds);
            report.Timing($"  matmuls with every split-K sum in sum_splits launches: {allSumsMs:F3} ms, {2 * parameters * batchSize / (allSumsMs * 1e-3) / 1e12:F1} TFLOP/s");
        }

        return defaultGraphMs;
    }

    /// <summary>
    /// Decode attention without the rest of the step: every layer's attention (its partition kernel and, where it splits,
    /// attention_reduce) for the batch of the last step, over the filled cache, in one graph replayed with dependent launch
    /// as the step is. The KV read's rate measured directly, where the "KV read in the step" line takes the difference of
    /// two whole steps (whose noise moves it by ±5–10 points).
    /// </summary>
    private void AttentionAlone(ModelConfig config, CudaKvCache cache, ForwardBatch batch, string label)
    {
        var width = config.HeadCount * config.HeadDim;
        using var query = gpu.CreateTensor(batch.TokenCount, width);
        using var output = gpu.CreateTensor(batch.TokenCount, width);
        gpu.WriteRows(query, RandomWeights.Floats(batch.TokenCount * width, new Random(7), 0.5));
        gpu.BeginBatch(batch);
        void EveryLayer()
        {
            for (var l = 0; l < config.LayerCount; l++)
            {
                gpu.PagedAttention(query, cache, l, output);
            }
        }

        var ms = GraphMs(EveryLayer);
        var positions = batch.Positions.ToArray().Sum(p => (long)p + 1);
        var bytes = (double)positions * KvCacheSizing.BytesPerToken(config, kvDtype);
        var rate = bytes / (ms * 1e-3) / 1e9;
        report.Timing($"{label}: attention alone (a graph over all {config.LayerCount} layers): {ms:F3} ms for {bytes / 1e9:F3} GB of {KvLabel} KV = {rate:F0} GB/s ({100 * rate / copyBandwidth:F0}% of copy)");
    }

    /// <summary>
    /// The step's projections without the rest of the step: each group of one shape (q/k/v, attention output, gate/up,
    /// down, logits) over every layer's weights in one graph, and all of them in the step's order, replayed with dependent
    /// launch as the step is. Says how near the GEMVs come to the copy bandwidth in the step's own launch sequence, and what
    /// the step's other kernels (norms, rope, attention, SiLU·mul) add between them. Inputs are never written inside the
    /// graphs, so no quantize or rounding launch is recorded (their copies are made by the eager run before capture).
    /// </summary>
    private void MatMulsAlone(LlamaModel model, ModelConfig config, string label, int rows)
    {
        var weights = model.Weights;
        int e = config.EmbeddingLength, q = config.HeadCount * config.HeadDim, kv = config.KvHeadCount * config.HeadDim, ff = config.FeedForwardLength;
        using var xE = gpu.CreateTensor(rows, e);
        using var xQ = gpu.CreateTensor(rows, q);
        using var xF = gpu.CreateTensor(rows, ff);
        using var yQ = gpu.CreateTensor(rows, q);
        using var yK = gpu.CreateTensor(rows, kv);
        using var yV = gpu.CreateTensor(rows, kv);
        using var yE = gpu.CreateTensor(rows, e);
        using var yG = gpu.CreateTensor(rows, ff);
        using var yU = gpu.CreateTensor(rows, ff);
        using var activated = gpu.CreateTensor(rows, ff);
        using var yLogits = gpu.CreateTensor(rows, config.VocabularySize);
        var random = new Random(5);
        foreach (var x in new[] { xE, xQ, xF })
        {
            gpu.WriteRows(x, RandomWeights.Floats(rows * x.Columns, random, 0.5));
        }

        var layers = weights.Layers;
        // One layer's projections in the step's order; each is timed over every layer, then all of them layer by layer.
        (string Name, Action<LayerWeights> Run, Func<LayerWeights, long> Bytes)[] projections =
        [
            ("q/k/v", w => gpu.MatMulGroup(xE, [new(w.Query, yQ), new(w.Key, yK), new(w.Value, yV)], rows), w => w.Query.ByteSize + w.Key.ByteSize + w.Value.ByteSize),
            ("attention output", w => gpu.MatMul(xQ, w.AttentionOutput, yE, rows), w => w.AttentionOutput.ByteSize),
            ("gate/up", w => gpu.MatMulGroup(xE, [new(w.Gate, yG), new(w.Up, yU)], rows), w => w.Gate.ByteSize + w.Up.ByteSize),
            ("down", w => gpu.MatMul(xF, w.Down, yE, rows), w => w.Down.ByteSize),
        ];
        void Logits() => gpu.MatMul(xE, weights.Output, yLogits, rows);
        var groups = projections
            .Select(p => (p.Name, Run: (Action)(() => { foreach (var w in layers) p.Run(w); }), Bytes: layers.Sum(p.Bytes)))
            .Append(("logits", Logits, weights.Output.ByteSize))
            .ToArray();

        // Each group with warps owning their rows, then with the blocks sharing them (the _m1_split kernels), side by side.
        var parts = new List<string>();
        foreach (var (name, run, bytes) in groups)
        {
            gpu.GemvSplitOverride = false;
            var whole = GraphMs(run);
            // The plain split, then as one wave of the strided kernel where the shape takes it (f16 block scales, over a wave).
            gpu.GemvSplitOverride = true;
            gpu.StridedSplitGemvs = false;
            var split = GraphMs(run);
            gpu.StridedSplitGemvs = true;
            var launches = gpu.StridedGemvLaunches;
            var strided = GraphMs(run);
            var tookStrided = gpu.StridedGemvLaunches > launches;
            gpu.GemvSplitOverride = null;
            parts.Add($"{name} {whole:F3} / {split:F3} ms ({bytes / (whole * 1e-3) / 1e9:F0} / {bytes / (split * 1e-3) / 1e9:F0} GB/s)"
                + (tookStrided ? $", strided {strided:F3} ms ({bytes / (strided * 1e-3) / 1e9:F0} GB/s)" : ""));
        }

        // Float gate and up take the gated split GEMV in the step (SiLU·mul in its epilogue): timed so, and so in the step's order.
        if (rows == 1 && gpu.GatedGemv && gpu.Kernels.GatedGemv((CudaWeight)layers[0].Gate) is not null)
        {
            var gateUp = Array.FindIndex(projections, p => p.Name == "gate/up");
            projections[gateUp].Run = w => gpu.GatedMatMul(xE, new(w.Gate, yG), new(w.Up, yU), activated, rows);
            var gatedMs = GraphMs(() => { foreach (var w in layers) projections[gateUp].Run(w); });
            parts.Add($"gate/up as the gated split GEMV {gatedMs:F3} ms ({groups[gateUp].Bytes / (gatedMs * 1e-3) / 1e9:F0} GB/s)");
        }

        var allBytes = groups.Sum(g => g.Bytes);
        var allMs = GraphMs(() =>
        {
            foreach (var w in layers)
            {
                foreach (var projection in projections)
                {
                    projection.Run(w);
                }
            }

            Logits();
        });
        report.Timing($"{label}: matmuls alone (graphs over all {layers.Count} layers; rows owned by warps / shared by the block): {string.Join("; ", parts)}; all in the step's order, each as chosen {allMs:F3} ms ({allBytes / (allMs * 1e-3) / 1e9:F0} GB/s)");
        if (rows == 1)
        {
            SplitBlocksPerMultiprocessor(label, groups, (CudaWeight)layers[0].Gate);
        }
    }

    /// <summary>
    /// The split GEMVs of <see cref="MatMulsAlone"/> held to 4–8 resident blocks an SM (<see cref="CudaBackend.GemvSplitBlocksPerMultiprocessor"/>),
    /// each count with the driver's occupancy for it: whether ptxas's register count (which set 6 or 7 so far) or a chosen
    /// number should decide.
    /// </summary>
    private void SplitBlocksPerMultiprocessor(string label, (string Name, Action Run, long Bytes)[] groups, CudaWeight sample)
    {
        var kernel = gpu.Kernels.Gemv(sample, CudaLaunchGeometry.Gemv(1, sample.Layout, splitK: true));
        var natural = kernel.ResidentBlocksPerMultiprocessor(CudaLaunchGeometry.GemvWarps * 32, 0);
        var parts = new List<string>();
        foreach (var blocks in new[] { 4, 5, 6, 7, 8 }.Where(b => b < natural))
        {
            var resident = kernel.ResidentBlocksPerMultiprocessor(CudaLaunchGeometry.GemvWarps * 32, gpu.SharedBytesForBlocks(kernel, blocks));
            gpu.GemvSplitOverride = true;
            gpu.GemvSplitBlocksPerMultiprocessor = (_, _) => blocks;
            gpu.StridedSplitGemvs = false;  // the plain split's launches are what is held
            try
            {
                parts.Add($"{blocks} ({resident} resident): " + string.Join(", ", groups.Select(g => $"{g.Name} {GraphMs(g.Run):F3}")));
            }
            finally
            {
                gpu.GemvSplitOverride = null;
                gpu.GemvSplitBlocksPerMultiprocessor = null;
                gpu.StridedSplitGemvs = true;
            }
        }

        report.Timing($"{label}: split GEMVs alone by blocks an SM ({kernel.Name}: {kernel.Attribute(CudaFunctionAttribute.NumRegisters)} registers, {natural} an SM as they allow), ms: {(parts.Count == 0 ? "none below that" : string.Join("; ", parts))}");
    }

    /// <summary>Milliseconds per replay of <paramref name="work"/> captured as a graph (run once eagerly first), median of 5 × 10.</summary>
    private double GraphMs(Action work)
    {
        work();
        using var graph = gpu.CaptureStep(() => { work(); return null; }, out _);
        graph.Launch(gpu.Stream);
        gpu.Context.Synchronize();
        var times = new double[5];
        for (var i = 0; i < times.Length; i++)
        {
            var clock = Stopwatch.StartNew();
            for (var r = 0; r < 10; r++)
            {
                graph.Launch(gpu.Stream);
            }

            gpu.Context.Synchronize();
            times[i] = clock.Elapsed.TotalMilliseconds / 10;
        }

        Array.Sort(times);
        return times[times.Length / 2];
    }

    /// <summary>What <paramref name="time"/> returns with the kernels named left out of every launch (none of them may be unknown).</summary>
    private double GraphStepMsWithout(string[] names, Func<double> time)
    {
        // Every kernel loaded, by name (the step has run: those loaded on first use are among them).
        var kernels = gpu.Kernels.Loaded.ToLookup(k => k.Name);
        var omitted = names.SelectMany(n => kernels.Contains(n) ? kernels[n]
            : throw new ArgumentException($"--omit: no kernel '{n}' (kernels: {string.Join(", ", kernels.Select(g => g.Key).Order())})")).ToArray();
        foreach (var kernel in omitted)
        {
            kernel.Omitted = true;
        }

        try
        {
            return time();
        }
        finally
        {
            foreach (var kernel in omitted)
            {
                kernel.Omitted = false;
            }
        }
    }

    /// <summary>
    /// Where one eager step of the persistent decode kernel spends its time: block 0's stamps at each stage's start, the end
    /// of its prologue (the activation's int8 blocks, the norm), the end of its tiles, and the grid barrier passed, averaged
    /// over the layers (µs), with the time its producer waited for a free ring stage (a full ring: the consumers were behind).
    /// </summary>
    private void PersistentKernelStages(ModelConfig config, string label, Action step)
    {
        var layers = config.LayerCount;
        using var trace = new CudaDeviceBuffer<ulong>(gpu.Context, PersistentDecodeGeometry.TraceLength(layers, gpu.Context.MultiprocessorCount));
        trace.Fill(gpu.Stream, 0);  // the per-block sums stay zero unless the kernel was built with PD_TRACE_BLOCKS
        gpu.PersistentDecode = true;
        gpu.PersistentDecodeTrace = trace;
        try
        {
            step();
            gpu.Context.Synchronize();
            var timings = gpu.ReadPersistentDecodeTrace(layers);
            var perLayer = timings.Layers;
            double Mean(int from, int to) => perLayer.Average(p => (p.Stamps[to] - (double)p.Stamps[from]) / 1e3);
            string Stage(string name, int b, bool prologue) =>
                $"{name} {(prologue ? $"{Mean(b, b + 1):F2} + " : "")}{Mean(b + (prologue ? 1 : 0), b + 2):F2} + barrier {Mean(b + 2, b + 3):F2}";
            var layerUs = perLayer.Take(layers - 1).Zip(perLayer.Skip(1)).Average(p => (p.Second.Stamps[0] - (double)p.First.Stamps[0]) / 1e3);
            report.Timing($"{label}: the persistent kernel's stages, µs a layer (block 0; prologue + work + barrier): "
                + $"{Stage("q/k/v", 0, true)}; {Stage("attention and its merge", 4, false)}; {Stage("output", 8, true)}; "
                + $"{Stage("gate/up", 12, true)}; {Stage("down", 16, true)}; a layer {layerUs:F2}; producer waiting for a free stage "
                + $"{perLayer.Average(p => p.ProducerWait / 1e3):F2}");
            if (timings.Blocks.Any(b => b.Any(v => v != 0)))  // only a kernel built with PD_TRACE_BLOCKS writes them
            {
                report.Timing($"{label}: the persistent kernel's blocks, µs a layer from a grid barrier to their arrival at the next "
                    + "(fastest / median / slowest block, and the three slowest as block@SM): " + BlockSpread(timings.Blocks, layers));
            }
        }
        finally
        {
            gpu.PersistentDecodeTrace = null;
            gpu.PersistentDecode = false;
        }
    }

    /// <summary>
    /// Each stage's spread over the blocks of a traced persistent step: what a grid barrier waits for is its slowest block,
    /// and a block slow in every layer (an SM that streams slower than the rest) shows here where block 0's stamps cannot.
    /// </summary>
    private static string BlockSpread(ulong[][] blocks, int layers)
    {
        string[] stages = ["q/k/v", "attention", "output", "gate/up", "down"];
        double Us(ulong ns) => ns / 1e3 / layers;
        var perStage = stages.Select((name, i) =>
        {
            var order = blocks.Select((b, index) => (Us: Us(b[i]), Block: index, Sm: b[^1])).OrderBy(b => b.Us).ToArray();
            var slowest = string.Join(", ", order.TakeLast(3).Reverse().Select(b => $"{b.Us:F2} {b.Block}@{b.Sm}"));
            return $"{name} {order[0].Us:F2} / {order[order.Length / 2].Us:F2} / {order[^1].Us:F2} ({slowest})";
        });
        var layer = blocks.Select(b => Us(b.Take(stages.Length).Aggregate(0UL, (sum, v) => sum + v))).ToArray();
        return $"{string.Join("; ", perStage)}; a layer {layer.Min():F2} / {layer.Max():F2} (fastest / slowest block)";
    }

    /// <summary>
    /// Milliseconds per replay of the captured step (the same positions each replay, so launch shapes stay fixed): the
    /// median of <see cref="GraphRounds"/> rounds of <paramref name="steps"/> replays each. One round's mean moved by
    /// ±10 µs between runs of one binary, which the "KV read in the step" line — the difference of two such steps —
    /// turned into ±5–10 points of copy bandwidth (docs/performance.md, "KV read at batch 1, three times").
    /// </summary>
    private double GraphStepMs(LlamaModel model, CudaKvCache cache, ForwardBatch batch, int batchSize, int[] ids, Action prepare, int steps)
    {
        prepare();
        using var graph = model.CaptureStep(batch, cache);
        gpu.ArgMax(graph.Replay(batch)!, batchSize, ids);
        var rounds = new double[GraphRounds];
        for (var round = 0; round < rounds.Length; round++)
        {
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < steps; i++)
            {
                gpu.ArgMax(graph.Replay(batch)!, batchSize, ids);
            }

            rounds[round] = clock.Elapsed.TotalMilliseconds / steps;
        }

        Array.Sort(rounds);
        return rounds[rounds.Length / 2];
    }

    private void Prefill(LlamaModel model, ModelConfig config, string name, int tokens, double parameters)
    {
        var blocks = tokens / BlockSize + 1;
        using var cache = gpu.CreateKvCache(model.KvCacheShape(BlockSize, blocks) with { Dtype = kvDtype });
        var table = Enumerable.Range(0, blocks).ToArray();
        var batch = new ForwardBatch(tokens, 1, blocks);
        var random = new Random(tokens);
        batch.AddSequence(table);
        for (var p = 0; p < tokens; p++)
        {
            batch.AddToken(random.Next(config.VocabularySize), p, 0, p, p == tokens - 1);
        }

        var ids = new int[1];
        void Run() => gpu.ArgMax(model.ForwardToLogits(batch, cache)!, 1, ids);
        // With the Hopper GEMM (where the device has it), then without it, for the A/B in one run.
        foreach (var warpgroup in gpu.Kernels.HasWarpgroupGemm ? new WarpgroupTile?[] { null, WarpgroupTile.None } : [null])
        {
            gpu.WarpgroupGemmOverride = warpgroup;
            TimePrefill(warpgroup == WarpgroupTile.None ? $"{name} (no wgmma: gemm_half_tc)" : name);
        }

        gpu.WarpgroupGemmOverride = null;

        void TimePrefill(string label)
        {
            Run();
            var times = new double[5];
            for (var i = 0; i < times.Length; i++)
            {
                var clock = Stopwatch.StartNew();
                Run();
                times[i] = clock.Elapsed.TotalMilliseconds;
            }

            Array.Sort(times);
            var ms = times[times.Length / 2];
            // Causal attention: each of the n queries meets (i + 1) keys, twice (scores and values), 2 FLOP per multiply-add.
            var attentionFlops = 4.0 * config.LayerCount * config.HeadCount * config.HeadDim * tokens * (tokens + 1) / 2;
            var flops = 2 * parameters * tokens + attentionFlops;
            var profile = Profile(Run);
            var matmulMs = profile.Where(k => IsMatMul(k.Kernel)).Sum(k => k.Milliseconds);
            var attentionMs = profile.Where(k => k.Kernel.StartsWith("attention_", StringComparison.Ordinal)).Sum(k => k.Milliseconds);
            report.Timing($"prefill {label} {tokens} tokens: {ms:F1} ms ({tokens / (ms * 1e-3):F0} tok/s, {flops / (ms * 1e-3) / 1e12:F1} TFLOP/s overall); matmuls {matmulMs:F1} ms at {2 * parameters * tokens / (matmulMs * 1e-3) / 1e12:F1} TFLOP/s, attention {attentionMs:F1} ms at {attentionFlops / (attentionMs * 1e-3) / 1e12:F1} TFLOP/s");
            ReportTopKernels(profile, 10);
        }
    }

    /// <summary>The <paramref name="count"/> kernels of a profile that took longest, with their share of its time.</summary>
    private void ReportTopKernels(List<(string Kernel, int Launches, double Milliseconds)> profile, int count)
    {
        var totalMs = profile.Sum(k => k.Milliseconds);
        foreach (var (kernel, launches, ms) in profile.OrderByDescending(k => k.Milliseconds).Take(count))
        {
            report.Timing($"    {kernel,-26} {launches,4} launches {ms * 1000,9:F1} us {100 * ms / totalMs,5:F1}%");
        }
    }

    private List<(string Kernel, int Launches, double Milliseconds)> Profile(Action step)
    {
        using var timer = new KernelTimer(gpu.Context);
        gpu.Stream.Timer = timer;
        try
        {
            step();
        }
        finally
        {
            gpu.Stream.Timer = null;
        }

        return [.. timer.Collect()];
    }

    /// <summary>Weights multiplied per token: every layer's projections and the logits' matrix (the embedding is a lookup).</summary>
    private static double MatMulParameters(ModelConfig c)
    {
        double e = c.EmbeddingLength, q = c.HeadCount * c.HeadDim, kv = c.KvHeadCount * c.HeadDim, ff = c.FeedForwardLength;
        return c.LayerCount * (e * (q + 2 * kv) + q * e + 3 * e * ff) + (double)c.VocabularySize * e;
    }

    /// <summary>A matmul's kernel in a profile: the GEMVs, the GEMMs and the split-K sums that finish a GEMM's output.</summary>
    private static bool IsMatMul(string kernel) =>
        kernel.StartsWith("gemv_", StringComparison.Ordinal) || kernel.StartsWith("gemm_", StringComparison.Ordinal) || kernel == "sum_splits";
}
