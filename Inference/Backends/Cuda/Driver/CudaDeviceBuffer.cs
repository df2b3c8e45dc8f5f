using System.Runtime.CompilerServices;

namespace AspireAi.Inference.Backends.Cuda.Driver;

/// <summary>
/// <see cref="Length"/> elements of <typeparamref name="T"/> in device memory (plain <c>cuMemAlloc</c>; never managed
/// memory), with asynchronous copies on a stream. Like ManagedCuda's <c>CudaDeviceVariable&lt;T&gt;</c>.
/// </summary>
public sealed unsafe class CudaDeviceBuffer<T> : IDisposable where T : unmanaged
{
    public CudaDeviceBuffer(CudaContext context, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        context.MakeCurrent();
        Length = length;
        var result = CudaDriver.cuMemAlloc(out var address, (nuint)ByteLength);
        if (result != CudaResult.Success)
        {
            throw new CudaException("cuMemAlloc", result, $"{ByteLength:N0} bytes ({typeof(T).Name}[{length:N0}])");
        }

        Pointer = new DevicePointer(address);
    }

    public long Length { get; }

    public long ByteLength => Length * Unsafe.SizeOf<T>();

    public DevicePointer Pointer { get; private set; }

    public static implicit operator KernelArg(CudaDeviceBuffer<T> buffer) => buffer.Pointer;

    public DevicePointer At(long index) => Pointer.Offset(index * Unsafe.SizeOf<T>());

    /// <summary>Copies <paramref name="source"/> to elements from <paramref name="offset"/> on. The host memory must stay
    /// unchanged until the stream reaches the copy (pinned memory for true asynchrony; pageable memory is staged by the driver).</summary>
    public void CopyFrom(CudaStream stream, ReadOnlySpan<T> source, long offset = 0)
    {
        CheckRange(offset, source.Length);
        fixed (T* pointer = source)
        {
            CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync(At(offset).Address, pointer, (nuint)(source.Length * Unsafe.SizeOf<T>()), stream.Handle), "cuMemcpyHtoDAsync");
        }
    }

    /// <summary>Copies elements from <paramref name="offset"/> on into <paramref name="destination"/> and waits for it.</summary>
    public void CopyTo(CudaStream stream, Span<T> destination, long offset = 0)
    {
        CheckRange(offset, destination.Length);
        fixed (T* pointer = destination)
        {
            CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync(pointer, At(offset).Address, (nuint)(destination.Length * Unsafe.SizeOf<T>()), stream.Handle), "cuMemcpyDtoHAsync");
            stream.Synchronize();
        }
    }

    /// <summary>
    /// Copies <paramref name="count"/> elements from <paramref name="offset"/> on to <paramref name="destination"/>,
    /// asynchronously on <paramref name="stream"/> (no wait). The destination must be page-locked host memory
    /// (<see cref="CudaPinnedBuffer{T}"/>) that stays allocated, and is not read by the host, until the stream reaches the copy.
    /// </summary>
    public void CopyToHostAsync(CudaStream stream, long offset, T* destination, long count)
    {
        CheckRange(offset, count);
        CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync(destination, At(offset).Address, (nuint)(count * Unsafe.SizeOf<T>()), stream.Handle), "cuMemcpyDtoHAsync");
    }

    /// <summary>
    /// Copies <paramref name="count"/> elements of page-locked host memory at <paramref name="source"/> to elements from
    /// <paramref name="offset"/> on, asynchronously on <paramref name="stream"/>; the source must stay unchanged until the
    /// stream reaches the copy.
    /// </summary>
    public void CopyFromHostAsync(CudaStream stream, T* source, long offset, long count)
    {
        CheckRange(offset, count);
        CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync(At(offset).Address, source, (nuint)(count * Unsafe.SizeOf<T>()), stream.Handle), "cuMemcpyHtoDAsync");
    }

    /// <summary>Copies this whole buffer into <paramref name="destination"/> on the device, asynchronously.</summary>
    public void CopyTo(CudaStream stream, CudaDeviceBuffer<T> destination)
    {
        if (destination.Length < Length)
        {
            throw new ArgumentException($"A buffer of {destination.Length} elements cannot take {Length}.", nameof(destination));
        }

        CudaDriver.Check(CudaDriver.cuMemcpyDtoDAsync(destination.Pointer.Address, Pointer.Address, (nuint)ByteLength, stream.Handle), "cuMemcpyDtoDAsync");
    }

    /// <summary>Fills the buffer with a 32-bit pattern (<typeparamref name="T"/> of 4 bytes or a multiple of them).</summary>
    public void Fill(CudaStream stream, uint pattern) =>
        CudaDriver.Check(CudaDriver.cuMemsetD32Async(Pointer.Address, pattern, (nuint)(ByteLength / 4), stream.Handle), "cuMemsetD32Async");

    private void CheckRange(long offset, long count)
    {
        ObjectDisposedException.ThrowIf(Pointer.Address == 0, this);
        if (offset < 0 || offset + count > Length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"Elements [{offset}, {offset + count}) are outside a buffer of {Length}.");
        }
    }

    public void Dispose()
    {
        if (Pointer.Address != 0)
        {
            CudaDriver.Check(CudaDriver.cuMemFree(Pointer.Address), "cuMemFree");
            Pointer = DevicePointer.Null;
        }
    }
}

/// <summary>Page-locked host memory (<c>cuMemHostAlloc</c>): the source and target of truly asynchronous copies.</summary>
public sealed unsafe class CudaPinnedBuffer<T> : IDisposable where T : unmanaged
{
    public CudaPinnedBuffer(CudaContext context, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        context.MakeCurrent();
        Length = length;
        CudaDriver.Check(CudaDriver.cuMemHostAlloc(out var pointer, (nuint)((long)length * Unsafe.SizeOf<T>()), 0), "cuMemHostAlloc");
        Pointer = (T*)pointer;
    }

    public int Length { get; }

    public T* Pointer { get; private set; }

    public Span<T> Span => new(Pointer, Length);

    public void Dispose()
    {
        if (Pointer != null)
        {
            CudaDriver.Check(CudaDriver.cuMemFreeHost((nint)Pointer), "cuMemFreeHost");
            Pointer = null;
        }
    }
}
