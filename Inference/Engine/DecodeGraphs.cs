using System.Numerics;
using AspireAi.Inference.Backends;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.Engine;

/// <summary>
/// CUDA graphs of the engine's decode steps (vLLM's CUDA graph capture): a step in which every token is its sequence's
/// one token of the step and needs logits — decode, or a prompt's last single token — is padded to the next of a few batch
/// sizes, with its context bound raised to the next power of two (attention's launch shape follows the longest context), and
/// replays the graph recorded for that (size, bound); the first step of a shape runs eagerly and records it. Padding tokens
/// are their own sequences at position 0, writing to a KV block the engine keeps out of the block manager. A graph whose
/// buffers the backend has moved since (a larger step grew them) is recorded again.
/// </summary>
internal sealed class DecodeGraphs : IDisposable
{
    /// <summary>
    /// Batch sizes that get graphs, vLLM's spacing: padding a step to the next size costs little where the step reads all
    /// weights once whatever its size, and fewer sizes mean fewer recordings.
    /// </summary>
    private static readonly int[] Sizes = [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256];

    /// <summary>Smallest context bound: shorter contexts share one graph (attention splits them into few partitions either way).</summary>
    private const int MinContextBound = 256;

    private readonly IForwardModel _model;
    private readonly int[] _sizes;
    private readonly int _contextLimit;
    private readonly int _paddingSlot;
    private readonly int[] _paddingTable;
    private readonly Dictionary<(int Tokens, int Context), IStepGraph> _graphs = [];

    /// <param name="paddingBlock">The KV block padding tokens write to (never given to a sequence).</param>
    public DecodeGraphs(IForwardModel model, EngineOptions options, int paddingBlock)
    {
        _model = model;
        var largest = Math.Min(options.MaxNumSeqs, options.MaxBatchedTokens);
        _sizes = [.. Sizes.Where(s => s < largest), largest];
        _contextLimit = Math.Min(model.Config.ContextLength, options.KvCacheBlocks * options.BlockSize);
        _paddingSlot = paddingBlock * options.BlockSize;
        _paddingTable = [paddingBlock];
    }

    /// <summary>Steps replayed from a graph, and graphs recorded.</summary>
    public long Replays { get; private set; }

    public long Recordings { get; private set; }

    /// <summary>Why recording failed, after which every step runs eagerly (null while graphs work).</summary>
    public string? Failure { get; private set; }

    /// <summary>
    /// Runs the step of <paramref name="batch"/> through a graph when it has the shape for one (padding the batch in place)
    /// and returns its logits; false, with the batch untouched, for a step that runs eagerly.
    /// </summary>
    public bool TryRun(ForwardBatch batch, PagedKvCache cache, out DeviceTensor? logits)
    {
        logits = null;
        var tokens = batch.TokenCount;
        if (Failure is not null || tokens > _sizes[^1] || batch.SequenceCount != tokens || batch.LogitCount != tokens || batch.MaxContextLength > _contextLimit)
        {
            return false;
        }

        var size = _sizes[0];
        for (var i = 1; size < tokens; i++)
        {
            size = _sizes[i];
        }

        var bound = Math.Min(_contextLimit, Math.Max(MinContextBound, (int)BitOperations.RoundUpToPowerOf2((uint)batch.MaxContextLength)));
        for (var t = tokens; t < size; t++)
        {
            batch.AddToken(0, 0, batch.AddSequence(_paddingTable), _paddingSlot, needsLogits: true);
        }

        batch.RaiseContextBound(bound);
        var key = (size, bound);
        if (_graphs.TryGetValue(key, out var graph) && graph.IsCurrent)
        {
            logits = graph.Replay(batch);
            Replays++;
            return true;
        }

        graph?.Dispose();
        _graphs.Remove(key);
        logits = _model.ForwardToLogits(batch, cache);
        try
        {
            _graphs[key] = _model.CaptureStep(batch, cache);
            Recordings++;
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or Backends.Cuda.Driver.CudaException)
        {
            // This step's logits are already computed; later steps run eagerly rather than fail.
            Failure = $"recording a {size}-token step failed: {e.Message}";
            Dispose();
        }

        return true;
    }

    public void Dispose()
    {
        foreach (var graph in _graphs.Values)
        {
            graph.Dispose();
        }

        _graphs.Clear();
    }
}
