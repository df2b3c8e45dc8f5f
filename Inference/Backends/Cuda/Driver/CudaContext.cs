using System.Text;

namespace AspireAi.Inference.Backends.Cuda.Driver;

/// <summary>
/// A device and its primary context (the one the runtime API would share), made current on every thread that calls
/// <see cref="MakeCurrent"/>. Like ManagedCuda's <c>PrimaryContext</c>: created from a device ordinal, released on dispose.
/// </summary>
public sealed unsafe class CudaContext : IDisposable
{
    [ThreadStatic]
    private static nint s_current;

    private nint _handle;

    public CudaContext(int ordinal = 0)
    {
        Initialize();
        CudaDriver.Check(CudaDriver.cuDeviceGetCount(out var count), "cuDeviceGetCount");
        if (ordinal < 0 || ordinal >= count)
        {
            throw new ArgumentOutOfRangeException(nameof(ordinal), ordinal, $"There are {count} CUDA devices.");
        }

        CudaDriver.Check(CudaDriver.cuDeviceGet(out var device, ordinal), "cuDeviceGet");
        Ordinal = ordinal;
        Device = device;
        CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRetain(out _handle, device), "cuDevicePrimaryCtxRetain");
        MakeCurrent();
        var name = stackalloc byte[256];
        CudaDriver.Check(CudaDriver.cuDeviceGetName(name, 256, device), "cuDeviceGetName");
        Name = Encoding.UTF8.GetString(name, new ReadOnlySpan<byte>(name, 256).IndexOf((byte)0) is var n and >= 0 ? n : 256);
        ComputeCapability = (Attribute(CudaDeviceAttribute.ComputeCapabilityMajor), Attribute(CudaDeviceAttribute.ComputeCapabilityMinor));
        MultiprocessorCount = Attribute(CudaDeviceAttribute.MultiprocessorCount);
        CudaDriver.Check(CudaDriver.cuDeviceTotalMem(out var total, device), "cuDeviceTotalMem");
        TotalMemory = (long)total;
    }

    /// <summary>cuInit(0); safe to call repeatedly.</summary>
    public static void Initialize() => CudaDriver.Check(CudaDriver.cuInit(0), "cuInit");

    /// <summary>
    /// Whether CUDA can be used here: the driver library loads, initialises, and reports a device. <paramref name="reason"/>
    /// says why not (for the <c>--device auto</c> log line), or names the device.
    /// </summary>
    public static bool IsAvailable(out string reason)
    {
        if (!CudaDriver.TryLoadLibrary(out reason))
        {
            return false;
        }

        try
        {
            var init = CudaDriver.cuInit(0);
            if (init != CudaResult.Success)
            {
                reason = $"cuInit failed: {CudaDriver.ErrorName(init)}";
                return false;
            }

            CudaDriver.Check(CudaDriver.cuDeviceGetCount(out var count), "cuDeviceGetCount");
            if (count == 0)
            {
                reason = "the CUDA driver reports no device";
                return false;
            }

            reason = $"{count} CUDA device{(count == 1 ? "" : "s")}";
            return true;
        }
        catch (Exception e) when (e is CudaException or DllNotFoundException or EntryPointNotFoundException)
        {
            reason = e.Message;
            return false;
        }
    }

    /// <summary>The device's ordinal (as <c>CUDA_VISIBLE_DEVICES</c> numbers them, which NCCL's device lists use).</summary>
    public int Ordinal { get; }

    public int Device { get; }

    /// <summary>The driver's CUDA version as <c>cuDriverGetVersion</c> gives it (13000 for 13.0).</summary>
    public static int DriverVersion
    {
        get
        {
            CudaDriver.Check(CudaDriver.cuDriverGetVersion(out var version), "cuDriverGetVersion");
            return version;
        }
    }

    public string Name { get; }

    public (int Major, int Minor) ComputeCapability { get; }

    public int MultiprocessorCount { get; }

    public long TotalMemory { get; }

    public int Attribute(CudaDeviceAttribute attribute)
    {
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out var value, attribute, Device), "cuDeviceGetAttribute");
        return value;
    }

    /// <summary>
    /// Lets kernels of this context read and write <paramref name="peer"/>'s device memory directly (NVLink or PCIe peer
    /// access), or returns false where the devices cannot.
    /// </summary>
    public bool EnablePeerAccess(CudaContext peer)
    {
        CudaDriver.Check(CudaDriver.cuDeviceCanAccessPeer(out var can, Device, peer.Device), "cuDeviceCanAccessPeer");
        if (can == 0)
        {
            return false;
        }

        MakeCurrent();
        var result = CudaDriver.cuCtxEnablePeerAccess(peer._handle, 0);
        if (result != CudaResult.PeerAccessAlreadyEnabled)
        {
            CudaDriver.Check(result, "cuCtxEnablePeerAccess");
        }

        return true;
    }

    /// <summary>Makes this context current on the calling thread (a no-op when it already is).</summary>
    public void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(_handle == 0, this);
        if (s_current != _handle)
        {
            CudaDriver.Check(CudaDriver.cuCtxSetCurrent(_handle), "cuCtxSetCurrent");
            s_current = _handle;
        }
    }

    /// <summary>
    /// Forgets which context this thread has current, so that the next <see cref="MakeCurrent"/> sets it again: for after a
    /// library with its own CUDA runtime (NCCL's communicator set-up) switched this thread's device behind our back.
    /// </summary>
    public static void ForgetCurrent() => s_current = 0;

    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemGetInfo(out var free, out var total), "cuMemGetInfo");
        return ((long)free, (long)total);
    }

    /// <summary>Waits for all work of the context (and surfaces asynchronous kernel faults as exceptions).</summary>
    public void Synchronize()
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuCtxSynchronize(), "cuCtxSynchronize");
    }

    public void Dispose()
    {
        if (_handle != 0)
        {
            if (s_current == _handle)
            {
                s_current = 0;
            }

            _handle = 0;
            CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRelease(Device), "cuDevicePrimaryCtxRelease");
        }
    }
}
