using System.Diagnostics;
using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Backends.Cuda.Nccl;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Synthetic;
using AspireAi.Inference.TensorParallel;

namespace AspireAi.GpuCheck;

/// <summary>
/// <c>--tp N</c>: a model over N GPUs (one CUDA backend per device, NCCL between them) against the same model whole on
/// device 0: logits of a mixed prefill and of decode steps, the greedy tokens of a generation, and decode speed side by side.
/// </summary>
internal sealed class TensorParallelChecks(int size, Report report)
{
    /// <summary>
    /// TP and whole differ by the order of float32 partial sums (the split K is summed per rank, then across ranks by NCCL).
    /// A deep random network can amplify that: where it moves an activation across an int8 rounding step, one code flips and
    /// the logits move by far more than rounding (1e-2 measured for Llama-3.2-1B Q8_0 shapes). So the bound is calibrated
    /// as EngineChecks does: the whole model with one norm weight changed by 1e-6 (relative) against the whole model; TP
    /// passes within 3× that self-sensitivity, and never needs to be closer than 2e-3 (2e-2 for F16/BF16, whose GEMMs round
    /// activations). Greedy tokens must agree wherever the perturbed whole model's agree to the end.
    /// </summary>
    private static double Floor(GgmlType type) => type is GgmlType.F16 or GgmlType.BF16 ? 2e-2 : 2e-3;

    public void Header()
    {
        report.Line($"==== tensor parallelism over {size} GPUs: NCCL {NcclLibrary.Version} from {NcclLibrary.LoadedFrom}; NCCL_NVLS_ENABLE is set to 0 before NCCL starts");
    }

