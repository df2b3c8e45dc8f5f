using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Synthetic;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tokenization;

namespace AspireAi.GpuCheck;

/// <summary>
/// The whole forward pass on the GPU against the CPU backend: random-weight models of real shapes (a mixed prefill of two
/// sequences, then decode steps of both, the same tokens fed to both backends) and a real model file's greedy text.
/// </summary>
internal sealed class EngineChecks(CudaBackend gpu, CpuBackend cpu, Report report)
{
    /// <summary>
    /// GPU and CPU differ by float rounding (~1e-7 per operation; more where the GPU rounds activations to fp16/bf16 for the
    /// tensor cores). How much a deep random network amplifies such differences depends on the network, so the bound is
    /// calibrated on the CPU itself: the same model with one norm weight changed by 1e-6 (relative), run on the same tokens.
    /// The GPU passes when its logits are within 3× that self-sensitivity of the CPU's, and never needs to be closer than
    /// 1e-3 (quantized and F32 weights) or 2e-2 (F16/BF16 weights, whose GEMM rounds activations).
    /// The same steps also run on the GPU over an f16 KV cache (<c>--kv-cache-dtype fp16</c>). Rounding every key and value to
    /// f16 (≤ 2⁻¹¹ relative each) is an error of the size the F16 GEMM's activation rounding makes on every matmul input, so
    /// it gets that floor, 2e-2 (or 3× the self-sensitivity when larger); its logits error, largest logit difference and
    /// greedy agreement with the CPU are reported.
    /// </summary>
    /// <param name="promptLengths">The two sequences' prompts, prefilled together in the first step (default 21 + 13). More
    /// than 64 tokens take the GEMMs of prefill (on Hopper, the wgmma kernels with the gated gate/up and the grouped q/k/v).</param>
    public void RandomModel(string name, ModelConfig config, GgmlType type, int[]? promptLengths = null)
    {
        report.Line($"---- {name} ({type}, random weights: {config.LayerCount} layers, dim {config.EmbeddingLength}, heads {config.HeadCount}/{config.KvHeadCount}×{config.HeadDim}, ffn {config.FeedForwardLength}, vocab {config.VocabularySize})");
        using var source = new RandomModel(name, config, type, name.Length * 7919);
        int[] lengths = promptLengths ?? [21, 13];
        var maxTokens = Math.Max(64, lengths.Sum());
        using var gpuModel = new LlamaModel(source, gpu, maxTokens, 4);
        using var cpuModel = new LlamaModel(source, cpu, maxTokens, 4);
        source.Scale("blk.0.attn_norm.weight", 1 + 1e-6f);
        using var perturbedModel = new LlamaModel(source, cpu, maxTokens, 4);

        // Each sequence's blocks scattered through the cache (6 decode steps follow the prompt).
        const int blockSize = 16;
        var blocksPerSequence = (lengths.Max() + 6 + blockSize - 1) / blockSize;
        var blocks = 2 * blocksPerSequence + 6;
        var tables = ScatteredTables(blocksPerSequence, blocks);
        using var gpuCache = gpu.CreateKvCache(gpuModel.KvCacheShape(blockSize, blocks));
        using var halfCache = gpu.CreateKvCache(gpuModel.KvCacheShape(blockSize, blocks) with { Dtype = KvCacheDtype.Float16 });
        using var cpuCache = cpu.CreateKvCache(cpuModel.KvCacheShape(blockSize, blocks));
        using var perturbedCache = cpu.CreateKvCache(cpuModel.KvCacheShape(blockSize, blocks));
        var perturbedLogits = new float[2 * config.VocabularySize];
        var random = new Random(5);
        var prompts = lengths.Select(n => Enumerable.Range(0, n).Select(_ => random.Next(config.VocabularySize)).ToArray()).ToArray();
        var vocabulary = config.VocabularySize;
        var gpuLogits = new float[2 * vocabulary];
        var cpuLogits = new float[2 * vocabulary];
        var halfLogits = new float[2 * vocabulary];
        var batch = new ForwardBatch(maxTokens, 2, blocksPerSequence);
        AddPrompts(batch, tables, prompts, blockSize);

        var agree = 0;
        var halfAgree = 0;
        var steps = 0;
        var worst = 0.0;
        var halfWorst = 0.0;
        var halfLargestDifference = 0.0;
        for (var step = 0; step < 6; step++)
        {
            gpuModel.Forward(batch, gpuCache, gpuLogits);
            gpuModel.Forward(batch, halfCache, halfLogits);
            cpuModel.Forward(batch, cpuCache, cpuLogits);
            var error = Report.RelativeError(gpuLogits, cpuLogits, 2 * vocabulary);
            var halfError = Report.RelativeError(halfLogits, cpuLogits, 2 * vocabulary);
            halfWorst = Math.Max(halfWorst, halfError);
            halfLargestDifference = Math.Max(halfLargestDifference, LargestDifference(halfLogits, cpuLogits));
            perturbedModel.Forward(batch, perturbedCache, perturbedLogits);
            var sensitivity = Report.RelativeError(perturbedLogits, cpuLogits, 2 * vocabulary);
            worst = Math.Max(worst, error);
            var next = new int[2];
            for (var s = 0; s < 2; s++)
            {
                next[s] = Sampler.ArgMax(cpuLogits.AsSpan(s * vocabulary, vocabulary));
                agree += Sampler.ArgMax(gpuLogits.AsSpan(s * vocabulary, vocabulary)) == next[s] ? 1 : 0;
                halfAgree += Sampler.ArgMax(halfLogits.AsSpan(s * vocabulary, vocabulary)) == next[s] ? 1 : 0;
                steps++;
            }

            var floor = type is GgmlType.F16 or GgmlType.BF16 ? 2e-2 : 1e-3;
            report.Check($"{name} {type} step {step} ({(step == 0 ? $"mixed prefill {lengths[0]}+{lengths[1]}" : "decode 2 sequences")}) logits", error,
                Math.Max(floor, 3 * sensitivity), $"CPU self-sensitivity {sensitivity:E1}");
            report.Check($"{name} {type} step {step} logits, f16 KV cache", halfError, Math.Max(HalfKvFloor, 3 * sensitivity),
                $"largest logit difference {LargestDifference(halfLogits, cpuLogits):G3}");
            batch.Clear();
            for (var s = 0; s < 2; s++)
            {
                batch.AddSequence(tables[s]);
            }

            for (var s = 0; s < 2; s++)
            {
                var p = lengths[s]++;
                batch.AddToken(next[s], p, s, Slot(tables[s], p, blockSize), true);
            }
        }

        report.Line($"     {name} {type}: greedy tokens agree {agree}/{steps}; worst logits rel.err {worst:E2}");
        report.Line($"     {name} {type}, f16 KV cache: greedy tokens agree {halfAgree}/{steps}; worst logits rel.err {halfWorst:E2}, largest logit difference {halfLargestDifference:G3}");
    }

