namespace AspireAi.Inference.Backends.Cpu;

/// <summary>Float32 keys and values of every layer in the layout <see cref="KvCacheShape"/> documents.</summary>
internal sealed unsafe class CpuKvCache : PagedKvCache
{
    private readonly NativeBuffer[] _keys;
    private readonly NativeBuffer[] _values;

    public CpuKvCache(KvCacheShape shape) : base(shape)
    {
        SlotStride = shape.KvHeads * shape.HeadDim;
        var bytes = shape.SlotCount * SlotStride * sizeof(float);
        _keys = new NativeBuffer[shape.Layers];
        _values = new NativeBuffer[shape.Layers];
        for (var l = 0; l < shape.Layers; l++)
        {
            _keys[l] = new NativeBuffer(bytes);
            _values[l] = new NativeBuffer(bytes);
        }
    }

    /// <summary>Floats per slot: every KV head of one token.</summary>
    public int SlotStride { get; }

    public float* Keys(int layer, long slot) => (float*)_keys[layer].Pointer + slot * SlotStride;

    public float* Values(int layer, long slot) => (float*)_values[layer].Pointer + slot * SlotStride;

    public override void Dispose()
    {
        foreach (var buffer in _keys.Concat(_values))
        {
            buffer.Dispose();
        }
    }
}
