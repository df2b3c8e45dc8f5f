using AspireAi.Inference.Backends.Cuda.Driver;

namespace AspireAi.Inference.Backends.Cuda;

/// <summary>Float32 keys and values of every layer in device memory, in the layout <see cref="KvCacheShape"/> documents.</summary>
public sealed class CudaKvCache : PagedKvCache
{
    private readonly CudaDeviceBuffer<float>[] _keys;
    private readonly CudaDeviceBuffer<float>[] _values;

    internal CudaKvCache(CudaContext context, KvCacheShape shape) : base(shape)
    {
        var floats = shape.SlotCount * shape.KvHeads * shape.HeadDim;
        _keys = new CudaDeviceBuffer<float>[shape.Layers];
        _values = new CudaDeviceBuffer<float>[shape.Layers];
        try
        {
            for (var l = 0; l < shape.Layers; l++)
            {
                _keys[l] = new CudaDeviceBuffer<float>(context, floats);
                _values[l] = new CudaDeviceBuffer<float>(context, floats);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Layer <paramref name="layer"/>'s keys, <c>[slot][kvHeads][headDim]</c> (GpuCheck reads and writes them).</summary>
    public CudaDeviceBuffer<float> Keys(int layer) => _keys[layer];

    public CudaDeviceBuffer<float> Values(int layer) => _values[layer];

    public override void Dispose()
    {
        foreach (var buffer in _keys.Concat(_values))
        {
            buffer?.Dispose();
        }
    }
}
