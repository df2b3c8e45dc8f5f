using System.Runtime.InteropServices;
using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Backends.Cuda.Nccl;
using AspireAi.Inference.TensorParallel;

namespace AspireAi.Inference.Tests.TensorParallel;

/// <summary>What of the NCCL binding runs without GPUs: the NVLink-multicast switch and the error when NCCL is absent.</summary>
public sealed partial class NcclLibraryTests
{
    [Fact]
    public void Nvlink_multicast_is_switched_off_where_native_code_reads_the_environment()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "NCCL runs on Linux only");
        NcclLibrary.DisableNvLinkMulticast();
        Assert.Equal("0", Marshal.PtrToStringUTF8(getenv("NCCL_NVLS_ENABLE")));
        Assert.Equal("0", Environment.GetEnvironmentVariable("NCCL_NVLS_ENABLE"));
    }

    [Fact]
    public void Without_nccl_the_error_says_where_it_looked_and_how_to_point_at_it()
    {
        var present = NativeLibrary.TryLoad(NcclLibrary.FileName, out _)
            || NcclLibrary.WheelFolders().Any(folder => File.Exists(Path.Combine(folder, NcclLibrary.FileName)))
            || Environment.GetEnvironmentVariable("NCCL_LIBRARY") is { Length: > 0 };
        Assert.SkipWhen(present, "NCCL is installed here");
        var error = Assert.Throws<DllNotFoundException>(() => NcclLibrary.LoadedFrom);
        Assert.Contains("NCCL (libnccl.so.2) was not found", error.Message);
        Assert.Contains("Set NCCL_LIBRARY to its path", error.Message);
        Assert.Contains("Tried: libnccl.so.2 on the library search path", error.Message);
    }

    [Fact]
    public void Cuda_ranks_without_a_gpu_fail_with_the_drivers_reason()
    {
        Assert.SkipWhen(CudaContext.IsAvailable(out var why), "a GPU is present: GpuCheck --tp covers CUDA ranks there");
        var error = Assert.Throws<InvalidOperationException>(() => TensorParallelDevices.Create("cuda", 2, 0, out _));
        Assert.Equal($"--device cuda: {why}.", error.Message);
    }

    [LibraryImport("libc.so.6", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint getenv(string name);
}
