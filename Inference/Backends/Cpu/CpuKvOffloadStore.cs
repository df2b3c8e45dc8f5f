namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// The offload tier on the CPU backend: plain host memory, so both tiers are RAM here and a copy is a memcpy per layer. It
/// runs the engine's offload logic exactly as a device backend does (what the tests exercise).
/// </summary>
internal sealed unsafe class CpuKvOffloadStore : KvOffloadStore
{
    private readonly NativeBuffer _memory;

    public CpuKvOffloadStore(KvCacheShape shape, int slots) : base(shape, slots) =>
        _memory = new NativeBuffer(slots * BytesPerSlot);

    /// <summary>Layer <paramref name="layer"/>'s keys (values: <paramref name="values"/>) of the block in <paramref name="slot"/>.</summary>
    private byte* At(int slot, int layer, bool values) =>
        (byte*)_memory.Pointer + slot * BytesPerSlot + (2L * layer + (values ? 1 : 0)) * Shape.BytesPerLayerBlock;

    public void Copy(CpuKvCache cache, int block, int slot, bool toHost)
    {
        CheckCopy(cache, block, slot);
        var bytes = Shape.BytesPerLayerBlock;
        var first = (long)block * Shape.BlockSize;
        for (var l = 0; l < Shape.Layers; l++)
        {
            byte* keys = cache.Keys(l, first), values = cache.Values(l, first);
            byte* hostKeys = At(slot, l, values: false), hostValues = At(slot, l, values: true);
            if (toHost)
            {
                Buffer.MemoryCopy(keys, hostKeys, bytes, bytes);
                Buffer.MemoryCopy(values, hostValues, bytes, bytes);
            }
            else
            {
                Buffer.MemoryCopy(hostKeys, keys, bytes, bytes);
                Buffer.MemoryCopy(hostValues, values, bytes, bytes);
            }
        }
    }

    public override void Dispose() => _memory.Dispose();
}
