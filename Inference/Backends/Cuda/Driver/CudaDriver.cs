using System.Reflection;
using System.Runtime.InteropServices;

namespace AspireAi.Inference.Backends.Cuda.Driver;

/// <summary>
/// The CUDA driver API (<c>cuda.h</c>), bound with <see cref="LibraryImportAttribute"/> because ManagedCuda-12, the library
/// the design names, is not obtainable from the package registry here. Only the driver is needed at run time (no toolkit):
/// <c>libcuda.so.1</c> on Linux, <c>nvcuda.dll</c> on Windows (mapped by the import resolver below). Entry points are the
/// <c>_v2</c> symbols that <c>cuda.h</c>'s macros select for 64-bit code. Callers go through <see cref="Check"/> so that every
/// result is checked; the typed wrappers (<see cref="CudaContext"/>, <see cref="CudaStream"/>, …) do that.
/// </summary>
public static unsafe partial class CudaDriver
{
    private const string Library = "libcuda.so.1";

    static CudaDriver()
    {
        // One resolver per assembly: it serves the driver and NCCL, the native libraries the Inference assembly imports by name.
        NativeLibrary.SetDllImportResolver(typeof(CudaDriver).Assembly, Resolve);
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name == Nccl.NcclLibrary.FileName)
        {
            return Nccl.NcclLibrary.Resolve(assembly, path);
        }

        if (name != Library)
        {
            return 0;
        }

