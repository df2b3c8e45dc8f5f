using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.TensorParallel;
using AspireAi.Inference.Tests.Models;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.TensorParallel;

/// <summary>
/// Tensor parallelism on CPU ranks (threads of the test process, joined by <see cref="InProcessCollectiveGroup"/>) against
/// the same model whole on one backend: random-weight models of each architecture and weight family, grouped-query
/// attention with KV heads split (TP = 2) and replicated (TP = 4), through paged steps of prefill, chunked prefill, decode
/// and a mixed two-sequence batch, then greedy generation.
/// </summary>
public sealed class TensorParallelForwardTests
{
    /// <summary>
    /// Largest |TP − whole| allowed, relative to the RMS of the whole model's logits. Splitting K only changes the order in
    /// which float32 partial sums are added: measured ≤ 1.1e-6 in every case below, quantized ones included, because each
    /// rank's part of K is whole blocks, so its int8-quantized activations are the whole model's blocks exactly. (A last-bit
    /// difference of the residual stream could still move a value across an int8 rounding boundary on other weights; these
    /// seeds never do.) The bound leaves about 10× headroom.
    /// </summary>
    private const double Tolerance = 1e-5;

    /// <summary>
    /// (architecture, weight type, size, vocabulary): 64 tokens divide over every size; 61, 62 and 63 do not, so the last
    /// ranks' logits projections are padded with zero rows (tied: the token embedding's rows; untied and quantized: zero
    /// blocks) whose logits the gather leaves out.
    /// </summary>
    public static TheoryData<string, GgmlType, int, int> Cases() => new()
    {
        { "llama", GgmlType.F32, 2, 64 },
        { "llama", GgmlType.F32, 4, 64 },
        { "llama", GgmlType.Q8_0, 2, 64 },
        { "llama", GgmlType.Q8_0, 4, 64 },
        { "llama", GgmlType.Q4_K, 2, 64 },
        { "qwen2", GgmlType.Q8_0, 2, 64 },
        { "qwen2", GgmlType.F16, 4, 64 },
        { "qwen3", GgmlType.F32, 4, 64 },
        { "qwen3", GgmlType.Q6_K, 2, 64 },
        { "llama", GgmlType.F32, 4, 61 },
        { "qwen2", GgmlType.Q8_0, 2, 63 },
        { "qwen2", GgmlType.Q4_0, 4, 62 },
        { "qwen3", GgmlType.F16, 4, 61 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_and_greedy_tokens_match_the_whole_model(string architecture, GgmlType type, int size, int vocabulary)
    {
        // Each rank's share of K (attention output: heads / size × head dim; down: ffn / size) must be whole blocks: 32
        // values, or 256 for the K-quants, so those models are wider.
        var kQuant = GgmlTypeInfo.BlockSize(type) == 256;
        var spec = new TinyGgufModel
        {
            Architecture = architecture,
            Embedding = kQuant ? 512 : 128,
            FeedForward = kQuant ? 512 : 256,
            Heads = 4,
            KvHeads = 2,
            Vocabulary = vocabulary,
            Layers = 2,
            Context = 64,
            Tied = architecture != "qwen2",
            QkvBias = architecture == "qwen2",
            QkNorm = architecture == "qwen3",
            Seed = 17,
        };
        using var temp = new TempDirectory();
        var path = LlamaForwardTests.WriteModel(spec, type, temp.File("tiny.gguf"));
        using var file = GgufFile.Open(path);
        using var backend = new CpuBackend(threads: 1);
        using var whole = new LlamaModel(file, backend, maxBatchTokens: 16, maxLogitRows: 16);
        using var split = Split(file, size, maxBatchTokens: 16, maxLogitRows: 16);
        Assert.Equal(spec.KvHeads >= size ? spec.KvHeads / size : 1, split.KvCacheShape(4, 1).KvHeads);

        var worst = CompareSteps(whole, split, spec.Vocabulary);
        Assert.True(worst <= Tolerance, $"{architecture}/{type}/TP={size}/V={vocabulary}: worst relative logit difference {worst:G3} > {Tolerance}");

        int[] prompt = [1, 17, 33, 5, 60, 2, 41];
        var request = new GenerationRequest { MaxTokens = 12 };
        using var wholeGenerator = new Generator(whole);
        using var splitGenerator = new Generator(split);
        var ct = TestContext.Current.CancellationToken;
        Assert.Equal(wholeGenerator.Generate(prompt, request, cancellation: ct).TokenIds, splitGenerator.Generate(prompt, request, cancellation: ct).TokenIds);
    }

    [Fact]
    public void The_kv_cache_type_reaches_every_rank()
    {
        var spec = new TinyGgufModel { Embedding = 128, FeedForward = 256, Heads = 4, KvHeads = 2, Vocabulary = 64, Layers = 2, Context = 64, Seed = 17 };
        using var temp = new TempDirectory();
        using var file = GgufFile.Open(LlamaForwardTests.WriteModel(spec, GgmlType.F32, temp.File("tiny.gguf")));
        using var split = Split(file, 2, maxBatchTokens: 16, maxLogitRows: 16);

        // auto: each CPU rank resolves it to float32, and the model's cache says what its ranks hold.
        using var cache = (TensorParallelKvCache)split.CreateKvCache(split.KvCacheShape(4, 8) with { Dtype = KvCacheDtype.Auto });
        Assert.Equal(KvCacheDtype.Float32, cache.Shape.Dtype);
        Assert.All(cache.Ranks, rank => Assert.Equal(KvCacheDtype.Float32, rank.Shape.Dtype));
        using var store = (TensorParallelKvOffloadStore)split.CreateKvOffloadStore(cache.Shape, 2);
        Assert.All(store.Ranks, rank => Assert.Equal(KvCacheDtype.Float32, rank.Shape.Dtype));

        // fp16: asked of every rank, which the CPU ranks refuse, naming the flag.
        var error = Assert.Throws<ArgumentException>(() => split.CreateKvCache(split.KvCacheShape(4, 8) with { Dtype = KvCacheDtype.Float16 }));
        Assert.Contains("--kv-cache-dtype", error.Message);
        Assert.Throws<ArgumentException>(() => split.KvCacheShape(4, 8, KvCacheDtype.Float16));
    }

    /// <summary>A model of <paramref name="size"/> CPU ranks of one thread each.</summary>
    public static TensorParallelModel Split(IModelSource source, int size, int maxBatchTokens, int maxLogitRows) =>
        new(source, Enumerable.Range(0, size).Select(_ => (IBackend)new CpuBackend(threads: 1)).ToArray(), new InProcessCollectiveGroup(size), maxBatchTokens, maxLogitRows);

    /// <summary>The steps of <see cref="LlamaForwardTests"/> (block size 4, scattered block tables) on both models.</summary>
    private static double CompareSteps(IForwardModel whole, IForwardModel split, int vocabulary)
    {
        const int blockSize = 4;
        using var wholeCache = whole.CreateKvCache(whole.KvCacheShape(blockSize, 16));
        using var splitCache = split.CreateKvCache(split.KvCacheShape(blockSize, 16));
        int[] tableA = [9, 3, 14, 0, 6], tableB = [1, 12, 5];
        var random = new Random(3);
        var promptA = Enumerable.Range(0, 12).Select(_ => random.Next(vocabulary)).ToArray();
        var promptB = Enumerable.Range(0, 5).Select(_ => random.Next(vocabulary)).ToArray();
        var batch = new ForwardBatch(16, 2, 8);
        var expected = new float[16 * vocabulary];
        var actual = new float[16 * vocabulary];
        var worst = 0.0;

        void Step()
        {
            whole.Forward(batch, wholeCache, expected);
            split.Forward(batch, splitCache, actual);
            for (var row = 0; row < batch.LogitCount; row++)
            {
                worst = Math.Max(worst, RelativeDifference(expected.AsSpan(row * vocabulary, vocabulary), actual.AsSpan(row * vocabulary, vocabulary)));
            }
        }

        // Prefill 6 tokens, 4 more on the cached prefix, one decode token; then A decodes while B prefills in one batch.
        var position = 0;
        foreach (var count in new[] { 6, 4, 1 })
        {
            batch.Clear();
            batch.AddSequence(tableA);
            for (var i = 0; i < count; i++, position++)
            {
                batch.AddToken(promptA[position], position, 0, tableA[position / blockSize] * blockSize + position % blockSize, true);
            }

            Step();
        }

        batch.Clear();
        batch.AddSequence(tableA);
        batch.AddSequence(tableB);
        batch.AddToken(promptA[position], position, 0, tableA[position / blockSize] * blockSize + position % blockSize, true);
        for (var p = 0; p < promptB.Length; p++)
        {
            batch.AddToken(promptB[p], p, 1, tableB[p / blockSize] * blockSize + p % blockSize, p == promptB.Length - 1);
        }

        Step();
        return worst;
    }

    private static double RelativeDifference(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        var sum = 0.0;
        foreach (var v in expected)
        {
            sum += (double)v * v;
        }

        var rms = Math.Sqrt(sum / expected.Length);
        var worst = 0.0;
        for (var i = 0; i < expected.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]) / rms);
        }

        return worst;
    }
}
