using System.Runtime.InteropServices;

namespace AspireAi.Inference.Models.Synthetic;

/// <summary>A tensor held in pinned managed memory, viewed as the engine's <see cref="TensorView"/>.</summary>
public sealed class HostTensor : IDisposable
{
    private GCHandle _handle;

    public HostTensor(string name, GgmlType type, long[] shape, byte[] data)
    {
        Data = data;
        _handle = GCHandle.Alloc(data, GCHandleType.Pinned);
        View = new TensorView(name, type, shape, _handle.AddrOfPinnedObject(), data.LongLength);
    }

    public byte[] Data { get; }

    public TensorView View { get; }

    public void Dispose()
    {
        if (_handle.IsAllocated)
        {
            _handle.Free();
        }
    }
}