        var candidate = OperatingSystem.IsWindows() ? "nvcuda.dll" : Library;
        return NativeLibrary.TryLoad(candidate, assembly, path, out var handle) ? handle : 0;
    }

    /// <summary>Whether the driver library can be loaded at all (no CUDA call is made).</summary>
    public static bool TryLoadLibrary(out string reason)
    {
        var candidate = OperatingSystem.IsWindows() ? "nvcuda.dll" : Library;
        if (NativeLibrary.TryLoad(candidate, out var handle))
        {
            NativeLibrary.Free(handle);
            reason = "";
            return true;
        }

        reason = $"the CUDA driver library {candidate} could not be loaded";
        return false;
    }

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> unless <paramref name="result"/> is success.</summary>
    public static void Check(CudaResult result, string call)
    {
        if (result != CudaResult.Success)
        {
            throw new CudaException(call, result);
        }
    }

    /// <summary>The driver's name for a result (<c>CUDA_ERROR_ILLEGAL_ADDRESS</c>), or the enum name when the driver gives none.</summary>
    public static string ErrorName(CudaResult result)
    {
        try
        {
            if (cuGetErrorName(result, out var text) == CudaResult.Success && text != 0)
            {
                return Marshal.PtrToStringUTF8(text) ?? result.ToString();
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // No driver to ask: fall back to our own name.
        }

        return Enum.IsDefined(result) ? "CUDA_ERROR_" + result : "CUresult " + (int)result;
    }

    [LibraryImport(Library)]
    internal static partial CudaResult cuGetErrorName(CudaResult error, out nint text);

    [LibraryImport(Library)]
    internal static partial CudaResult cuInit(uint flags);

    [LibraryImport(Library)]
    internal static partial CudaResult cuDriverGetVersion(out int version);

    [LibraryImport(Library)]
    internal static partial CudaResult cuDeviceGetCount(out int count);

    [LibraryImport(Library)]
    internal static partial CudaResult cuDeviceGet(out int device, int ordinal);

    [LibraryImport(Library)]
    internal static partial CudaResult cuDeviceGetName(byte* name, int length, int device);

    [LibraryImport(Library)]
    internal static partial CudaResult cuDeviceGetAttribute(out int value, CudaDeviceAttribute attribute, int device);

    [LibraryImport(Library, EntryPoint = "cuDeviceTotalMem_v2")]
    internal static partial CudaResult cuDeviceTotalMem(out nuint bytes, int device);

    [LibraryImport(Library)]
    internal static partial CudaResult cuDevicePrimaryCtxRetain(out nint context, int device);

    [LibraryImport(Library, EntryPoint = "cuDevicePrimaryCtxRelease_v2")]
    internal static partial CudaResult cuDevicePrimaryCtxRelease(int device);

    [LibraryImport(Library)]
    internal static partial CudaResult cuCtxSetCurrent(nint context);

    [LibraryImport(Library)]
    internal static partial CudaResult cuCtxSynchronize();

    [LibraryImport(Library)]
    internal static partial CudaResult cuDeviceCanAccessPeer(out int canAccess, int device, int peerDevice);

    [LibraryImport(Library)]
    internal static partial CudaResult cuCtxEnablePeerAccess(nint peerContext, uint flags);

    [LibraryImport(Library, EntryPoint = "cuMemGetInfo_v2")]
    internal static partial CudaResult cuMemGetInfo(out nuint free, out nuint total);

    [LibraryImport(Library)]
    internal static partial CudaResult cuModuleLoadDataEx(out nint module, byte* image, uint optionCount, CudaJitOption* options, void** optionValues);

    [LibraryImport(Library)]
    internal static partial CudaResult cuModuleUnload(nint module);

    [LibraryImport(Library)]
    internal static partial CudaResult cuModuleGetFunction(out nint function, nint module, byte* name);

    [LibraryImport(Library)]
    internal static partial CudaResult cuFuncGetAttribute(out int value, CudaFunctionAttribute attribute, nint function);

    [LibraryImport(Library)]
    internal static partial CudaResult cuFuncSetAttribute(nint function, CudaFunctionAttribute attribute, int value);

    [LibraryImport(Library)]
    internal static partial CudaResult cuOccupancyMaxActiveBlocksPerMultiprocessor(out int blocks, nint function, int blockSize, nuint dynamicSharedBytes);

    [LibraryImport(Library)]
    internal static partial CudaResult cuLaunchKernel(
        nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedMemoryBytes, nint stream, void** parameters, void** extra);

    /// <summary>A launch with attributes (CUDA 12+): programmatic dependent launch, <see cref="CudaLaunchConfig"/>.</summary>
    [LibraryImport(Library)]
    internal static partial CudaResult cuLaunchKernelEx(CudaLaunchConfig* config, nint function, void** parameters, void** extra);

    /// <summary>Builds a tensor map (<see cref="CudaTensorMap"/>) for the bulk tensor copies of Hopper and later (CUDA 12+).</summary>
    [LibraryImport(Library)]
    internal static partial CudaResult cuTensorMapEncodeTiled(
        CudaTensorMap* tensorMap, int dataType, uint rank, ulong globalAddress, ulong* globalDim, ulong* globalStrides,
        uint* boxDim, uint* elementStrides, int interleave, int swizzle, int l2Promotion, int oobFill);

    [LibraryImport(Library, EntryPoint = "cuMemAlloc_v2")]
    internal static partial CudaResult cuMemAlloc(out ulong pointer, nuint bytes);

    [LibraryImport(Library, EntryPoint = "cuMemFree_v2")]
    internal static partial CudaResult cuMemFree(ulong pointer);

    [LibraryImport(Library)]
    internal static partial CudaResult cuMemHostAlloc(out nint pointer, nuint bytes, uint flags);

    [LibraryImport(Library)]
    internal static partial CudaResult cuMemFreeHost(nint pointer);

    [LibraryImport(Library, EntryPoint = "cuMemcpyHtoDAsync_v2")]
    internal static partial CudaResult cuMemcpyHtoDAsync(ulong destination, void* source, nuint bytes, nint stream);

    [LibraryImport(Library, EntryPoint = "cuMemcpyDtoHAsync_v2")]
    internal static partial CudaResult cuMemcpyDtoHAsync(void* destination, ulong source, nuint bytes, nint stream);

    [LibraryImport(Library, EntryPoint = "cuMemcpyDtoDAsync_v2")]
    internal static partial CudaResult cuMemcpyDtoDAsync(ulong destination, ulong source, nuint bytes, nint stream);

    [LibraryImport(Library, EntryPoint = "cuMemcpy2DAsync_v2")]
    internal static partial CudaResult cuMemcpy2DAsync(CudaMemcpy2D* copy, nint stream);

    [LibraryImport(Library)]
    internal static partial CudaResult cuMemsetD32Async(ulong destination, uint value, nuint count, nint stream);

    [LibraryImport(Library)]
    internal static partial CudaResult cuStreamCreate(out nint stream, uint flags);

    [LibraryImport(Library, EntryPoint = "cuStreamDestroy_v2")]
    internal static partial CudaResult cuStreamDestroy(nint stream);

    [LibraryImport(Library)]
    internal static partial CudaResult cuStreamSynchronize(nint stream);

    [LibraryImport(Library)]
    internal static partial CudaResult cuEventCreate(out nint cudaEvent, uint flags);

    [LibraryImport(Library, EntryPoint = "cuEventDestroy_v2")]
    internal static partial CudaResult cuEventDestroy(nint cudaEvent);

    [LibraryImport(Library)]
    internal static partial CudaResult cuEventRecord(nint cudaEvent, nint stream);

    [LibraryImport(Library)]
    internal static partial CudaResult cuEventSynchronize(nint cudaEvent);

    [LibraryImport(Library)]
    internal static partial CudaResult cuEventElapsedTime(out float milliseconds, nint start, nint end);

    [LibraryImport(Library, EntryPoint = "cuStreamBeginCapture_v2")]
    internal static partial CudaResult cuStreamBeginCapture(nint stream, CudaStreamCaptureMode mode);

    [LibraryImport(Library)]
    internal static partial CudaResult cuStreamEndCapture(nint stream, out nint graph);

    [LibraryImport(Library)]
    internal static partial CudaResult cuGraphInstantiateWithFlags(out nint executable, nint graph, ulong flags);

    [LibraryImport(Library)]
    internal static partial CudaResult cuGraphLaunch(nint executable, nint stream);

    [LibraryImport(Library)]
    internal static partial CudaResult cuGraphExecDestroy(nint executable);

    [LibraryImport(Library)]
    internal static partial CudaResult cuGraphDestroy(nint graph);
}

