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
    /// </summary>
    public void RandomModel(string name, ModelConfig config, GgmlType type)
    {
        report.Line($"---- {name} ({type}, random weights: {config.LayerCount} layers, dim {config.EmbeddingLength}, heads {config.HeadCount}/{config.KvHeadCount}×{config.HeadDim}, ffn {config.FeedForwardLength}, vocab {config.VocabularySize})");
        using var source = new RandomModel(name, config, type, name.Length * 7919);
        using var gpuModel = new LlamaModel(source, gpu, 64, 4);
        using var cpuModel = new LlamaModel(source, cpu, 64, 4);
        source.Scale("blk.0.attn_norm.weight", 1 + 1e-6f);
        using var perturbedModel = new LlamaModel(source, cpu, 64, 4);

        const int blockSize = 16, blocks = 16;
        using var gpuCache = gpu.CreateKvCache(gpuModel.KvCacheShape(blockSize, blocks));
        using var cpuCache = cpu.CreateKvCache(cpuModel.KvCacheShape(blockSize, blocks));
        using var perturbedCache = cpu.CreateKvCache(cpuModel.KvCacheShape(blockSize, blocks));
        var perturbedLogits = new float[2 * config.VocabularySize];
        int[][] tables = [[3, 0, 7, 9, 12], [1, 15, 4, 2, 8]];
        var random = new Random(5);
        int[] lengths = [21, 13];
        var prompts = lengths.Select(n => Enumerable.Range(0, n).Select(_ => random.Next(config.VocabularySize)).ToArray()).ToArray();
        var vocabulary = config.VocabularySize;
        var gpuLogits = new float[2 * vocabulary];
        var cpuLogits = new float[2 * vocabulary];
        var batch = new ForwardBatch(64, 2, 5);
        for (var s = 0; s < 2; s++)
        {
            batch.AddSequence(tables[s]);
        }

        for (var s = 0; s < 2; s++)
        {
            for (var p = 0; p < lengths[s]; p++)
            {
                batch.AddToken(prompts[s][p], p, s, tables[s][p / blockSize] * blockSize + p % blockSize, p == lengths[s] - 1);
            }
        }

        var agree = 0;
        var steps = 0;
        var worst = 0.0;
        for (var step = 0; step < 6; step++)
        {
            gpuModel.Forward(batch, gpuCache, gpuLogits);
            cpuModel.Forward(batch, cpuCache, cpuLogits);
            var error = Report.RelativeError(gpuLogits, cpuLogits, 2 * vocabulary);
            perturbedModel.Forward(batch, perturbedCache, perturbedLogits);
            var sensitivity = Report.RelativeError(perturbedLogits, cpuLogits, 2 * vocabulary);
            worst = Math.Max(worst, error);
            var next = new int[2];
            for (var s = 0; s < 2; s++)
            {
                next[s] = Sampler.ArgMax(cpuLogits.AsSpan(s * vocabulary, vocabulary));
                agree += Sampler.ArgMax(gpuLogits.AsSpan(s * vocabulary, vocabulary)) == next[s] ? 1 : 0;
                steps++;
            }

            var floor = type is GgmlType.F16 or GgmlType.BF16 ? 2e-2 : 1e-3;
            report.Check($"{name} {type} step {step} ({(step == 0 ? "mixed prefill 21+13" : "decode 2 sequences")}) logits", error,
                Math.Max(floor, 3 * sensitivity), $"CPU self-sensitivity {sensitivity:E1}");
            batch.Clear();
            for (var s = 0; s < 2; s++)
            {
                batch.AddSequence(tables[s]);
            }

            for (var s = 0; s < 2; s++)
            {
                var p = lengths[s]++;
                batch.AddToken(next[s], p, s, tables[s][p / blockSize] * blockSize + p % blockSize, true);
            }
        }

        report.Line($"     {name} {type}: greedy tokens agree {agree}/{steps}; worst logits rel.err {worst:E2}");
    }

    /// <summary>Greedy generation from a real GGUF file on both backends; the token sequences must be identical.</summary>
    public void RealModel(string path, string prompt, int tokens)
    {
        using var file = GgufFile.Open(path);
        var tokenizer = Tokenizers.FromGguf(file);
        var ids = tokenizer.Encode(prompt);
        var outputs = new List<int>[2];
        var backends = new IBackend[] { gpu, cpu };
        for (var b = 0; b < 2; b++)
        {
            using var model = new LlamaModel(file, backends[b], ids.Length, 1);
            const int blockSize = 16;
            var blocks = (ids.Length + tokens + blockSize) / blockSize + 1;
            using var cache = backends[b].CreateKvCache(model.KvCacheShape(blockSize, blocks));
            var table = Enumerable.Range(0, blocks).Reverse().ToArray();
            var batch = new ForwardBatch(ids.Length, 1, blocks);
            var logits = new float[file.Config.VocabularySize];
            var output = new List<int>();
            batch.AddSequence(table);
            for (var p = 0; p < ids.Length; p++)
            {
                batch.AddToken(ids[p], p, 0, table[p / blockSize] * blockSize + p % blockSize, p == ids.Length - 1);
            }

            for (var i = 0; i < tokens; i++)
            {
                model.Forward(batch, cache, logits);
                var next = Sampler.ArgMax(logits);
                output.Add(next);
                var position = ids.Length + i;
                batch.Clear();
                batch.AddSequence(table);
                batch.AddToken(next, position, 0, table[position / blockSize] * blockSize + position % blockSize, true);
            }

            outputs[b] = output;
        }

        var text = tokenizer.Decode(outputs[0].ToArray());
        report.Line($"     {Path.GetFileName(path)} on the GPU: \"{prompt}{text.ReplaceLineEndings(" ")}\"");
        if (outputs[0].SequenceEqual(outputs[1]))
        {
            report.Pass($"{Path.GetFileName(path)}: {tokens} greedy tokens identical on GPU and CPU");
        }
        else
        {
            var first = outputs[0].Zip(outputs[1]).TakeWhile(p => p.First == p.Second).Count();
            report.Fail($"{Path.GetFileName(path)} greedy tokens", $"GPU and CPU differ from token {first} on (CPU: \"{tokenizer.Decode(outputs[1].ToArray()).ReplaceLineEndings(" ")}\")");
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
        var options = new EngineOptions { BlockSize = 16, KvCacheBlocks = 256, MaxBatchedTokens = 256, MaxNumSeqs = 8 };
        (int[][] Tokens, long OnDevice, long OnHost) Run(IBackend backend, bool logprobs, SamplingParams[] batch)
        {
            using var model = new LlamaModel(file, backend, options.MaxBatchedTokens, options.MaxNumSeqs);
            using var engine = new LlmEngine(model, tokenizer, options, "gpucheck");
            var idle = engine.NextIdleAsync();
            var handles = batch.Select(m => engine.Submit(new EngineRequest { PromptTokenIds = ids, MaxTokens = tokens, Sampling = m, Logprobs = logprobs })).ToArray();
            var outputs = handles.Select(h => Collect(h).GetAwaiter().GetResult()).ToArray();
            return idle.Wait(TimeSpan.FromMinutes(5))
                ? (outputs, idle.Result.TokensChosenOnDevice, idle.Result.TokensChosenOnHost)
                : throw new TimeoutException("The engine did not become idle.");
        }

        (int[][] Tokens, long OnDevice, long OnHost) Alone(IBackend backend, bool logprobs)
        {
            var runs = mixes.Select(m => Run(backend, logprobs, [m])).ToArray();
            return (runs.Select(r => r.Tokens[0]).ToArray(), runs.Sum(r => r.OnDevice), runs.Sum(r => r.OnHost));
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