    public void Compare(string name, ModelConfig config, GgmlType type)
    {
        if (!Splits(name, config, type))
        {
            return;
        }

        report.Line($"---- {name} {type} over {size} GPUs (random weights: {config.LayerCount} layers, dim {config.EmbeddingLength}, heads {config.HeadCount}/{config.KvHeadCount}×{config.HeadDim}, ffn {config.FeedForwardLength}, vocab {config.VocabularySize})");
        using var source = new RandomModel(name, config, type, name.Length * 7919);
        using var gpu = new CudaBackend();
        using IForwardModel whole = new LlamaModel(source, gpu, 64, 4);
        using var split = Split(source, 64, 4);
        source.Scale("blk.0.attn_norm.weight", 1 + 1e-6f);
        using IForwardModel perturbed = new LlamaModel(source, gpu, 64, 4);
        report.Line($"     {split.Description}");

        const int blockSize = 16;
        using var wholeCache = whole.CreateKvCache(whole.KvCacheShape(blockSize, 16, KvCacheDtype.Auto));
        using var splitCache = split.CreateKvCache(split.KvCacheShape(blockSize, 16, KvCacheDtype.Auto));
        using var perturbedCache = perturbed.CreateKvCache(perturbed.KvCacheShape(blockSize, 16, KvCacheDtype.Auto));
        var vocabulary = config.VocabularySize;
        var expected = new float[4 * vocabulary];
        var actual = new float[4 * vocabulary];
        var nearby = new float[4 * vocabulary];
        double Worst(float[] a, float[] b, int rows) =>
            Enumerable.Range(0, rows).Max(row => Report.RelativeError(a.AsSpan(row * vocabulary, vocabulary), b.AsSpan(row * vocabulary, vocabulary)));
        int[][] tables = [[3, 0, 7, 9, 12], [1, 15, 4, 2, 8]];
        var random = new Random(5);
        int[] lengths = [21, 13];
        var prompts = lengths.Select(n => Enumerable.Range(0, n).Select(_ => random.Next(vocabulary)).ToArray()).ToArray();
        var batch = new ForwardBatch(64, 2, 8);
        int Slot(int s, int p) => tables[s][p / blockSize] * blockSize + p % blockSize;
        void Step(string what)
        {
            whole.Forward(batch, wholeCache, expected);
            split.Forward(batch, splitCache, actual);
            perturbed.Forward(batch, perturbedCache, nearby);
            var sensitivity = Worst(nearby, expected, batch.LogitCount);
            report.Check($"{name} {type} TP={size} {what}", Worst(actual, expected, batch.LogitCount), Math.Max(Floor(type), 3 * sensitivity),
                $"self-sensitivity {sensitivity:E1}");
        }

        // A mixed prefill of two sequences (two logit rows), then decode steps of both fed the whole model's greedy choice.
        batch.Clear();
        for (var s = 0; s < 2; s++)
        {
            batch.AddSequence(tables[s]);
        }

        for (var s = 0; s < 2; s++)
        {
            for (var p = 0; p < lengths[s]; p++)
            {
                batch.AddToken(prompts[s][p], p, s, Slot(s, p), p == lengths[s] - 1);
            }
        }

        Step("prefill");
        for (var i = 0; i < 8; i++)
        {
            var next = new[] { Sampler.ArgMax(expected.AsSpan(0, vocabulary)), Sampler.ArgMax(expected.AsSpan(vocabulary, vocabulary)) };
            batch.Clear();
            for (var s = 0; s < 2; s++)
            {
                batch.AddSequence(tables[s]);
            }

            for (var s = 0; s < 2; s++)
            {
                batch.AddToken(next[s], lengths[s] + i, s, Slot(s, lengths[s] + i), true);
            }

            Step($"decode step {i + 1} × 2 sequences");
        }

        // One sequence alone: one activation row, where the norms fold into the all-reduce and the GEMVs around them.
        for (var i = 0; i < 3; i++)
        {
            var next = Sampler.ArgMax(expected.AsSpan(0, vocabulary));
            var position = lengths[0] + 8 + i;
            batch.Clear();
            batch.AddSequence(tables[0]);
            batch.AddToken(next, position, 0, Slot(0, position), true);
            Step($"decode step {i + 1} × 1 sequence");
        }

        using var wholeGenerator = new Generator(whole);
        using var splitGenerator = new Generator(split);
        using var perturbedGenerator = new Generator(perturbed);
        var request = new GenerationRequest { MaxTokens = 24 };
        var wholeTokens = wholeGenerator.Generate(prompts[0], request).TokenIds;
        var splitTokens = splitGenerator.Generate(prompts[0], request).TokenIds;
        var nearbyTokens = perturbedGenerator.Generate(prompts[0], request).TokenIds;
        var same = wholeTokens.Zip(splitTokens).TakeWhile(p => p.First == p.Second).Count();
        var nearbySame = wholeTokens.Zip(nearbyTokens).TakeWhile(p => p.First == p.Second).Count();
        if (same == wholeTokens.Length && splitTokens.Length == wholeTokens.Length)
        {
            report.Pass($"{name} {type} TP={size}: the same {same} greedy tokens as TP=1");
        }
        else if (nearbySame < wholeTokens.Length)
        {
            // A 1e-6 change of one norm weight already changes this random network's greedy continuation: equal tokens
            // cannot be asked of a different summation order; the logits bound above is the check.
            report.Pass($"{name} {type} TP={size}: greedy tokens agree with TP=1 for {same} of {wholeTokens.Length}; the 1e-6-perturbed TP=1 model's for {nearbySame} (a chaotic random network)");
        }
        else
        {
            report.Fail($"{name} {type} TP={size} greedy tokens", $"the first {same} of {wholeTokens.Length} agree, the perturbed TP=1 model's {nearbySame} (TP=1 {string.Join(",", wholeTokens)}; TP={size} {string.Join(",", splitTokens)})");
        }
    }

