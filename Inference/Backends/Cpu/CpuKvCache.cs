namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// Keys and values of every layer in the layout <see cref="KvCacheShape"/> documents, as float32, bf16 or fp8 E4M3 (the
/// shape's resolved <see cref="KvCacheShape.Dtype"/>); readers widen them through <see cref="BFloat16Row"/> and
/// <see cref="Float8E4M3Row"/>.
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

    /// <summary>Bytes of one element (4 for float32, 2 for bf16, 1 for fp8) and of one slot.</summary>
    public int ElementBytes { get; }

    public int SlotBytes { get; }

    public byte* Keys(int layer, long slot) => (byte*)_keys[layer].Pointer + slot * SlotBytes;

    public byte* Values(int layer, long slot) => (byte*)_values[layer].Pointer + slot * SlotBytes;

    /// <summary>Writes one slot's keys or values (<see cref="SlotStride"/> floats) in the cache's element type.</summary>
    public void Store(float* source, byte* slot)
    {
        switch (Shape.Dtype)
        {
            case KvCacheDtype.BFloat16:
                for (var i = 0; i < SlotStride; i++)
                {
                    ((ushort*)slot)[i] = BFloat16Row.Round(source[i]);
                }

                break;
            case KvCacheDtype.Float8E4M3:
                for (var i = 0; i < SlotStride; i++)
                {
                    slot[i] = Float8E4M3Row.Round(source[i]);
                }

                break;
            default:
                Buffer.MemoryCopy(source, slot, SlotBytes, SlotBytes);
                break;
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
