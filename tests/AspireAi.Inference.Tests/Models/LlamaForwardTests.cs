using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Models;

/// <summary>
/// Tiny random-weight models of every architecture with every weight type, written as GGUF, read back, run through the engine
/// in paged steps (prefill, chunked prefill on a cached prefix, decode, and a mixed two-sequence batch; block size 4 with a
/// scattered block table) and compared, logit by logit, with <see cref="ReferenceTransformer"/>.
/// </summary>
public sealed class LlamaForwardTests
{
    /// <summary>
    /// Largest |engine − reference| allowed, relative to the RMS of the reference logits. Float weights differ only by float32
    /// arithmetic (measured ≤ 6e-7). Quantized weights see int8-quantized activations at every matmul (as in llama.cpp), an
    /// error of up to half a step in 127 per value that compounds through the layers: measured worst cases on these models are
    /// 1.5–3.9 % (Q8_0 2.9 %, Q4_0 2.7 %, Q5_0 3.3 %, Q4_K 3.9 %, Q5_K 2.6 %, Q6_K 3.2 %); the bound leaves 1.5× headroom.
    /// </summary>
    private static double Tolerance(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 => 1e-5,
        _ => 0.06,
    };

    public static TheoryData<string, GgmlType> Cases()
    {
        var data = new TheoryData<string, GgmlType>();
        foreach (var type in GgmlReference.AllTypes)
        {
            data.Add("llama", type);
        }

        data.Add("qwen2", GgmlType.Q8_0);
        data.Add("qwen2", GgmlType.F16);
        data.Add("qwen3", GgmlType.Q4_K);
        data.Add("qwen3", GgmlType.F32);
        data.Add("llama", GgmlType.Q6_K);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Engine_logits_match_float64_reference(string architecture, GgmlType type)
    {
        var kQuant = GgmlTypeInfo.BlockSize(type) == 256;
        var spec = new TinyGgufModel
        {
            Architecture = architecture,
            // 96 = 3 blocks of 32 (an odd count) for the 32-block types; 256 for the K-quants' super-blocks.
            Embedding = kQuant ? 256 : 96,
            FeedForward = kQuant ? 512 : 160,
            Heads = 4,
            KvHeads = 2,
            Vocabulary = 64,
            Layers = 2,
            Context = 64,
            Tied = architecture != "qwen2",
            QkvBias = architecture == "qwen2",
            QkNorm = architecture == "qwen3",
            Seed = 7,
        };
        using var temp = new TempDirectory();
        var path = WriteModel(spec, type, temp.File("tiny.gguf"));
        using var file = GgufFile.Open(path);
        var reference = new ReferenceTransformer(file);
        var secondReference = new ReferenceTransformer(file);
        using var backend = new CpuBackend(threads: 2);
        using var model = new LlamaModel(file, backend, maxBatchTokens: 16, maxLogitRows: 16);
        const int blockSize = 4;
        using var cache = backend.CreateKvCache(model.KvCacheShape(blockSize, 16));
        int[] tableA = [9, 3, 14, 0, 6], tableB = [1, 12, 5];
        var random = new Random(3);
        var promptA = Enumerable.Range(0, 11).Select(_ => random.Next(spec.Vocabulary)).ToArray();
        var promptB = Enumerable.Range(0, 5).Select(_ => random.Next(spec.Vocabulary)).ToArray();
        var batch = new ForwardBatch(16, 2, 8);
        var logits = new float[16 * spec.Vocabulary];
        var worst = 0.0;

        // Step 1: prefill 6 tokens. Step 2: 4 more on the cached prefix (chunked prefill). Step 3: one decode token.
        var position = 0;
        foreach (var count in new[] { 6, 4, 1 })
        {
            batch.Clear();
            batch.AddSequence(tableA);
            for (var i = 0; i < count; i++, position++)
            {
                batch.AddToken(promptA[position], position, 0, tableA[position / blockSize] * blockSize + position % blockSize, true);
            }

            model.Forward(batch, cache, logits);
            for (var i = 0; i < count; i++)
            {
                worst = Math.Max(worst, Compare(reference.Next(promptA[position - count + i]), logits.AsSpan(i * spec.Vocabulary, spec.Vocabulary), type));
            }
        }

        // Step 4: sequence A decodes while sequence B prefills, in one batch; only A's token and B's last token want logits.
        batch.Clear();
        batch.AddSequence(tableA);
        batch.AddSequence(tableB);
        var nextA = promptA[0];
        batch.AddToken(nextA, position, 0, tableA[position / blockSize] * blockSize + position % blockSize, true);
        for (var p = 0; p < promptB.Length; p++)
        {
            batch.AddToken(promptB[p], p, 1, tableB[p / blockSize] * blockSize + p % blockSize, p == promptB.Length - 1);
        }

        model.Forward(batch, cache, logits);
        worst = Math.Max(worst, Compare(reference.Next(nextA), logits.AsSpan(0, spec.Vocabulary), type));
        double[] lastB = [];
        foreach (var id in promptB)
        {
            lastB = secondReference.Next(id);
        }

        worst = Math.Max(worst, Compare(lastB, logits.AsSpan(spec.Vocabulary, spec.Vocabulary), type));
        Assert.True(worst <= Tolerance(type), $"{architecture}/{type}: worst relative logit error {worst:G3} > {Tolerance(type)}");
    }

    private static double Compare(double[] expected, ReadOnlySpan<float> actual, GgmlType type)
    {
        var rms = Math.Sqrt(expected.Sum(v => v * v) / expected.Length);
        var worst = 0.0;
        for (var i = 0; i < expected.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]) / rms);
        }

        return worst;
    }

    /// <summary>The tiny model with every matrix re-typed to <paramref name="type"/> (random valid blocks; norms stay F32).</summary>
    public static string WriteModel(TinyGgufModel spec, GgmlType type, string path)
    {
        var writer = spec.CreateWriter();
        var random = new Random(spec.Seed);
        var e = spec.Embedding;
        var q = spec.Heads * spec.HeadDim;
        var kv = spec.KvHeads * spec.HeadDim;
        var ff = spec.FeedForward;
        var matrices = new List<(string Name, int Rows, int Columns)> { ("token_embd.weight", spec.Vocabulary, e) };
        for (var l = 0; l < spec.Layers; l++)
        {
            var p = $"blk.{l}.";
            matrices.AddRange([(p + "attn_q.weight", q, e), (p + "attn_k.weight", kv, e), (p + "attn_v.weight", kv, e), (p + "attn_output.weight", e, q),
                (p + "ffn_gate.weight", ff, e), (p + "ffn_up.weight", ff, e), (p + "ffn_down.weight", e, ff)]);
        }

        if (!spec.Tied)
        {
            matrices.Add(("output.weight", spec.Vocabulary, e));
        }

        foreach (var (name, rows, columns) in matrices)
        {
            // Scale ~1/√K keeps activations O(1) through the layers whatever the width.
            var bytes = GgmlReference.RandomTensor(type, rows, columns, random, scale: 1.0 / Math.Sqrt(columns));
            writer.ReplaceTensor(name, type, [columns, rows], bytes);
        }

        return writer.WriteTo(path);
    }
}
