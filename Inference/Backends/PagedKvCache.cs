namespace AspireAi.Inference.Backends;

/// <summary>
/// Geometry of the paged KV cache. Storage per layer is, for keys and for values separately,
/// <c>[BlockCount][BlockSize][KvHeads][HeadDim]</c> (vLLM's flash layout): token slot <c>s = block · BlockSize + offset</c>
/// holds its KV heads contiguously at <c>s · KvHeads · HeadDim</c>. A sequence's positions map to slots through its block
/// table: position p lives in block <c>table[p / BlockSize]</c> at offset <c>p % BlockSize</c>.
/// </summary>
public sealed record KvCacheShape(int Layers, int KvHeads, int HeadDim, int BlockSize, int BlockCount)
{
    public long SlotCount => (long)BlockSize * BlockCount;
}

/// <summary>The backend-owned key/value storage of every layer; which blocks belong to whom is the engine's business.</summary>
public abstract class PagedKvCache : IDisposable
{
    protected PagedKvCache(KvCacheShape shape) => Shape = shape;

    public KvCacheShape Shape { get; }

    public abstract void Dispose();
}
