using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.TensorParallel;
using AspireAi.Inference.Tests.Support;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>A tiny random-weight model (written as GGUF) and engines over it, for the serving tests.</summary>
public sealed class TinyEngine : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly List<IDisposable> _owned = [];

    public TinyEngine(TinyGgufModel? spec = null, Action<string, TinyGgufModel>? write = null)
    {
        Spec = spec ?? new TinyGgufModel { Vocabulary = 64, Context = 128, Seed = 11 };
        Path = _temp.File("tiny.gguf");
        if (write is null)
        {
            Spec.CreateWriter().WriteTo(Path);
        }
        else
        {
            write(Path, Spec);
        }

        File = GgufFile.Open(Path);
        Tokenizer = Tokenizers.FromGguf(File);
    }

    public TinyGgufModel Spec { get; }

    public string Path { get; }

    public GgufFile File { get; }

    public ITokenizer Tokenizer { get; }

    /// <summary>An engine of its own backend and weights (engines share nothing but the file).</summary>
    /// <param name="promptLogprobRows">Logit rows per step beyond one per sequence (prompt logprobs).</param>
    /// <param name="tensorParallel">Ranks of CPU backends (each of <paramref name="threads"/> threads) to split the model over.</param>
    public LlmEngine CreateEngine(EngineOptions options, int threads = 1, int promptLogprobRows = 0, int tensorParallel = 1)
    {
        IForwardModel model;
        if (tensorParallel == 1)
        {
            var backend = new CpuBackend(threads);
            _owned.Add(backend);
            model = new LlamaModel(File, backend, options.MaxBatchedTokens, options.MaxNumSeqs + promptLogprobRows);
        }
        else
        {
            model = new TensorParallelModel(File, Enumerable.Range(0, tensorParallel).Select(_ => (IBackend)new CpuBackend(threads)).ToArray(),
                new InProcessCollectiveGroup(tensorParallel), options.MaxBatchedTokens, options.MaxNumSeqs + promptLogprobRows);
        }

        var engine = new LlmEngine(model, Tokenizer, options, "tiny");
        _owned.Add(model);
        _owned.Add(engine);
        return engine;
    }

    public static async Task<(int[] Tokens, SequenceEvent Final)> Collect(EngineRequestHandle handle, CancellationToken cancellation = default)
    {
        var tokens = new List<int>();
        SequenceEvent final = default;
        await foreach (var e in handle.ReadAllAsync(cancellation))
        {
            if (e.TokenId >= 0)
            {
                tokens.Add(e.TokenId);
            }

            if (e.FinishReason is not null)
            {
                final = e;
            }
        }

        return (tokens.ToArray(), final);
    }

    public void Dispose()
    {
        foreach (var d in Enumerable.Reverse(_owned))
        {
            d.Dispose();
        }

        File.Dispose();
        _temp.Dispose();
    }
}

/// <summary>Tiny random-weight models that carry stories15M's real 32,000-token SentencePiece vocabulary.</summary>
public static class RealVocabularyModel
{
    /// <summary>A tiny random-weight llama with stories15M's tokenizer (so tokens are real text pieces, byte tokens included).</summary>
    public static TinyGgufModel Spec { get; } = new() { Vocabulary = 32000, Embedding = 64, FeedForward = 96, Layers = 1, Heads = 4, KvHeads = 2, Context = 512, Seed = 3 };

    public static void Write(string path, TinyGgufModel? spec = null)
    {
        spec ??= Spec;
        using var stories = GgufFile.Open(TestPaths.SharedModel("stories15M-q8_0.gguf"), metadataOnly: true);
        stories.TryGetFloat32Array("tokenizer.ggml.scores", out var scores);
        stories.TryGetInt32Array("tokenizer.ggml.token_type", out var types);
        spec.CreateWriter()
            .AddArray("tokenizer.ggml.tokens", stories.GetStringArray("tokenizer.ggml.tokens"))
            .AddArray("tokenizer.ggml.scores", scores)
            .AddArray("tokenizer.ggml.token_type", types)
            .WriteTo(path);
    }
}
