using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tests.Support;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>A tiny random-weight model (written as GGUF) and engines over it, for the serving tests.</summary>
public sealed class TinyEngine : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly List<IDisposable> _owned = [];

    public TinyEngine(TinyGgufModel? spec = null)
    {
        Spec = spec ?? new TinyGgufModel { Vocabulary = 64, Context = 128, Seed = 11 };
        Path = _temp.File("tiny.gguf");
        Spec.CreateWriter().WriteTo(Path);
        File = GgufFile.Open(Path);
        Tokenizer = Tokenizers.FromGguf(File);
    }

    public TinyGgufModel Spec { get; }

    public string Path { get; }

    public GgufFile File { get; }

    public ITokenizer Tokenizer { get; }

    /// <summary>An engine of its own backend and weights (engines share nothing but the file).</summary>
    public LlmEngine CreateEngine(EngineOptions options, int threads = 1)
    {
        var backend = new CpuBackend(threads);
        var model = new LlamaModel(File, backend, options.MaxBatchedTokens, options.MaxNumSeqs);
        var engine = new LlmEngine(model, Tokenizer, options, "tiny");
        _owned.Add(engine);
        _owned.Add(model);
        _owned.Add(backend);
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
