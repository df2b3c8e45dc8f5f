using AspireAi.Inference.Backends;

namespace AspireAi.Inference.TensorParallel;

/// <summary>
/// The paged KV cache of a tensor-parallel model: one cache per rank, each holding that rank's KV heads of every block.
/// The engine's block manager sees one cache; a block id names the same block on every rank.
/// </summary>
public sealed class TensorParallelKvCache : PagedKvCache
{
    private readonly Action<Action<int>> _onEachRank;

    /// <param name="onEachRank">Runs an action on each rank's thread (where that rank's device is current).</param>
    internal TensorParallelKvCache(KvCacheShape shape, PagedKvCache[] ranks, Action<Action<int>> onEachRank) : base(shape)
    {
        Ranks = ranks;
        _onEachRank = onEachRank;
    }

    /// <summary>Each rank's cache, by rank.</summary>
    public IReadOnlyList<PagedKvCache> Ranks { get; }

    public override void Dispose() => _onEachRank(r => Ranks[r].Dispose());
}

/// <summary>The KV offload tier of a tensor-parallel model: one host store per rank, for that rank's KV heads.</summary>
public sealed class TensorParallelKvOffloadStore : KvOffloadStore
{
    private readonly Action<Action<int>> _onEachRank;

    internal TensorParallelKvOffloadStore(KvCacheShape shape, int slots, KvOffloadStore[] ranks, Action<Action<int>> onEachRank) : base(shape, slots)
    {
        Ranks = ranks;
        _onEachRank = onEachRank;
    }

    public IReadOnlyList<KvOffloadStore> Ranks { get; }

    public override void Dispose() => _onEachRank(r => Ranks[r].Dispose());
}
