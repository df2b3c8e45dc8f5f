using AspireAi.Inference.Backends;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Download;
using AspireAi.Inference.Models.Synthetic;
using AspireAi.Inference.TensorParallel;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Cli;

/// <summary>
/// A model opened for a command: its source (GGUF file or Hugging Face folder), tokenizer and forward pass (on one backend,
/// or over <c>--tensor-parallel-size</c> ranks, which owns its backends).
/// </summary>
public sealed class LoadedModel : IDisposable
{
    private LoadedModel(IModelSource source, ITokenizer? tokenizer, IForwardModel model, KvCacheDtype kvCacheDtype)
    {
        Source = source;
        Tokenizer = tokenizer;
        Model = model;
        KvCacheDtype = kvCacheDtype;
    }

    public IModelSource Source { get; }

    public ITokenizer? Tokenizer { get; }

    public IForwardModel Model { get; }

    /// <summary>The KV cache element type of <c>--kv-cache-dtype</c> (default auto), as the model's backend resolved it.</summary>
    public KvCacheDtype KvCacheDtype { get; }

    /// <summary>Common flags of the verbs that load a model.</summary>
    public static readonly string[] Flags = ["model", "threads", "quantize", "device", "tensor-parallel-size", "kv-cache-dtype"];

    /// <summary><c>--kv-cache-dtype auto|fp32|fp16|bf16|fp8</c> (vLLM's flag; default auto: f16 on CUDA, float32 on the CPU).</summary>
    public static KvCacheDtype KvCacheDtypeFlag(CommandLine args) =>
        KvCacheDtypes.Parse(args.Choice("kv-cache-dtype", "auto", KvCacheDtypes.Names), "--kv-cache-dtype");

    /// <summary>
    /// <c>--tensor-parallel-size N</c> (default 1): the model split over N ranks. With <c>--device cuda</c>, N GPUs (devices
    /// 0…N − 1, joined by NCCL); with <c>--device cpu</c>, N ranks as threads of this process sharing <c>--threads</c>, which
    /// is slower than one rank but runs the tensor-parallel path anywhere (that is what it is for).
    /// </summary>
    public static int TensorParallelSize(CommandLine args) => args.Int("tensor-parallel-size", 1, 1, 64);

    /// <param name="modelRequired">False for <c>generate</c>: no <c>--model</c> means the default stories15M (downloaded once).</param>
    public static LoadedModel Open(CommandLine args, int maxBatchTokens, int maxLogitRows, bool needTokenizer, bool modelRequired = true)
    {
        var model = modelRequired ? args.RequiredString("model") : args.String("model");
        var threads = args.Int("threads", Environment.ProcessorCount, 1, 1024);
        var kvCacheDtype = KvCacheDtypeFlag(args);
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

        var device = args.Choice("device", "auto", BackendSelector.Devices);
        var tensorParallel = TensorParallelSize(args);
        IModelSource source;
        try
        {
            source = ModelLoader.Open(path, quantize);
        }
        catch (ModelFormatException e) when (path.StartsWith(RandomModel.Prefix, StringComparison.Ordinal))
        {
            throw new UsageException($"{args.Verb}: --model: {e.Message}");
        }

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

            var context = source.Config.ContextLength;
            var forward = TensorParallelDevices.Load(source, device, tensorParallel, threads, Math.Min(maxBatchTokens, context), Math.Min(maxLogitRows, context),
                new LoadProgress($"loading {Path.GetFileName(path.TrimEnd('/', '\\'))}", Console.Error), out var reason);
            Console.Error.WriteLine($"backend: {forward.Description} ({reason})");
            try
            {
                kvCacheDtype = forward.Backend.ResolveKvCacheDtype(kvCacheDtype);
            }
            catch (ArgumentException e)
            {
                forward.Dispose();
                throw new UsageException($"{args.Verb}: {e.Message}");
            }

            return new LoadedModel(source, tokenizer, forward, kvCacheDtype);
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
        Source.Dispose();
    }
}
