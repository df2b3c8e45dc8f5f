namespace AspireAi.Inference.Backends;

/// <summary>
/// Geometry of the paged KV cache. Storage per layer is, for keys and for values separately,
/// <c>[BlockCount][BlockSize][KvHeads][HeadDim]</c> (vLLM's flash layout): token slot <c>s = block · BlockSize + offset</c>
/// holds its KV heads contiguously at <c>s · KvHeads · HeadDim</c>. A sequence's positions map to slots through its block
/// table: position p lives in block <c>table[p / BlockSize]</c> at offset <c>p % BlockSize</c>. Elements are
/// <see cref="Dtype"/>: float32 unless asked otherwise; <see cref="KvCacheDtype.Auto"/> is resolved by the backend that
/// creates the cache (the cache's own <see cref="PagedKvCache.Shape"/> holds the resolved type).
/// </summary>
public sealed record KvCacheShape(int Layers, int KvHeads, int HeadDim, int BlockSize, int BlockCount, KvCacheDtype Dtype = KvCacheDtype.Float32)
{
    public long SlotCount => (long)BlockSize * BlockCount;

    /// <summary>Keys (or values) of one layer of one block: elements.</summary>
    public long ElementsPerLayerBlock => (long)BlockSize * KvHeads * HeadDim;

    /// <summary>Keys (or values) of one layer of one block: bytes, at the element size of <see cref="Dtype"/>.</summary>
    public long BytesPerLayerBlock => ElementsPerLayerBlock * Dtype.ElementBytes();
}

/// <summary>The backend-owned key/value storage of every layer; which blocks belong to whom is the engine's business.</summary>
public abstract class PagedKvCache : IDisposable
{
    protected PagedKvCache(KvCacheShape shape) => Shape = shape;

    public KvCacheShape Shape { get; }

    public abstract void Dispose();
}