    /// <summary>
    /// A decode step recorded as CUDA graphs (one per rank, all-reduces included) and replayed for later steps, against the
    /// same steps run eagerly: logits bit for bit (the same kernels with the same launch shapes, so nothing may differ).
    /// Steps are shaped as the serving engine's DecodeGraphs shapes them — three sequences padded to four, the context
    /// bound raised to 256 — and move to new tokens and positions each time. The serving engine keeps tensor-parallel
    /// serving eager until this passes (ServedModel).
    /// </summary>
    /// <param name="sequences">Sequences of each step, the last of them padding when more than one (one: the folded norms).</param>
    public void GraphReplay(string name, ModelConfig config, GgmlType type, int sequences = 4)
    {
        if (!Splits(name, config, type))
        {
            return;
        }

        using var source = new RandomModel(name, config, type, name.Length * 7919);
        using var split = Split(source, 64, 4);
        const int blockSize = 16, blocks = 8;
        var padded = sequences > 1;
        // At least the 256 positions the steps' context bound is raised to (DecodeGraphs' padding), for one sequence too.
        using var cache = split.CreateKvCache(split.KvCacheShape(blockSize, Math.Max(sequences * blocks, 256 / blockSize), KvCacheDtype.Auto));
        var vocabulary = config.VocabularySize;
        var random = new Random(11);
        var batch = new ForwardBatch(64, sequences, blocks);
        int[][] tables = [.. Enumerable.Range(0, sequences).Select(s => Enumerable.Range(s * blocks, blocks).ToArray())];
        int[] lengths = [9, 14, 5, 1];  // the fourth is the padding sequence, at position 0 as DecodeGraphs puts it
        int Slot(int s, int p) => tables[s][p / blockSize] * blockSize + p % blockSize;
        float[] Logits(DeviceTensor? logits)
        {
            var values = new float[sequences * vocabulary];
            split.Backend.ReadRows(logits ?? throw new InvalidOperationException("The step returned no logits."), sequences, values);
            return values;
        }

        void DecodeStep(int step)
        {
            batch.Clear();
            for (var s = 0; s < sequences; s++)
            {
                batch.AddSequence(tables[s]);
            }

            for (var s = 0; s < sequences; s++)
            {
                var position = padded && s == sequences - 1 ? 0 : lengths[s] + step;
                batch.AddToken(random.Next(vocabulary), position, s, Slot(s, position), true);
            }

            batch.RaiseContextBound(256);
        }

        // The prompts, eagerly; then the first decode step eagerly and recorded.
        batch.Clear();
        var prompted = padded ? sequences - 1 : sequences;
        for (var s = 0; s < prompted; s++)
        {
            batch.AddSequence(tables[s]);
        }

        for (var s = 0; s < prompted; s++)
        {
            for (var p = 0; p < lengths[s]; p++)
            {
                batch.AddToken(random.Next(vocabulary), p, s, Slot(s, p), p == lengths[s] - 1);
            }
        }

        split.ForwardToLogits(batch, cache);
        DecodeStep(0);
        split.ForwardToLogits(batch, cache);
        using var graph = split.CaptureStep(batch, cache);
        var differing = 0L;
        var steps = 6;
        for (var step = 1; step <= steps; step++)
        {
            DecodeStep(step);
            var eager = Logits(split.ForwardToLogits(batch, cache));
            if (!graph.IsCurrent)
            {
                report.Fail($"{name} {type} TP={size}: replayed decode steps = eager ones", $"the graph went stale at step {step} (a step buffer moved)");
                return;
            }

            var replayed = Logits(graph.Replay(batch));
            differing += Report.CountDifferentBits(eager, replayed);
        }

        var shape = padded ? $"{sequences} sequences, one of them padding" : "one sequence";
        var label = $"{name} {type} TP={size}: {steps} replayed decode steps ({shape}) = the same steps run eagerly, logits bit for bit";
        report.BitForBit(label, differing, (long)steps * sequences * vocabulary, "logits");
    }

    /// <summary>Decode tokens/s at batch 1, eager launches, greedy on the GPU: TP=1 on device 0 and TP=N, measured in the same run.</summary>
    public void Decode(string name, ModelConfig config, GgmlType type, int prompt = 128, int steps = 64)
    {
        using var source = new RandomModel(name, config, type, 99);
        double Run(IForwardModel model)
        {
            const int blockSize = 16;
            var blocks = (prompt + steps + blockSize) / blockSize;
            using var cache = model.CreateKvCache(model.KvCacheShape(blockSize, blocks, KvCacheDtype.Auto));
            var (batch, table) = PromptBatch(config, prompt, blocks);
            var argMax = (CudaBackend)model.Backend;
            var ids = new int[1];
            argMax.ArgMax(model.ForwardToLogits(batch, cache)!, 1, ids);
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < steps; i++)
            {
                batch.Clear();
                batch.AddSequence(table);
                batch.AddToken(ids[0], prompt + i, 0, prompt + i, true);
                argMax.ArgMax(model.ForwardToLogits(batch, cache)!, 1, ids);
            }

            return steps / clock.Elapsed.TotalSeconds;
        }

        double one, many;
        long bytes;
        using (var gpu = new CudaBackend())
        using (var whole = new LlamaModel(source, gpu, prompt, 1))
        {
            bytes = whole.WeightBytesPerStep;
            one = Run(whole);
        }

        string allReduce;
        using (var split = Split(source, prompt, 1))
        {
            many = Run(split);
            allReduce = split.Description;
        }

        double nccl;
        Environment.SetEnvironmentVariable("ASPIREAI_TP_ALLREDUCE", "nccl");
        try
        {
            using var split = Split(source, prompt, 1);
            nccl = Run(split);
        }
        finally
        {
            Environment.SetEnvironmentVariable("ASPIREAI_TP_ALLREDUCE", null);
        }

