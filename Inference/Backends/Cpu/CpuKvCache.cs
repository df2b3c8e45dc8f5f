namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// Keys and values of every layer in the layout <see cref="KvCacheShape"/> documents, as float32 or bf16 (the shape's
/// resolved <see cref="KvCacheShape.Dtype"/>); readers widen bf16 through <see cref="BFloat16Row"/>.
/// </summary>
internal sealed unsafe class CpuKvCache : PagedKvCache
{
    private readonly NativeBuffer[] _keys;
    private readonly NativeBuffer[] _values;

    public CpuKvCache(KvCacheShape shape) : base(shape)
    {
        SlotStride = shape.KvHeads * shape.HeadDim;
        ElementBytes = shape.Dtype.ElementBytes();
        SlotBytes = SlotStride * ElementBytes;
        var bytes = shape.SlotCount * SlotBytes;
        _keys = new NativeBuffer[shape.Layers];
        _values = new NativeBuffer[shape.Layers];
        for (var l = 0; l < shape.Layers; l++)
        {
            _keys[l] = new NativeBuffer(bytes);
            _values[l] = new NativeBuffer(bytes);
        }
    }

    /// <summary>Elements per slot: every KV head of one token.</summary>
    public int SlotStride { get; }

    /// <summary>Bytes of one element (4 for float32, 2 for bf16) and of one slot.</summary>
    public int ElementBytes { get; }

    public int SlotBytes { get; }

    public bool IsBFloat16 => Shape.Dtype == KvCacheDtype.BFloat16;

    public byte* Keys(int layer, long slot) => (byte*)_keys[layer].Pointer + slot * SlotBytes;

    public byte* Values(int layer, long slot) => (byte*)_values[layer].Pointer + slot * SlotBytes;

    /// <summary>Writes one slot's keys or values (<see cref="SlotStride"/> floats) in the cache's element type.</summary>
    public void Store(float* source, byte* slot)
    {
        if (!IsBFloat16)
        {
            Buffer.MemoryCopy(source, slot, SlotBytes, SlotBytes);
            return;
        }

        var destination = (ushort*)slot;
        for (var i = 0; i < SlotStride; i++)
        {
            destination[i] = BFloat16Row.Round(source[i]);
        }
    }

    public override void Dispose()
    {
        foreach (var buffer in _keys.Concat(_values))
        {
            buffer.Dispose();
        }
    }
}
