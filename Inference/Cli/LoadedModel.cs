using AspireAi.Inference.Backends;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Cli;

/// <summary>A model file opened for a command: the file, its tokenizer (when it has one), the backend and the forward pass.</summary>
public sealed class LoadedModel : IDisposable
{
    private LoadedModel(GgufFile file, ITokenizer? tokenizer, IBackend backend, LlamaModel model)
    {
        File = file;
        Tokenizer = tokenizer;
        Backend = backend;
        Model = model;
    }

    public GgufFile File { get; }

    public ITokenizer? Tokenizer { get; }

    public IBackend Backend { get; }

    public LlamaModel Model { get; }

    /// <summary>Common flags of the verbs that load a model.</summary>
    public static readonly string[] Flags = ["model", "threads", "device"];

    public static LoadedModel Open(CommandLine args, int maxBatchTokens, int maxLogitRows, bool needTokenizer)
    {
        var path = args.RequiredString("model");
        if (!System.IO.File.Exists(path))
        {
            throw new UsageException($"{args.Verb}: --model '{path}' does not exist.");
        }

        var threads = args.Int("threads", Environment.ProcessorCount, 1, 1024);
        var device = args.Choice("device", "auto", BackendSelector.Devices);
        var file = GgufFile.Open(path);
        try
        {
            ITokenizer? tokenizer = null;
            try
            {
                tokenizer = Tokenizers.FromGguf(file);
            }
            catch (ModelFormatException) when (!needTokenizer)
            {
                // Token ids in, token ids out: a file without a usable tokenizer still runs.
            }

            var backend = BackendSelector.Create(device, threads, out var reason);
            Console.Error.WriteLine($"backend: {backend.Description} ({reason})");
            var context = file.Config.ContextLength;
            var model = new LlamaModel(file, backend, Math.Min(maxBatchTokens, context), Math.Min(maxLogitRows, context), new LoadProgress($"loading {Path.GetFileName(path)}", Console.Error));
            return new LoadedModel(file, tokenizer, backend, model);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Model.Dispose();
        Backend.Dispose();
        File.Dispose();
    }
}