/// <summary>The <c>CUdevice_attribute</c> values this engine reads.</summary>
public enum CudaDeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxSharedMemoryPerBlock = 8,
    WarpSize = 10,
    ClockRateKHz = 13,
    MultiprocessorCount = 16,
    MemoryClockRateKHz = 36,
    GlobalMemoryBusWidth = 37,
    L2CacheSize = 38,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
    MaxSharedMemoryPerMultiprocessor = 81,
    MaxSharedMemoryPerBlockOptin = 97,
    ReservedSharedMemoryPerBlock = 111,
}

/// <summary>The <c>CUfunction_attribute</c> values this engine reads or sets.</summary>
public enum CudaFunctionAttribute
{
    MaxThreadsPerBlock = 0,
    SharedSizeBytes = 1,
    ConstSizeBytes = 2,
    LocalSizeBytes = 3,
    NumRegisters = 4,
    PtxVersion = 5,
    BinaryVersion = 6,
    MaxDynamicSharedSizeBytes = 8,
    PreferredSharedMemoryCarveout = 9,
}

/// <summary>The <c>CUjit_option</c> values used to collect the JIT compiler's log when PTX is loaded.</summary>
public enum CudaJitOption
{
    InfoLogBuffer = 3,
    InfoLogBufferSizeBytes = 4,
    ErrorLogBuffer = 5,
    ErrorLogBufferSizeBytes = 6,
}

/// <summary><c>CUstreamCaptureMode</c>.</summary>
public enum CudaStreamCaptureMode
{
    Global = 0,
    ThreadLocal = 1,
    Relaxed = 2,
}

/// <summary><c>CUmemorytype</c>.</summary>
public enum CudaMemoryType
{
    Host = 1,
    Device = 2,
}

/// <summary>
/// <c>CUDA_MEMCPY2D</c>: <see cref="Height"/> rows of <see cref="WidthInBytes"/> bytes from a source to a destination of
/// their own row pitches (fields in <c>cuda.h</c>'s order; sequential layout pads the enums to 8 bytes as C does).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct CudaMemcpy2D
{
    public nuint SrcXInBytes;
    public nuint SrcY;
    public CudaMemoryType SrcMemoryType;
    public nint SrcHost;
    public ulong SrcDevice;
    public nint SrcArray;
    public nuint SrcPitch;
    public nuint DstXInBytes;
    public nuint DstY;
    public CudaMemoryType DstMemoryType;
    public nint DstHost;
    public ulong DstDevice;
    public nint DstArray;
    public nuint DstPitch;
    public nuint WidthInBytes;
    public nuint Height;
}

/// <summary><c>CUlaunchConfig</c>: a launch's shape, stream and attribute list.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct CudaLaunchConfig
{
    public uint GridX, GridY, GridZ, BlockX, BlockY, BlockZ, SharedMemoryBytes;
    public nint Stream;
    public CudaLaunchAttribute* Attributes;
    public uint AttributeCount;
}

/// <summary>
/// <c>CUlaunchAttribute</c>: an id (4 bytes, padded to 8) and a 64-byte value union, of which only the first int is used
/// here (<c>programmaticStreamSerializationAllowed</c>).
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 72)]
internal struct CudaLaunchAttribute
{
    /// <summary><c>CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION</c>.</summary>
    public const int ProgrammaticStreamSerialization = 6;

    [FieldOffset(0)]
    public int Id;

    [FieldOffset(8)]
    public int Value;
}
