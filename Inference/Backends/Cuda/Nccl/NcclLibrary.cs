using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using AspireAi.Inference.Backends.Cuda.Driver;

namespace AspireAi.Inference.Backends.Cuda.Nccl;

/// <summary>
/// NCCL (<c>nccl.h</c>, version 2), the part tensor parallelism uses, bound with <see cref="LibraryImportAttribute"/> like
/// the driver (no maintained .NET binding of NCCL is in the package registry). <c>libnccl.so.2</c> is found through
/// <c>NCCL_LIBRARY</c> (a file path), then the loader's usual search (<c>LD_LIBRARY_PATH</c>, the <c>ldconfig</c> cache),
/// then the folders where PyTorch's pip package <c>nvidia-nccl-cu*</c> puts it; absent, the first call fails with a message
/// that says where it looked. NCCL ships its own CUDA runtime, which uses the devices' primary contexts, as
/// <see cref="CudaContext"/> does, so NCCL's kernels and ours share a device's context and stream.
/// </summary>
/// <remarks>
/// NVLink multicast (NVLS) is never used: <see cref="DisableNvLinkMulticast"/> sets <c>NCCL_NVLS_ENABLE=0</c> in the
/// process's native environment before any communicator exists, because multicast objects can take a shared host's GPUs
/// out of service.
/// </remarks>
public static unsafe partial class NcclLibrary
{
    /// <summary>The library name the imports use (resolved by <see cref="Resolve"/> through the driver's import resolver).</summary>
    internal const string FileName = "libnccl.so.2";

    /// <summary><c>NCCL_UNIQUE_ID_BYTES</c>.</summary>
    public const int UniqueIdBytes = 128;

    private static readonly Lazy<(nint Handle, string Where)> s_loaded = new(Load);

    static NcclLibrary()
    {
        // The driver's static constructor installs the assembly's import resolver, which hands this library to Resolve.
        RuntimeHelpers.RunClassConstructor(typeof(CudaDriver).TypeHandle);
    }

    /// <summary>Where the library was loaded from (loading it on first use); throws <see cref="DllNotFoundException"/> saying where it looked.</summary>
    public static string LoadedFrom => s_loaded.Value.Where;

    /// <summary>NCCL's version as <c>ncclGetVersion</c> gives it (22703 for 2.27.3).</summary>
    public static int Version
    {
        get
        {
            Check(ncclGetVersion(out var version), "ncclGetVersion");
            return version;
        }
    }

    internal static nint Resolve(Assembly assembly, DllImportSearchPath? path) => s_loaded.Value.Handle;

    /// <summary>
    /// Sets <c>NCCL_NVLS_ENABLE=0</c> where NCCL reads it: the C library's environment (.NET keeps its own copy on Unix, which
    /// native code never sees) as well as .NET's (inherited by processes this one starts). Overrides any other value.
    /// </summary>
    public static void DisableNvLinkMulticast()
    {
        Environment.SetEnvironmentVariable("NCCL_NVLS_ENABLE", "0");
        if (!OperatingSystem.IsWindows() && setenv("NCCL_NVLS_ENABLE", "0", 1) != 0)
        {
            throw new InvalidOperationException($"setenv(NCCL_NVLS_ENABLE=0) failed (errno {Marshal.GetLastPInvokeError()}): NCCL must not start with NVLink multicast enabled.");
        }
    }

    /// <summary>The folders PyTorch's pip wheels put <c>libnccl.so.2</c> in (<c>site-packages/nvidia/nccl/lib</c>), for the interpreters found here.</summary>
    internal static IEnumerable<string> WheelFolders()
    {
        var roots = new List<string> { "/usr/local/lib", "/usr/lib", Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "lib") };
        if (Environment.GetEnvironmentVariable("VIRTUAL_ENV") is { Length: > 0 } venv)
        {
            roots.Insert(0, Path.Combine(venv, "lib"));
        }

        // Virtual environments under /opt (the GPU machines' PyTorch lives in /opt/torch/.venv).
        if (Directory.Exists("/opt"))
        {
            roots.AddRange(Directory.EnumerateDirectories("/opt").Select(d => Path.Combine(d, ".venv", "lib")));
        }

