using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.TensorParallel;

/// <summary>
/// A model split over <see cref="Size"/> ranks (Megatron-style, <see cref="ShardPlan"/>), driven by one process: each
/// rank has its own backend, its share of every weight and its own part of the KV cache, and runs the same
/// <see cref="LlamaModel"/> forward pass on its own long-lived thread (rank 0 on the caller's). The engine sees one model:
/// one batch per step (every rank runs the same step), one cache whose block ids mean the same on every rank, and the full
/// logits in rank 0's backend, where greedy argmax and sampling read them. See docs/tensor-parallel.md.
/// </summary>
public sealed class TensorParallelModel : IForwardModel
{
    private readonly IBackend[] _backends;
    private readonly ICollectiveGroup _group;
    private readonly RankThreads _threads;
    private readonly LlamaModel[] _ranks;
    private readonly Action<int> _forwardRank;
    private ForwardBatch? _stepBatch;
    private TensorParallelKvCache? _stepCache;
    private DeviceTensor? _stepLogits;
    private Exception? _fault;

    /// <summary>
    /// Loads every rank's share of <paramref name="source"/> in parallel, one rank per backend. The model owns
    /// <paramref name="backends"/> and <paramref name="group"/> from here on (and disposes them if loading fails).
    /// </summary>
    /// <exception cref="ArgumentException">The model's shapes do not split over this many ranks (the message names the tensor).</exception>
    public TensorParallelModel(IModelSource source, IReadOnlyList<IBackend> backends, ICollectiveGroup group, int maxBatchTokens, int maxLogitRows,
        IProgress<(int Done, int Total)>? progress = null)
    {
        _backends = [.. backends];
        _group = group;
        _ranks = new LlamaModel[_backends.Length];
        _threads = new RankThreads(_backends.Length, group.Abort);
        _forwardRank = ForwardRank;
        try
        {
            if (group.Size != _backends.Length)
            {
                throw new ArgumentException($"A collective group of {group.Size} ranks cannot join {_backends.Length} backends.", nameof(group));
            }

            Plan = new ShardPlan(source.Config, _backends.Length);
            _threads.Run(r => _ranks[r] = new LlamaModel(source, _backends[r], maxBatchTokens, maxLogitRows, r == 0 ? progress : null,
                new TensorParallelRank(Plan, r, group.Rank(r))));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public ShardPlan Plan { get; } = null!;

    public int Size => _backends.Length;

    public ModelConfig Config => Plan.Config;

    public int MaxBatchTokens => _ranks[0].MaxBatchTokens;

    public int MaxLogitRows => _ranks[0].MaxLogitRows;

    /// <summary>Rank 0's backend: the full logits of every step are gathered there.</summary>
    public IBackend Backend => _backends[0];

    public string Description => $"tensor-parallel {Size} × {_backends[0].Description}" + (_group is NcclCollectiveGroup nccl ? $", all-reduce: {nccl.AllReduce}" : "");

    public long WeightBytesPerStep => _ranks.Sum(r => r.WeightBytesPerStep);

    /// <summary>Each rank's model (its weights, buffers and KV geometry), by rank.</summary>
    public IReadOnlyList<LlamaModel> Ranks => _ranks;

    public KvCacheShape KvCacheShape(int blockSize, int blockCount) => _ranks[0].KvCacheShape(blockSize, blockCount);

    /// <summary>
    /// The free memory of the tightest rank; CPU ranks share the host's memory, so each may take only its part of it.
    /// </summary>
    public long AvailableKvMemoryBytes() =>
        _backends.Min(b => b.AvailableMemoryBytes()) / (_backends[0] is CpuBackend ? Size : 1);

    public PagedKvCache CreateKvCache(KvCacheShape shape)
    {
        var caches = new PagedKvCache[Size];
        _threads.Run(r => caches[r] = _backends[r].CreateKvCache(shape));
        return new TensorParallelKvCache(caches[0].Shape, caches, _threads.Run); // the element type as the ranks resolved it
    }

    public KvOffloadStore CreateKvOffloadStore(KvCacheShape shape, int slots)
    {
        var stores = new KvOffloadStore[Size];
        _threads.Run(r => stores[r] = _backends[r].CreateKvOffloadStore(shape, slots));
        return new TensorParallelKvOffloadStore(stores[0].Shape, slots, stores, _threads.Run);
    }

    // Issued from the engine thread between steps, queued on each rank's stream (the backends make their device current).
    public void CopyKvBlockToHost(PagedKvCache cache, int block, KvOffloadStore store, int slot)
    {
        var (caches, stores) = (((TensorParallelKvCache)cache).Ranks, ((TensorParallelKvOffloadStore)store).Ranks);
        for (var r = 0; r < Size; r++)
        {
            _backends[r].CopyKvBlockToHost(caches[r], block, stores[r], slot);
        }
    }

    public void CopyKvBlockFromHost(KvOffloadStore store, int slot, PagedKvCache cache, int block)
    {
        var (caches, stores) = (((TensorParallelKvCache)cache).Ranks, ((TensorParallelKvOffloadStore)store).Ranks);
        for (var r = 0; r < Size; r++)
        {
            _backends[r].CopyKvBlockFromHost(stores[r], slot, caches[r], block);
        }
    }

    /// <summary>
    /// Runs the step on every rank. A bad batch is refused here, before any rank starts; a rank that fails mid-step leaves
    /// the others' collectives unmatched, so the model refuses every later step (reload it).
    /// </summary>
    public DeviceTensor? ForwardToLogits(ForwardBatch batch, PagedKvCache cache)
    {
        if (_fault is not null)
        {
            throw new InvalidOperationException("A tensor-parallel rank failed in an earlier step, so the ranks are out of step; the model must be reloaded.", _fault);
        }

        _ranks[0].CheckBatch(batch);
        foreach (var id in batch.TokenIds)
        {
            if ((uint)id >= (uint)Config.VocabularySize)
            {
                throw new ArgumentOutOfRangeException(nameof(batch), id, $"Token id {id} is outside the vocabulary of {Config.VocabularySize}.");
            }
        }

        (_stepBatch, _stepCache) = (batch, (TensorParallelKvCache)cache);
        try
        {
            _threads.Run(_forwardRank);
        }
        catch (Exception e)
        {
            _fault = e;
            throw;
        }
        finally
        {
            (_stepBatch, _stepCache) = (null, null);
        }

        return _stepLogits;
    }

    public bool CanCaptureSteps => _backends.All(b => b is Backends.Cuda.CudaBackend);

    /// <summary>
    /// Records the step of <paramref name="batch"/> on every rank as a CUDA graph — each rank's stream, its all-reduces
    /// and the logits' gather included. Run the step eagerly first (it sizes the buffers the graphs address).
    /// </summary>
    /// <exception cref="NotSupportedException">A rank's backend is not CUDA.</exception>
    public IStepGraph CaptureStep(ForwardBatch batch, PagedKvCache cache)
    {
        if (!CanCaptureSteps)
        {
            throw new NotSupportedException("Only CUDA ranks record steps as graphs.");
        }

        var graphs = new IStepGraph[Size];
        var caches = ((TensorParallelKvCache)cache).Ranks;
        _threads.Run(r => graphs[r] = _ranks[r].CaptureStep(batch, caches[r]));
        return new TensorParallelGraph(graphs, _threads);
    }

    private void ForwardRank(int rank)
    {
        var logits = _ranks[rank].ForwardToLogits(_stepBatch!, _stepCache!.Ranks[rank]);
        if (rank == 0)
        {
            _stepLogits = logits;
        }
    }

    public void Dispose()
    {
        // Each rank's buffers are freed on its own thread, where its device is current; the collectives (NCCL's
        // communicators hold on to the devices) before the backends release their devices.
        try
        {
            _threads.Run(r => _ranks[r]?.Dispose());
            _group.Dispose();
            _threads.Run(r => _backends[r].Dispose());
        }
        finally
        {
            _threads.Dispose();
        }
    }
}