    /// <summary>
    /// Llama shapes that cover the persistent kernel's variants: 4 query heads a KV head of dimension 128 (Llama-3-8B's),
    /// 8 of 64, and 1 of 64 (no grouping), each with widths that are multiples of 1,024 as it needs.
    /// </summary>
    public static IEnumerable<(string Name, ModelConfig Config)> PersistentDecodeShapes()
    {
        static ModelConfig Llama(int layers, int dim, int heads, int kvHeads, int headDim, int ffn) => new()
        {
            Architecture = ModelArchitecture.Llama, EmbeddingLength = dim, LayerCount = layers, HeadCount = heads, KvHeadCount = kvHeads,
            HeadDim = headDim, FeedForwardLength = ffn, VocabularySize = 2048, ContextLength = 1024, RmsNormEpsilon = 1e-5f, RopeTheta = 500000f,
        };

        yield return ("Llama dim 1024, 8/2 heads × 128", Llama(3, 1024, 8, 2, 128, 3072));
        yield return ("Llama dim 2048, 32/4 heads × 64", Llama(2, 2048, 32, 4, 64, 5120));
        yield return ("Llama dim 1024, 16/16 heads × 64", Llama(2, 1024, 16, 16, 64, 2048));
    }

    /// <summary>
    /// The persistent decode kernel (decode_persistent.cu: every block of a one-token step in one launch) against the
    /// layer-by-layer step on the GPU and against the CPU, on a random Q4_0 model of this Llama shape: two sequences (a
    /// prompt of 150 tokens, spread over many attention partitions, and one of 5, shorter than the partitions, so some are
    /// empty) prefilled together, then 6 decode steps of each, one token a step. Each step runs on three caches: the GPU's
    /// layer-by-layer path (f16 KV), the persistent kernel (f16 KV) and the CPU (float32). The kernel passes where its logits
    /// are within 3× the CPU's self-sensitivity of the layer-by-layer GPU's (never needing to be closer than 1e-3, as the
    /// quantized models above) and within the f16 KV cache's bound of the CPU's, and where every one of its steps ran the
    /// kernel. The last step of each sequence goes back to the layer-by-layer path over the persistent kernel's cache, so
    /// the keys and values it wrote are what that path reads.
    /// </summary>
    public void PersistentDecode(string name, ModelConfig config)
    {
        const GgmlType type = GgmlType.Q4_0;
        report.Line($"---- {name} ({type}, random weights: {config.LayerCount} layers, dim {config.EmbeddingLength}, heads {config.HeadCount}/{config.KvHeadCount}×{config.HeadDim}, ffn {config.FeedForwardLength}), persistent decode kernel");
        using var source = new RandomModel(name, config, type, name.Length * 7919 + config.HeadDim);
        int[] lengths = [150, 5];
        var maxTokens = lengths.Sum();
        using var gpuModel = new LlamaModel(source, gpu, maxTokens, 4);
        using var cpuModel = new LlamaModel(source, cpu, maxTokens, 4);
        source.Scale("blk.0.attn_norm.weight", 1 + 1e-6f);
        using var perturbedModel = new LlamaModel(source, cpu, maxTokens, 4);
        const int blockSize = 16;
        const int steps = 6;
        var blocksPerSequence = (lengths.Max() + steps + blockSize - 1) / blockSize;
        var blocks = 2 * blocksPerSequence + 3;
        var tables = ScatteredTables(blocksPerSequence, blocks);
        var shape = gpuModel.KvCacheShape(blockSize, blocks);
        using var layeredCache = gpu.CreateKvCache(shape with { Dtype = KvCacheDtype.Float16 });
        using var persistentCache = gpu.CreateKvCache(shape with { Dtype = KvCacheDtype.Float16 });
        using var cpuCache = cpu.CreateKvCache(shape);
        using var perturbedCache = cpu.CreateKvCache(shape);
        var random = new Random(11);
        var prompts = lengths.Select(n => Enumerable.Range(0, n).Select(_ => random.Next(config.VocabularySize)).ToArray()).ToArray();
        var vocabulary = config.VocabularySize;
        float[] layered = new float[2 * vocabulary], persistent = new float[2 * vocabulary], reference = new float[2 * vocabulary], perturbed = new float[2 * vocabulary];
        var batch = new ForwardBatch(maxTokens, 2, blocksPerSequence);

        void Run(bool persistentKernel, PagedKvCache cache, float[] logits)
        {
            gpu.PersistentDecode = persistentKernel;
            try
            {
                gpuModel.Forward(batch, cache, logits);
            }
            finally
            {
                gpu.PersistentDecode = false;
            }
        }

        AddPrompts(batch, tables, prompts, blockSize);

        Run(false, layeredCache, layered);
        Run(true, persistentCache, persistent);
        cpuModel.Forward(batch, cpuCache, reference);
        perturbedModel.Forward(batch, perturbedCache, perturbed);
        int[] next = [Sampler.ArgMax(reference.AsSpan(0, vocabulary)), Sampler.ArgMax(reference.AsSpan(vocabulary, vocabulary))];
        var ran = gpu.PersistentDecodeSteps;
        var (agree, worstLayered, worstCpu, kernelSteps) = (0, 0.0, 0.0, 0);
        for (var step = 0; step < steps; step++)
        {
            for (var s = 0; s < 2; s++)
            {
                var p = lengths[s]++;
                batch.Clear();
                batch.AddSequence(tables[s]);
                batch.AddToken(next[s], p, 0, Slot(tables[s], p, blockSize), true);
                var last = step == steps - 1;
                Run(false, layeredCache, layered);
                var before = gpu.PersistentDecodeSteps;
                Run(!last, persistentCache, persistent);
                kernelSteps += gpu.PersistentDecodeSteps - before;
                cpuModel.Forward(batch, cpuCache, reference);
                perturbedModel.Forward(batch, perturbedCache, perturbed);
                var sensitivity = Report.RelativeError(perturbed, reference, vocabulary);
                var againstLayered = Report.RelativeError(persistent, layered, vocabulary);
                var againstCpu = Report.RelativeError(persistent, reference, vocabulary);
                (worstLayered, worstCpu) = (Math.Max(worstLayered, againstLayered), Math.Max(worstCpu, againstCpu));
                next[s] = Sampler.ArgMax(reference.AsSpan(0, vocabulary));
                agree += Sampler.ArgMax(persistent.AsSpan(0, vocabulary)) == next[s] ? 1 : 0;
                var what = $"{name} persistent decode, sequence {s} at position {p}{(last ? " (layer by layer over its cache)" : "")}";
                report.Check($"{what}: against layer by layer", againstLayered, Math.Max(1e-3, 3 * sensitivity), $"CPU self-sensitivity {sensitivity:E1}");
                report.Check($"{what}: against the CPU", againstCpu, Math.Max(HalfKvFloor, 3 * sensitivity),
                    $"largest logit difference {LargestDifference(persistent.AsSpan(0, vocabulary), reference.AsSpan(0, vocabulary)):G3}");
            }
        }

        var expected = 2 * (steps - 1);
        if (kernelSteps == expected)
        {
            report.Pass($"{name} persistent decode ran the kernel in all {expected} steps that asked for it");
        }
        else
        {
            report.Fail($"{name} persistent decode", $"the kernel ran in {kernelSteps} of {expected} steps: {gpu.PersistentDecodeUnsupported ?? "no reason given"}");
        }

        report.Line($"     {name} persistent decode: greedy tokens agree with the CPU {agree}/{2 * steps}; worst logits rel.err {worstLayered:E2} against layer by layer, {worstCpu:E2} against the CPU ({gpu.PersistentDecodeSteps - ran} kernel steps)");
    }

