using System.Runtime.InteropServices;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>64-byte aligned native memory (one cache line, one AVX-512 register), zeroed, freed on dispose.</summary>
internal sealed unsafe class NativeBuffer : IDisposable
{
    public NativeBuffer(long bytes)
    {
        ByteLength = Math.Max(bytes, 64);
        Pointer = (byte*)NativeMemory.AlignedAlloc((nuint)ByteLength, 64);
        NativeMemory.Clear(Pointer, (nuint)ByteLength);
    }

    public byte* Pointer { get; private set; }

    public long ByteLength { get; }

    public void Dispose()
    {
        if (Pointer != null)
        {
            NativeMemory.AlignedFree(Pointer);
            Pointer = null;
        }
    }
}
