using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Download;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Cli;

/// <summary>A model opened for a command: its source (GGUF file or Hugging Face folder), tokenizer, backend and forward pass.</summary>
public sealed class LoadedModel : IDisposable
{
    private LoadedModel(IModelSource source, ITokenizer? tokenizer, CpuBackend backend, LlamaModel model)
    {
        Source = source;
        Tokenizer = tokenizer;
        Backend = backend;
        Model = model;
    }

    public IModelSource Source { get; }

    public ITokenizer? Tokenizer { get; }

    public CpuBackend Backend { get; }

    public LlamaModel Model { get; }

    /// <summary>Common flags of the verbs that load a model.</summary>
    public static readonly string[] Flags = ["model", "threads", "quantize"];

    /// <param name="modelRequired">False for <c>generate</c>: no <c>--model</c> means the default stories15M (downloaded once).</param>
    public static LoadedModel Open(CommandLine args, int maxBatchTokens, int maxLogitRows, bool needTokenizer, bool modelRequired = true)
    {
        var model = modelRequired ? args.RequiredString("model") : args.String("model");
        var threads = args.Int("threads", Environment.ProcessorCount, 1, 1024);
        GgmlType? quantize = args.Choice("quantize", "none", "none", "q8_0", "q4_0") switch
        {
            "q8_0" => GgmlType.Q8_0,
            "q4_0" => GgmlType.Q4_0,
            _ => null,
        };

        string path;
        try
        {
            path = new ModelLocator().ResolveAsync(model, new ConsoleDownloadProgress(Console.Error)).GetAwaiter().GetResult();
        }
        catch (FileNotFoundException e)
        {
            throw new UsageException($"{args.Verb}: --model: {e.Message}");
        }

        var source = ModelLoader.Open(path, quantize);
        try
        {
            ITokenizer? tokenizer = null;
            try
            {
                tokenizer = Tokenizers.For(source);
            }
            catch (ModelFormatException) when (!needTokenizer)
            {
                // Token ids in, token ids out: a model without a usable tokenizer still runs.
            }

            var backend = new CpuBackend(threads);
            var context = source.Config.ContextLength;
            var forward = new LlamaModel(source, backend, Math.Min(maxBatchTokens, context), Math.Min(maxLogitRows, context),
                new LoadProgress($"loading {Path.GetFileName(path.TrimEnd('/', '\\'))}", Console.Error));
            return new LoadedModel(source, tokenizer, backend, forward);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Model.Dispose();
        Backend.Dispose();
        Source.Dispose();
    }
}
