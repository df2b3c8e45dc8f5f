using AspireAi.Inference.Backends.Cuda.Driver;

namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// The offload tier in page-locked host memory (<c>cuMemHostAlloc</c>), so that swapping a block out or in is a set of
/// asynchronous copies on the backend's stream, ordered with the steps around it. Allocated in chunks of whole slots, at
/// most <see cref="ChunkBytes"/> each: a pinned buffer's length is an <c>int</c>, and one huge page-locked allocation is
/// more likely to fail than several smaller ones.
/// </summary>
public sealed unsafe class CudaKvOffloadStore : KvOffloadStore
{
    /// <summary>1 GiB per pinned allocation (fewer than 2³¹ bytes, as a pinned buffer's length needs).</summary>
    private const long ChunkBytes = 1L << 30;

    private readonly CudaContext _context;
    private readonly CudaPinnedBuffer<byte>[] _chunks;
    private readonly int _slotsPerChunk;

    /// <param name="shape">The cache's geometry with its resolved element type: blocks are copied as bytes.</param>
    internal CudaKvOffloadStore(CudaContext context, KvCacheShape shape, int slots) : base(shape, slots)
    {
        _context = context;
        _slotsPerChunk = SlotsPerChunk(BytesPerSlot, slots);
        _chunks = new CudaPinnedBuffer<byte>[(slots + _slotsPerChunk - 1) / _slotsPerChunk];
        try
        {
            for (var c = 0; c < _chunks.Length; c++)
            {
                var slotsHere = Math.Min(_slotsPerChunk, slots - c * _slotsPerChunk);
                _chunks[c] = new CudaPinnedBuffer<byte>(context, checked((int)(slotsHere * BytesPerSlot)));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Whole slots per pinned allocation: as many as fit in <see cref="ChunkBytes"/>, at least one, at most all.</summary>
    internal static int SlotsPerChunk(long bytesPerSlot, int slots)
    {
        if (bytesPerSlot > int.MaxValue)
        {
            throw new ArgumentException($"One KV block of {bytesPerSlot:N0} bytes is too large for a pinned buffer.");
        }

        return (int)Math.Clamp(ChunkBytes / bytesPerSlot, 1, slots);
    }

    /// <summary>Layer <paramref name="layer"/>'s keys (values: <paramref name="values"/>) of the block in <paramref name="slot"/>.</summary>
    private byte* At(int slot, int layer, bool values) =>
        _chunks[slot / _slotsPerChunk].Pointer + slot % _slotsPerChunk * BytesPerSlot + (2L * layer + (values ? 1 : 0)) * Shape.BytesPerLayerBlock;

    /// <summary>Queues the copies of one block (keys and values of every layer) on <paramref name="stream"/>.</summary>
    internal void Copy(CudaStream stream, CudaKvCache cache, int block, int slot, bool toHost)
    {
        CheckCopy(cache, block, slot);
        var bytes = Shape.BytesPerLayerBlock;
        var first = block * bytes; // the block's first byte in a layer's keys (or values)
        for (var l = 0; l < Shape.Layers; l++)
        {
            if (toHost)
            {
                cache.Keys(l).CopyToHostAsync(stream, first, At(slot, l, values: false), bytes);
                cache.Values(l).CopyToHostAsync(stream, first, At(slot, l, values: true), bytes);
            }
            else
            {
                cache.Keys(l).CopyFromHostAsync(stream, At(slot, l, values: false), first, bytes);
                cache.Values(l).CopyFromHostAsync(stream, At(slot, l, values: true), first, bytes);
            }
        }
    }

    public override void Dispose()
    {
        if (_chunks.Length > 0 && _chunks[0] is not null)
        {
            // Copies into or out of the slots may still be queued (a step that only moved blocks between tiers).
            _context.MakeCurrent();
            CudaDriver.Check(CudaDriver.cuCtxSynchronize(), "cuCtxSynchronize");
        }

        foreach (var chunk in _chunks)
        {
            chunk?.Dispose();
        }
    }
}