    /// <summary>Two sequences' block tables scattered through a cache of <paramref name="blocks"/> blocks (as a long-running engine's are).</summary>
    private static int[][] ScatteredTables(int blocksPerSequence, int blocks)
    {
        var shuffled = Enumerable.Range(0, blocks).OrderBy(b => (b * 7919) % blocks).ThenBy(b => b).ToArray();
        return [shuffled[..blocksPerSequence], shuffled[blocksPerSequence..(2 * blocksPerSequence)]];
    }

    /// <summary>The cache slot of position <paramref name="position"/> of a sequence with this block table.</summary>
    private static int Slot(int[] table, int position, int blockSize) => table[position / blockSize] * blockSize + position % blockSize;

    /// <summary>Every sequence's prompt into <paramref name="batch"/> (one mixed prefill), the last token of each wanting logits.</summary>
    private static void AddPrompts(ForwardBatch batch, int[][] tables, int[][] prompts, int blockSize)
    {
        foreach (var table in tables)
        {
            batch.AddSequence(table);
        }

        for (var s = 0; s < prompts.Length; s++)
        {
            for (var p = 0; p < prompts[s].Length; p++)
            {
                batch.AddToken(prompts[s][p], p, s, Slot(tables[s], p, blockSize), p == prompts[s].Length - 1);
            }
        }
    }