        report.Timing($"decode {name} {type} batch 1, eager, greedy on the GPU: TP=1 {one,7:F1} tokens/s, TP={size} {many,7:F1} tokens/s ({many / one:F2}×; {allReduce}), TP={size} all-reduce on NCCL only {nccl,7:F1} tokens/s ({nccl / one:F2}×); {bytes / 1e9:F2} GB of weights per step in all");
    }

    /// <summary>
    /// Decode speed at batch 1 (eager, greedy on the GPU) of one model over each of <paramref name="sizes"/> GPUs — TP = 1
    /// only where the model fits one — against the GPUs' combined copy bandwidth, with where rank 0's step goes: its kernels'
    /// event-timed profile, the all-reduce kernel's time per step (its waiting for the slowest rank included) against the
    /// bytes it reduces.
    /// </summary>
    public void Scaling(string name, ModelConfig config, GgmlType type, int[] sizes, double copyGbPerSecond)
    {
        const int prompt = 128, steps = 48;
        var clock = Stopwatch.StartNew();
        using var source = new RandomModel(name, config, type, 99);
        report.Line($"---- decode scaling {name} {type} (random weights made in {clock.Elapsed.TotalSeconds:F0} s)");
        double? single = null, graphSingle = null;
        foreach (var n in sizes)
        {
            clock.Restart();
            using var wholeDevice = n == 1 ? new CudaBackend() : null;
            IForwardModel model;
            try
            {
                model = wholeDevice is not null ? new LlamaModel(source, wholeDevice, prompt, 1) : Split(source, prompt, 1, n);
            }
            catch (CudaException e) when (e.Result == CudaResult.OutOfMemory)
            {
                report.Line($"{name} {type} TP={n}: does not fit ({e.Message})");
                continue;
            }

            using (model)
            {
                var loadSeconds = clock.Elapsed.TotalSeconds;
                const int blockSize = 16;
                var blocks = (prompt + steps + blockSize) / blockSize;
                using var cache = model.CreateKvCache(model.KvCacheShape(blockSize, blocks, KvCacheDtype.Auto));
                var (batch, table) = PromptBatch(config, prompt, blocks);
                var device = (CudaBackend)model.Backend;
                var ids = new int[1];
                device.ArgMax(model.ForwardToLogits(batch, cache)!, 1, ids);
                void Step(int position)
                {
                    batch.Clear();
                    batch.AddSequence(table);
                    batch.AddToken(ids[0], position, 0, position, true);
                    device.ArgMax(model.ForwardToLogits(batch, cache)!, 1, ids);
                }

                Step(prompt);
                clock.Restart();
                for (var i = 0; i < steps; i++)
                {
                    Step(prompt + 1 + i);
                }

                var stepMs = clock.Elapsed.TotalMilliseconds / steps;
                single ??= n == 1 ? 1000 / stepMs : null;
                var bandwidth = model.WeightBytesPerStep / (stepMs * 1e-3) / 1e9;
                var speedup = single is { } one && n > 1 ? $", {1000 / stepMs / one:F2}× TP=1" : "";
                report.Timing($"decode {name} {type} batch 1 TP={n}: {1000 / stepMs,7:F1} tok/s ({stepMs:F2} ms/step{speedup}); {model.WeightBytesPerStep / 1e9:F1} GB of weights at {bandwidth:F0} GB/s = {100 * bandwidth / (n * copyGbPerSecond):F0}% of {n} × {copyGbPerSecond:F0} GB/s copy; loaded in {loadSeconds:F0} s; {cache.Shape.Dtype.Name()} KV; {model.Description}");

                // The step as CUDA graphs (one per rank, all-reduces included), replayed at a fixed position.
                batch.Clear();
                batch.AddSequence(table);
                batch.AddToken(ids[0], prompt + steps, 0, prompt + steps, true);
                double ReplayMs()
                {
                    model.ForwardToLogits(batch, cache);
                    using var graph = model.CaptureStep(batch, cache);
                    clock.Restart();
                    for (var i = 0; i < steps; i++)
                    {
                        device.ArgMax(graph.Replay(batch)!, 1, ids);
                    }

                    return clock.Elapsed.TotalMilliseconds / steps;
                }

                var graphMs = ReplayMs();
                graphSingle ??= n == 1 ? 1000 / graphMs : null;
                var graphBandwidth = model.WeightBytesPerStep / (graphMs * 1e-3) / 1e9;
                var graphSpeedup = graphSingle is { } g && n > 1 ? $", {1000 / graphMs / g:F2}× TP=1" : "";
                report.Timing($"decode {name} {type} batch 1 TP={n}: {1000 / graphMs,7:F1} tok/s as replayed CUDA graphs ({graphMs:F2} ms/step{graphSpeedup}); {graphBandwidth:F0} GB/s = {100 * graphBandwidth / (n * copyGbPerSecond):F0}% of {n} × {copyGbPerSecond:F0} GB/s");

                // The replayed step with a setting changed on every rank for the A/B, restored afterwards.
                var backends = model is TensorParallelModel tp ? tp.Ranks.Select(r => (CudaBackend)r.Backend).ToArray() : [device];
                double ReplayMsWith(Action<CudaBackend> change, Action<CudaBackend> restore)
                {
                    foreach (var b in backends)
                    {
                        change(b);
                    }

                    try
                    {
                        return ReplayMs();
                    }
                    finally
                    {
                        foreach (var b in backends)
                        {
                            restore(b);
                        }
                    }
                }

                // Every norm a launch of its own (not folded into the all-reduce or the GEMVs).
                var unfoldedMs = ReplayMsWith(b => b.FoldNorms = false, b => b.FoldNorms = true);
                report.Timing($"decode {name} {type} batch 1 TP={n}: {1000 / unfoldedMs,7:F1} tok/s as replayed CUDA graphs, norms not folded ({unfoldedMs:F2} ms/step)");

                // attention_reduce and silu_mul letting their dependents in at the other end of their wait.
                var dependentsFirst = device.DependentsFirst;
                var otherMs = ReplayMsWith(b => b.DependentsFirst = !dependentsFirst, b => b.DependentsFirst = dependentsFirst);
                report.Timing($"decode {name} {type} batch 1 TP={n}: {1000 / otherMs,7:F1} tok/s as replayed CUDA graphs, attention_reduce and silu_mul let their dependents in {(dependentsFirst ? "after" : "before")} their wait ({otherMs:F2} ms/step)");

                // Rank 0's step, event-timed: only rank 0's stream carries the timer; the other ranks run free.
                using var timer = new KernelTimer(device.Context);
                device.Stream.Timer = timer;
                try
                {
                    Step(prompt + steps);
                }
                finally
                {
                    device.Stream.Timer = null;
                }

                var kernels = timer.Collect();
                var total = kernels.Sum(k => k.Milliseconds);
                var reduce = kernels.Where(k => k.Kernel == "peer_all_reduce").ToArray();
                // Two all-reduces a layer of one row of the model's width each (plus the logits' gather, not counted).
                var reduceBytes = 2.0 * config.LayerCount * config.EmbeddingLength * sizeof(float);
                var reduceText = reduce.Length == 0 ? "all-reduce on NCCL (not in this profile)"
                    : $"peer_all_reduce {reduce.Sum(k => k.Launches)} launches {reduce.Sum(k => k.Milliseconds) * 1000:F0} us ({100 * reduce.Sum(k => k.Milliseconds) / total:F0}%) for {reduceBytes / 1e3:F0} KB per rank per step";
                report.Timing($"  rank 0 profile: kernels {total:F3} ms of the {stepMs:F3} ms step; {reduceText}");
                foreach (var (kernel, launches, ms) in kernels.OrderByDescending(k => k.Milliseconds).Take(5))
                {
                    report.Timing($"    {kernel,-26} {launches,4} launches {ms * 1000,9:F1} us {100 * ms / total,5:F1}%");
                }
            }
        }
    }

    /// <summary>One sequence of <paramref name="prompt"/> random tokens over blocks 0… (slot = position), logits of the last.</summary>
    private static (ForwardBatch Batch, int[] Table) PromptBatch(ModelConfig config, int prompt, int blocks)
    {
        var table = Enumerable.Range(0, blocks).ToArray();
        var batch = new ForwardBatch(prompt, 1, blocks);
        batch.AddSequence(table);
        var random = new Random(3);
        for (var p = 0; p < prompt; p++)
        {
            batch.AddToken(random.Next(config.VocabularySize), p, 0, p, p == prompt - 1);
        }

        return (batch, table);
    }

    /// <summary>Whether the model's shape splits over the ranks; if not, says why in the report.</summary>
    private bool Splits(string name, ModelConfig config, GgmlType type)
    {
        try
        {
            _ = new ShardPlan(config, size);
            return true;
        }
        catch (ArgumentException e)
        {
            report.Line($"---- {name} {type}: does not split over {size} GPUs ({e.Message})");
            return false;
        }
    }

    private TensorParallelModel Split(IModelSource source, int maxBatchTokens, int maxLogitRows, int ranks = 0)
    {
        var (backends, group) = TensorParallelDevices.Create("cuda", ranks > 0 ? ranks : size, 0, out _);
        return new TensorParallelModel(source, backends, group, maxBatchTokens, maxLogitRows);
    }
}
