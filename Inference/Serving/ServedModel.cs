using AspireAi.Inference.Backends;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Download;
using AspireAi.Inference.Serving.Tools;
using AspireAi.Inference.TensorParallel;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Serving;

/// <summary>
/// The model a replica serves: the file, tokenizer, chat template, tool-call format and the engine running it. Loaded once
/// at start-up (before the server answers <c>/health</c>), shared by every endpoint and the in-process chat client.
/// </summary>
public sealed class ServedModel : IDisposable
{
    private readonly IModelSource _source;
    private readonly IForwardModel _model;

    private ServedModel(string id, IModelSource source, IForwardModel model, ITokenizer tokenizer, LlmEngine engine,
        ChatTemplate template, bool fallbackTemplate)
    {
        Id = id;
        _source = source;
        _model = model;
        Tokenizer = tokenizer;
        Engine = engine;
        Template = template;
        TemplateIsFallback = fallbackTemplate;
        ToolFormat = ToolCallFormat.Detect(template.Source);
        TokenBytes = new TokenByteTable(tokenizer);
        _trie = new Lazy<StructuredOutput.TokenTrie>(() => new StructuredOutput.TokenTrie(TokenBytes));
    }

    private readonly Lazy<StructuredOutput.TokenTrie> _trie;

    /// <summary>The vocabulary as a byte trie for constrained decoding (built on first use).</summary>
    public StructuredOutput.TokenTrie TokenTrie => _trie.Value;

    /// <summary>The id clients name in <c>model</c>.</summary>
    public string Id { get; }

    public LlmEngine Engine { get; }

    public ITokenizer Tokenizer { get; }

    public ChatTemplate Template { get; }

    /// <summary>Whether <see cref="Template"/> is <see cref="FallbackChatTemplate"/> (the model has none of its own).</summary>
    public bool TemplateIsFallback { get; }

    /// <summary>How this model writes tool calls (from its template).</summary>
    public ToolCallFormat ToolFormat { get; }

    /// <summary>Each token's bytes, for constrained decoding and logprob token strings.</summary>
    public TokenByteTable TokenBytes { get; }

    public ModelConfig Config => _model.Config;

    /// <summary>Where the model runs (for example "cuda NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)").</summary>
    public string BackendDescription => _model.Description;

    /// <summary>
    /// Logit rows per step beyond one per sequence, for prompt logprobs (<c>echo</c> with <c>logprobs</c>): a prompt of up
    /// to 129 tokens is scored in one step. They cost rows × vocabulary × 4 bytes twice (device and host logits), 16 MB each
    /// for a 32,000-token vocabulary; steps without prompt logprobs do not compute them.
    /// </summary>
    internal const int PromptLogprobRows = 128;