    /// <summary>The f16 KV cache's floor on the logits' relative error: that of the F16 GEMM's activation rounding.</summary>
    private const double HalfKvFloor = 2e-2;

    /// <summary>max |a − b| over the two arrays.</summary>
    private static double LargestDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var largest = 0.0;
        for (var i = 0; i < b.Length; i++)
        {
            largest = Math.Max(largest, Math.Abs((double)a[i] - b[i]));
        }

        return largest;
    }

    /// <summary>
    /// Greedy generation from a real GGUF file on the CPU, and on the GPU over a float32 and over an f16 KV cache, each fed
    /// the CPU's tokens (so every step compares logits of the same context): the GPU's greedy choices must be the CPU's at
    /// every step, which is the same as identical free-running greedy text. The largest logit difference and the logits'
    /// relative error against the CPU are reported for both caches (the f16 numbers are the KV cache's measured accuracy,
    /// docs/performance.md).
    /// </summary>
    public void RealModel(string path, string prompt, int tokens)
    {
        using var file = GgufFile.Open(path);
        var tokenizer = Tokenizers.FromGguf(file);
        var ids = tokenizer.Encode(prompt);
        var vocabulary = file.Config.VocabularySize;
        var name = Path.GetFileName(path);

        // Step i's logits for the CPU's context; the CPU's run chooses the tokens the others are fed.
        (List<int> Choices, float[][] Logits) Run(IBackend backend, KvCacheDtype dtype, IReadOnlyList<int>? feed)
        {
            using var model = new LlamaModel(file, backend, ids.Length, 1);
            const int blockSize = 16;
            var blocks = (ids.Length + tokens + blockSize) / blockSize + 1;
            using var cache = backend.CreateKvCache(model.KvCacheShape(blockSize, blocks) with { Dtype = dtype });
            var table = Enumerable.Range(0, blocks).Reverse().ToArray();
            var batch = new ForwardBatch(ids.Length, 1, blocks);
            var choices = new List<int>();
            var logits = new float[tokens][];
            batch.AddSequence(table);
            for (var p = 0; p < ids.Length; p++)
            {
                batch.AddToken(ids[p], p, 0, table[p / blockSize] * blockSize + p % blockSize, p == ids.Length - 1);
            }

            for (var i = 0; i < tokens; i++)
            {
                logits[i] = new float[vocabulary];
                model.Forward(batch, cache, logits[i]);
                choices.Add(Sampler.ArgMax(logits[i]));
                var next = feed?[i] ?? choices[i];
                var position = ids.Length + i;
                batch.Clear();
                batch.AddSequence(table);
                batch.AddToken(next, position, 0, table[position / blockSize] * blockSize + position % blockSize, true);
            }

            return (choices, logits);
        }

        var cpuRun = Run(cpu, KvCacheDtype.Float32, null);
        var text = tokenizer.Decode(cpuRun.Choices.ToArray());
        report.Line($"     {name} on the CPU: \"{prompt}{text.ReplaceLineEndings(" ")}\"");
        foreach (var dtype in new[] { KvCacheDtype.Float32, KvCacheDtype.Float16 })
        {
            var gpuRun = Run(gpu, dtype, cpuRun.Choices);
            var largest = 0.0;
            var error = 0.0;
            for (var i = 0; i < tokens; i++)
            {
                largest = Math.Max(largest, LargestDifference(gpuRun.Logits[i], cpuRun.Logits[i]));
                error = Math.Max(error, Report.RelativeError(gpuRun.Logits[i], cpuRun.Logits[i]));
            }

            var cacheName = dtype == KvCacheDtype.Float32 ? "" : ", f16 KV cache";
            report.Line($"     {name}{cacheName}: GPU vs CPU logits over {tokens} steps: largest difference {largest:G3}, worst rel.err {error:E2}");
            var first = gpuRun.Choices.Zip(cpuRun.Choices).TakeWhile(p => p.First == p.Second).Count();
            if (first == tokens)
            {
                report.Pass($"{name}{cacheName}: {tokens} greedy tokens identical on GPU and CPU (largest logit difference {largest:G3})");
            }
            else
            {
                report.Fail($"{name}{cacheName} greedy tokens", $"the GPU chooses {gpuRun.Choices[first]} where the CPU chooses {cpuRun.Choices[first]} at token {first} (\"{tokenizer.Decode(cpuRun.Choices.Take(first + 1).ToArray()).ReplaceLineEndings(" ")}\")");
            }
        }
    }

    /// <summary>
    /// Seeded sampling in the serving engine on a real model file, requests with different parameters (greedy, temperature,
    /// top-k, top-p, min-p, combined, penalties). All seven in one batch on the GPU: every token chosen by the device sampler
    /// (per-row parameters in one launch). Then each request alone (so every run has the same steps and the same logits),
    /// through the device sampler and through the host sampler (logprobs requested, so the logits come back): the tokens
    /// must be identical, as the kernel equals the host's TokenChooser bit for bit and each request draws the same uniforms
    /// on either path. Against the CPU backend the tokens are reported, not required: both quantize activations to int8,
    /// and a rounding difference that flips one code moves logits by ~1e-3, which a seeded draw can turn into another token.
    /// </summary>
    public void SeededSampling(string path, string prompt, int tokens)
    {
        using var file = GgufFile.Open(path);
        var tokenizer = Tokenizers.FromGguf(file);
        var ids = tokenizer.Encode(prompt);
        SamplingParams[] mixes =
        [
            SamplingParams.Greedy,
            new() { Temperature = 1f, Seed = 1 },
            new() { Temperature = 0.8f, TopK = 40, Seed = 2 },
            new() { Temperature = 1f, TopP = 0.9f, Seed = 3 },
            new() { Temperature = 1.2f, MinP = 0.05f, Seed = 4 },
            new() { Temperature = 0.7f, TopK = 50, TopP = 0.95f, MinP = 0.02f, Seed = 5 },
            new() { Temperature = 0.9f, TopP = 0.95f, RepetitionPenalty = 1.3f, PresencePenalty = 0.5f, FrequencyPenalty = 0.5f, Seed = 6 },
        ];
        // With CUDA graphs: device-sampled decode steps replay them, host-sampled ones (logprobs) run eagerly.
        var options = new EngineOptions { BlockSize = 16, KvCacheBlocks = 256, MaxBatchedTokens = 256, MaxNumSeqs = 8, CudaGraphs = true };
        (int[][] Tokens, long OnDevice, long OnHost, EngineSnapshot Snapshot) Run(IBackend backend, bool logprobs, SamplingParams[] batch)
        {
            using var model = new LlamaModel(file, backend, options.MaxBatchedTokens, options.MaxNumSeqs);
            using var engine = new LlmEngine(model, tokenizer, options, "gpucheck");
            var idle = engine.NextIdleAsync();
            var handles = batch.Select(m => engine.Submit(new EngineRequest { PromptTokenIds = ids, MaxTokens = tokens, Sampling = m, Logprobs = logprobs })).ToArray();
            var outputs = handles.Select(h => Collect(h).GetAwaiter().GetResult()).ToArray();
            return idle.Wait(TimeSpan.FromMinutes(5))
                ? (outputs, idle.Result.TokensChosenOnDevice, idle.Result.TokensChosenOnHost, idle.Result)
                : throw new TimeoutException("The engine did not become idle.");
        }

        (int[][] Tokens, long OnDevice, long OnHost, long Replays) Alone(IBackend backend, bool logprobs)
        {
            var runs = mixes.Select(m => Run(backend, logprobs, [m])).ToArray();
            return (runs.Select(r => r.Tokens[0]).ToArray(), runs.Sum(r => r.OnDevice), runs.Sum(r => r.OnHost), runs.Sum(r => r.Snapshot.GraphReplays));
        }

        var batched = Run(gpu, logprobs: false, mixes);
        var device = Alone(gpu, logprobs: false);
        var host = Alone(gpu, logprobs: true);
        var cpuRun = Alone(cpu, logprobs: false);
        var name = Path.GetFileName(path);
        report.Line($"     {name} seeded on the GPU (top-p 0.9): \"{prompt}{tokenizer.Decode(device.Tokens[3]).ReplaceLineEndings(" ")}\"");
        var total = mixes.Length * tokens;
        Expect($"{name}: {mixes.Length} seeded requests in one batch, {tokens} tokens each, all chosen by the GPU's sampler (only ids copied back)",
            batched.OnDevice == total && batched.OnHost == 0, $"device {batched.OnDevice}, host {batched.OnHost} of {total}");
        Expect($"{name}: with logprobs the same requests go through the host sampler", host.OnHost == total && host.OnDevice == 0,
            $"host {host.OnHost}, device {host.OnDevice} of {total}");
        // Device-sampled decode steps replay CUDA graphs (the batch of seven padded to eight); host-sampled ones run eagerly,
        // so "device sampler = host sampler" below also checks every replayed step against an eager one.
        var snapshot = batched.Snapshot;
        Expect($"{name}: decode steps replayed as CUDA graphs ({snapshot.GraphReplays} replays of {snapshot.GraphRecordings} recordings in the batch, {device.Replays} alone)",
            snapshot.GraphFailure is null && snapshot.GraphReplays > 0 && device.Replays > 0, snapshot.GraphFailure ?? "no step was replayed");
        for (var m = 0; m < mixes.Length; m++)
        {
            var what = $"{name} seeded {Describe(mixes[m])}";
            Expect($"{what}: GPU device sampler = GPU host sampler, {tokens} tokens", device.Tokens[m].SequenceEqual(host.Tokens[m]),
                $"differ from token {Agreement(device.Tokens[m], host.Tokens[m])} on");
            report.Line($"     {what}: GPU and CPU agree on {Agreement(device.Tokens[m], cpuRun.Tokens[m])} of {tokens} tokens");
        }
    }

    private static string Describe(SamplingParams p) => p.IsGreedy ? "greedy"
        : $"T={p.Temperature} top-k {p.TopK} top-p {p.TopP} min-p {p.MinP}{(p.HasPenalties ? $" penalties {p.RepetitionPenalty}/{p.PresencePenalty}/{p.FrequencyPenalty}" : "")}";

    private static int Agreement(int[] a, int[] b) => a.Zip(b).TakeWhile(p => p.First == p.Second).Count();

    private void Expect(string what, bool ok, string why)
    {
        if (ok)
        {
            report.Pass(what);
        }
        else
        {
            report.Fail(what, why);
        }
    }

    private static async Task<int[]> Collect(EngineRequestHandle handle)
    {
        var tokens = new List<int>();
        await foreach (var e in handle.ReadAllAsync())
        {
            if (e.TokenId >= 0)
            {
                tokens.Add(e.TokenId);
            }
        }

        return [.. tokens];
    }
}
