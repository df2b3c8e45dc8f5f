using AspireAi.Inference.Backends;

namespace AspireAi.Inference.Models;

/// <summary>
/// The forward pass as the engine and the commands drive it: <see cref="LlamaModel"/> on one backend, or
/// <see cref="TensorParallel.TensorParallelModel"/> over several ranks that each hold part of every layer. The KV-cache
/// members' defaults are one backend's; a model spread over several implements them all.
/// </summary>
public interface IForwardModel : IDisposable
{
    ModelConfig Config { get; }

    int MaxBatchTokens { get; }

    int MaxLogitRows { get; }

    /// <summary>The backend that holds the logits <see cref="ForwardToLogits"/> returns (rank 0's under tensor parallelism).</summary>
    IBackend Backend { get; }

    /// <summary>Where the model runs, for logs and benchmarks.</summary>
    string Description => Backend.Description;

    /// <summary>Bytes of weights a decode step reads (across all ranks).</summary>
    long WeightBytesPerStep { get; }

    /// <summary>The KV cache geometry of one backend (one rank's share of the KV heads) with the given paging.</summary>
    KvCacheShape KvCacheShape(int blockSize, int blockCount);

    /// <summary>Bytes one backend's KV cache may take: the free memory of the tightest rank.</summary>
    long AvailableKvMemoryBytes() => Backend.AvailableMemoryBytes();

    PagedKvCache CreateKvCache(KvCacheShape shape) => Backend.CreateKvCache(shape);

    KvOffloadStore CreateKvOffloadStore(KvCacheShape shape, int slots) => Backend.CreateKvOffloadStore(shape, slots);

    /// <summary>As <see cref="IBackend.CopyKvBlockToHost"/>, for the KV heads of every rank.</summary>
    void CopyKvBlockToHost(PagedKvCache cache, int block, KvOffloadStore store, int slot) => Backend.CopyKvBlockToHost(cache, block, store, slot);

    /// <summary>As <see cref="IBackend.CopyKvBlockFromHost"/>, for the KV heads of every rank.</summary>
    void CopyKvBlockFromHost(KvOffloadStore store, int slot, PagedKvCache cache, int block) => Backend.CopyKvBlockFromHost(store, slot, cache, block);

    /// <summary>Runs one step and leaves the logits in <see cref="Backend"/>'s tensor (null when no token needs logits).</summary>
    DeviceTensor? ForwardToLogits(ForwardBatch batch, PagedKvCache cache);

    /// <summary>Whether <see cref="CaptureStep"/> can record steps (every backend is CUDA).</summary>
    bool CanCaptureSteps { get; }

    /// <summary>
    /// Records the step of <paramref name="batch"/> without running it. Run that step eagerly first (<see cref="ForwardToLogits"/>),
    /// so that every buffer the recording addresses already has its final size.
    /// </summary>
    IStepGraph CaptureStep(ForwardBatch batch, PagedKvCache cache);
}

/// <summary>The host-side form of a step, the same for every <see cref="IForwardModel"/>.</summary>
public static class ForwardModelExtensions
{
    /// <summary>
    /// <see cref="IForwardModel.KvCacheShape"/> with the element type the model's backend stores for
    /// <paramref name="dtype"/> (<see cref="IBackend.ResolveKvCacheDtype"/>; every rank of a tensor-parallel model has the
    /// same kind of backend, and each rank's cache is created from this shape).
    /// </summary>
    public static KvCacheShape KvCacheShape(this IForwardModel model, int blockSize, int blockCount, KvCacheDtype dtype) =>
        model.KvCacheShape(blockSize, blockCount) with { Dtype = model.Backend.ResolveKvCacheDtype(dtype) };

    /// <summary>
    /// Runs one step (<see cref="IForwardModel.ForwardToLogits"/>) and copies the logits of <c>batch.LogitTokenIndices</c>
    /// from the model's backend to <paramref name="logits"/> ([LogitCount × vocabulary]).
    /// </summary>
    public static void Forward(this IForwardModel model, ForwardBatch batch, PagedKvCache cache, Span<float> logits)
    {
        if (logits.Length < batch.LogitCount * model.Config.VocabularySize)
        {
            throw new ArgumentException("The logits buffer is smaller than LogitCount × vocabulary.", nameof(logits));
        }

        if (model.ForwardToLogits(batch, cache) is { } deviceLogits)
        {
            model.Backend.ReadRows(deviceLogits, batch.LogitCount, logits);
        }
    }
}