    /// <summary>Loads the configured model (or the default one) and starts its engine.</summary>
    public static ServedModel Load(InferenceOptions options, ILogger logger)
    {
        var path = Locate(options.Model, logger);
        if (!BackendSelector.Devices.Contains(options.Device))
        {
            throw new ArgumentException($"Inference:Device (--device) must be {string.Join(", ", BackendSelector.Devices)}, not '{options.Device}'.");
        }

        GgmlType? quantize = options.Quantize?.ToLowerInvariant() switch
        {
            null or "" or "none" => null,
            "q8_0" => GgmlType.Q8_0,
            "q4_0" => GgmlType.Q4_0,
            var q => throw new ArgumentException($"Inference:Quantize (--quantize) must be q8_0, q4_0 or none, not '{q}'."),
        };

        var kvCacheDtype = KvCacheDtypes.Parse(options.KvCacheDtype, "Inference:KvCacheDtype (--kv-cache-dtype)");
        if (options.TensorParallelSize < 1)
        {
            throw new ArgumentException($"Inference:TensorParallelSize (--tensor-parallel-size) must be at least 1, not {options.TensorParallelSize}.");
        }

        var source = ModelLoader.Open(path, quantize);
        IForwardModel? model = null;
        try
        {
            var tokenizer = Tokenizers.For(source);
            var config = source.Config;
            model = TensorParallelDevices.Load(source, options.Device, options.TensorParallelSize, options.Threads, options.MaxBatchedTokens,
                options.MaxNumSeqs + PromptLogprobRows, progress: null, out var why);
            logger.LogInformation("Backend: {Backend} ({Why})", model.Description, why);
            // Sized once the weights are in place, from what the backend has left (GPU memory on CUDA), for the KV heads one
            // backend holds (its share under tensor parallelism).
            var kvShape = model.KvCacheShape(options.BlockSize, 1, kvCacheDtype);
            var kvConfig = config with { KvHeadCount = kvShape.KvHeads };
            var engineOptions = new EngineOptions
            {
                BlockSize = options.BlockSize,
                KvCacheDtype = kvShape.Dtype,
                KvCacheBlocks = KvCacheSizing.Blocks(kvConfig, options, model.AvailableKvMemoryBytes(), model.Backend.DefaultKvCacheFraction, kvShape.Dtype, logger),
                KvOffloadBlocks = KvCacheSizing.OffloadBlocks(kvConfig, options, kvShape.Dtype, logger),
                MaxBatchedTokens = options.MaxBatchedTokens,
                MaxNumSeqs = options.MaxNumSeqs,
                MaxWaiting = options.MaxWaiting,
                MaxRunningPerTenant = options.MaxRunningPerTenant,
                BatchShare = options.BatchShare,
                BatchStepTokens = options.BatchStepTokens,
                // Replayed steps are checked against eager ones on one GPU (GpuCheck's seeded-sampling check) and across
                // ranks, all-reduces included (GpuCheck --tp: padded, bounded steps' logits bit for bit).
                CudaGraphs = !options.EnforceEager,
            };
            engineOptions.Validate();
            var (template, fallback) = LoadTemplate(options, source, tokenizer, logger);
            var id = options.ModelId;
            var engine = new LlmEngine(model, tokenizer, engineOptions, id);
            logger.LogInformation(
                "Serving {Model} as '{Id}' on {Backend}: context {Context}, KV cache {Blocks} blocks × {BlockSize} tokens ({Dtype}), {MaxBatched} tokens and {MaxSeqs} sequences per step",
                path, id, model.Description, config.ContextLength, engineOptions.KvCacheBlocks, engineOptions.BlockSize, engineOptions.KvCacheDtype.Name(),
                engineOptions.MaxBatchedTokens, engineOptions.MaxNumSeqs);
            return new ServedModel(id, source, model, tokenizer, engine, template, fallback);
        }
        catch
        {
            model?.Dispose();
            source.Dispose();
            throw;
        }
    }

    private static (ChatTemplate Template, bool Fallback) LoadTemplate(InferenceOptions options, IModelSource source, ITokenizer tokenizer, ILogger logger)
    {
        string Text(int id) => id >= 0 ? tokenizer.TokenToPiece(id) : "";
        if (options.ChatTemplate is { Length: > 0 } file)
        {
            if (!File.Exists(file))
            {
                throw new FileNotFoundException($"Inference:ChatTemplate (--chat-template) '{file}' does not exist.", file);
            }

            logger.LogInformation("Chat template from {File} (replaces the model's own).", file);
            return (new ChatTemplate(File.ReadAllText(file), Text(tokenizer.BosId), Text(tokenizer.EosId)), false);
        }

        if (ChatTemplate.For(source, tokenizer) is { } own)
        {
            return (own, false);
        }

        logger.LogWarning("The model has no chat template (a base model); chat requests use the plain fallback: {Description}", FallbackChatTemplate.Description);
        return (new ChatTemplate(FallbackChatTemplate.Source, Text(tokenizer.BosId), Text(tokenizer.EosId)), true);
    }

    /// <summary>
    /// The local path of <c>Inference:Model</c> through <see cref="ModelLocator"/>: a file or folder as given, <c>hf:</c>
    /// downloads, and nothing for the default stories15M (fetched once into the model cache). When that fetch fails (no
    /// network) a development checkout still starts on the shared copy <c>../shared/models/stories15M-q8_0.gguf</c> beside
    /// the repository (found by walking up to <c>AspireAi.sln</c>), said in the log.
    /// </summary>
    private static string Locate(string? model, ILogger logger)
    {
        var progress = new Progress<DownloadProgress>();
        try
        {
            return new ModelLocator().ResolveAsync(model, progress).GetAwaiter().GetResult();
        }
        catch (ModelDownloadException e) when (string.IsNullOrWhiteSpace(model) && SharedDefaultCopy() is { } shared)
        {
            logger.LogWarning("The default model could not be fetched ({Error}); serving the shared copy {Path}.", e.Message, shared);
            return shared;
        }
        catch (FileNotFoundException e)
        {
            throw new ArgumentException($"Inference:Model (--model): {e.Message}", e);
        }
    }

    private static string? SharedDefaultCopy()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "models", "stories15M-q8_0.gguf"));
                if (File.Exists(Path.Combine(dir.FullName, "AspireAi.sln")) && File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    public void Dispose()
    {
        Engine.Dispose();
        _model.Dispose();
        _source.Dispose();
    }
}
