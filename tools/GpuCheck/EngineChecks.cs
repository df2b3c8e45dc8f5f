using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Models;
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
}
