namespace AspireAi.Inference.Backends;

/// <summary>
/// Host memory for KV blocks copied out of the device cache: the second tier of the prefix cache (vLLM's CPU swap space,
/// LMCache's local CPU backend). It holds <see cref="Slots"/> blocks; slot <c>s</c> holds, layer by layer, the block's
/// keys then its values, each <c>[BlockSize][KvHeads][HeadDim]</c> in the cache's element type as in <see cref="KvCacheShape"/>
/// (the copies move bytes). Which block a
/// slot holds is the engine's business; the backend only copies (<see cref="IBackend.CopyKvBlockToHost"/>,
/// <see cref="IBackend.CopyKvBlockFromHost"/>).
/// </summary>
public abstract class KvOffloadStore : IDisposable
{
    protected KvOffloadStore(KvCacheShape shape, int slots)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(slots);
        Shape = shape;
        Slots = slots;
    }

    /// <summary>The device cache's geometry (its block count is not this store's).</summary>
    public KvCacheShape Shape { get; }

    public int Slots { get; }

    /// <summary>Bytes of one slot: keys and values of every layer.</summary>
    public long BytesPerSlot => 2L * Shape.Layers * Shape.BytesPerLayerBlock;

    /// <summary>Throws unless <paramref name="cache"/> has this store's per-block geometry and the ids are in range.</summary>
    protected void CheckCopy(PagedKvCache cache, int block, int slot)
    {
        var s = cache.Shape;
        if (s.Layers != Shape.Layers || s.KvHeads != Shape.KvHeads || s.HeadDim != Shape.HeadDim || s.BlockSize != Shape.BlockSize
            || s.Dtype != Shape.Dtype)
        {
            throw new ArgumentException($"The KV cache's block geometry {s} differs from the offload store's {Shape}.", nameof(cache));
        }

        if ((uint)block >= (uint)s.BlockCount)
        {
            throw new ArgumentOutOfRangeException(nameof(block), block, $"Block ids run from 0 to {s.BlockCount - 1}.");
        }

        if ((uint)slot >= (uint)Slots)
        {
            throw new ArgumentOutOfRangeException(nameof(slot), slot, $"Offload slots run from 0 to {Slots - 1}.");
        }
    }

    public abstract void Dispose();
}
