using AspireAi.Inference.Backends.Cuda.Driver;

namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// Keys and values of every layer in device memory, in the layout <see cref="KvCacheShape"/> documents, as float32, f16
/// (IEEE half) or FP8 E4M3 (<see cref="KvCacheShape.Dtype"/>). The buffers are bytes: the kernels take the variant of the
/// cache's type (CudaBackend.RopeAndStoreKv, PagedAttention) and the offload tier copies blocks as bytes.
/// </summary>
public sealed class CudaKvCache : PagedKvCache
{
    private readonly CudaDeviceBuffer<byte>[] _keys;
    private readonly CudaDeviceBuffer<byte>[] _values;
    private readonly CudaContext _context;
    private CudaDeviceBuffer<ulong>? _layerPointers;

    /// <param name="shape">A resolved element type (float32, f16 or fp8).</param>
    internal CudaKvCache(CudaContext context, KvCacheShape shape) : base(shape)
    {
        _context = context;
        ElementBytes = shape.Dtype.ElementBytes();
        var bytes = shape.SlotCount * shape.KvHeads * shape.HeadDim * ElementBytes;
        _keys = new CudaDeviceBuffer<byte>[shape.Layers];
        _values = new CudaDeviceBuffer<byte>[shape.Layers];
        try
        {
            for (var l = 0; l < shape.Layers; l++)
            {
                _keys[l] = new CudaDeviceBuffer<byte>(context, bytes);
                _values[l] = new CudaDeviceBuffer<byte>(context, bytes);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Bytes of one key or value element: 4 (float32), 2 (f16) or 1 (fp8).</summary>
    public int ElementBytes { get; }

    /// <summary>Whether the elements are f16 (the kernels' <c>_f16</c> variants read and write them).</summary>
    public bool IsHalf => Shape.Dtype == KvCacheDtype.Float16;

    /// <summary>Whether the elements are FP8 E4M3 codes (the kernels' <c>_fp8</c> variants).</summary>
    public bool IsFp8 => Shape.Dtype == KvCacheDtype.Float8E4M3;

    /// <summary>Layer <paramref name="layer"/>'s keys, <c>[slot][kvHeads][headDim]</c> of <see cref="ElementBytes"/> each (GpuCheck reads and writes them).</summary>
    public CudaDeviceBuffer<byte> Keys(int layer) => _keys[layer];

    public CudaDeviceBuffer<byte> Values(int layer) => _values[layer];

    /// <summary>
    /// Every layer's key and value buffer addresses, [layer][keys, values], on the device (the persistent decode kernel's
    /// table, CudaPersistentDecode), uploaded the first time it is asked for — on a stream of its own, so that the first ask
    /// may come while another stream records a graph.
    /// </summary>
    internal CudaDeviceBuffer<ulong> LayerPointers()
    {
        if (_layerPointers is null)
        {
            var pointers = new ulong[2 * Shape.Layers];
            for (var l = 0; l < Shape.Layers; l++)
            {
                (pointers[2 * l], pointers[2 * l + 1]) = (_keys[l].Pointer.Address, _values[l].Pointer.Address);
            }

            using var upload = new CudaStream(_context);
            _layerPointers = new CudaDeviceBuffer<ulong>(_context, pointers.Length);
            _layerPointers.CopyFrom(upload, pointers);
            upload.Synchronize();
        }

        return _layerPointers;
    }

    public override void Dispose()
    {
        foreach (var buffer in _keys.Concat(_values))
        {
            buffer?.Dispose();
        }

        _layerPointers?.Dispose();
    }
}