        foreach (var root in roots.Where(Directory.Exists))
        {
            foreach (var python in Directory.EnumerateDirectories(root, "python3*"))
            {
                foreach (var packages in new[] { "site-packages", "dist-packages" })
                {
                    var folder = Path.Combine(python, packages, "nvidia", "nccl", "lib");
                    if (Directory.Exists(folder))
                    {
                        yield return folder;
                    }
                }
            }
        }
    }

    private static (nint, string) Load()
    {
        // Before the library is in the process at all, so that no NCCL code can read the environment without it.
        DisableNvLinkMulticast();
        if (Environment.GetEnvironmentVariable("NCCL_LIBRARY") is { Length: > 0 } configured)
        {
            return NativeLibrary.TryLoad(configured, out var handle)
                ? (handle, configured)
                : throw new DllNotFoundException($"NCCL_LIBRARY names '{configured}', which could not be loaded as NCCL.");
        }

        if (NativeLibrary.TryLoad(FileName, out var found))
        {
            return (found, FileName + " (library search path)");
        }

        var tried = new List<string> { FileName + " on the library search path (LD_LIBRARY_PATH, ldconfig)" };
        foreach (var folder in WheelFolders())
        {
            var candidate = Path.Combine(folder, FileName);
            if (NativeLibrary.TryLoad(candidate, out var handle))
            {
                return (handle, candidate);
            }

            tried.Add(candidate);
        }

        throw new DllNotFoundException(
            $"NCCL ({FileName}) was not found; tensor parallelism on CUDA needs it. Set NCCL_LIBRARY to its path (PyTorch's pip package nvidia-nccl-cu* has it under site-packages/nvidia/nccl/lib) or add its folder to LD_LIBRARY_PATH. Tried: {string.Join("; ", tried)}.");
    }

    /// <summary>Throws <see cref="NcclException"/> naming <paramref name="call"/> unless <paramref name="result"/> is <c>ncclSuccess</c>.</summary>
    public static void Check(int result, string call)
    {
        if (result != 0)
        {
            throw new NcclException(call, result);
        }
    }

    internal static string ErrorString(int result)
    {
        var text = ncclGetErrorString(result);
        return text == 0 ? $"ncclResult_t {result}" : Marshal.PtrToStringUTF8(text) ?? $"ncclResult_t {result}";
    }

    [LibraryImport(FileName)]
    internal static partial int ncclGetVersion(out int version);

    [LibraryImport(FileName)]
    internal static partial nint ncclGetErrorString(int result);

    /// <summary>One communicator per device of <paramref name="devices"/>, all of this process (rank i on devices[i]).</summary>
    [LibraryImport(FileName)]
    internal static partial int ncclCommInitAll(nint* communicators, int count, int* devices);

    [LibraryImport(FileName)]
    internal static partial int ncclCommDestroy(nint communicator);

    /// <summary>Frees a communicator and stops its operations in flight (those waiting for a peer that will not come).</summary>
    [LibraryImport(FileName)]
    internal static partial int ncclCommAbort(nint communicator);

    [LibraryImport(FileName)]
    internal static partial int ncclAllReduce(ulong send, ulong receive, nuint count, NcclDataType type, NcclReduction op, nint communicator, nint stream);

    /// <summary>receive[r · count …] = rank r's send[0 … count) for every rank r.</summary>
    [LibraryImport(FileName)]
    internal static partial int ncclAllGather(ulong send, ulong receive, nuint count, NcclDataType type, nint communicator, nint stream);

    [LibraryImport(FileName)]
    internal static partial int ncclGroupStart();

    [LibraryImport(FileName)]
    internal static partial int ncclGroupEnd();

    [LibraryImport("libc.so.6", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}

/// <summary><c>ncclDataType_t</c>: the types this engine reduces.</summary>
public enum NcclDataType
{
    Float32 = 7,
}

/// <summary><c>ncclRedOp_t</c>.</summary>
public enum NcclReduction
{
    Sum = 0,
}

/// <summary>A failed NCCL call, with NCCL's own description of the result.</summary>
public sealed class NcclException(string call, int result) : Exception($"{call} failed: {NcclLibrary.ErrorString(result)} ({result})")
{
    public string Call { get; } = call;

    public int Result { get; } = result;
}
