using System.Text;

namespace AspireAi.Inference.Backends.Cuda.Driver;

/// <summary>A module JIT-compiled by the driver from PTX text (<c>cuModuleLoadDataEx</c>); its kernels by name.</summary>
public sealed unsafe class CudaModule : IDisposable
{
    private const int LogBytes = 16 * 1024;

    private readonly bool _waitsForPreviousKernel;
    private readonly List<CudaKernel> _kernels = [];
    private nint _handle;

    /// <param name="name">Names the module in errors (the PTX resource it came from).</param>
    /// <param name="waitsForPreviousKernel">Its kernels were built for programmatic dependent launch (<see cref="CudaKernel.WaitsForPreviousKernel"/>).</param>
    public CudaModule(CudaContext context, string name, string ptx, bool waitsForPreviousKernel = false)
    {
        context.MakeCurrent();
        Name = name;
        _waitsForPreviousKernel = waitsForPreviousKernel;
        var image = Encoding.UTF8.GetBytes(ptx + "\0");
        var errorLog = new byte[LogBytes];
        fixed (byte* imagePointer = image)
        fixed (byte* log = errorLog)
        {
            var options = stackalloc CudaJitOption[] { CudaJitOption.ErrorLogBuffer, CudaJitOption.ErrorLogBufferSizeBytes };
            var values = stackalloc void*[] { log, (void*)LogBytes };
            var result = CudaDriver.cuModuleLoadDataEx(out _handle, imagePointer, 2, options, values);
            if (result != CudaResult.Success)
            {
                var text = Encoding.UTF8.GetString(errorLog, 0, Math.Max(0, Array.IndexOf(errorLog, (byte)0)));
                throw new CudaException($"cuModuleLoadDataEx({name})", result, text.Length > 0 ? text.Trim() : null);
            }
        }
    }

    public string Name { get; }

    /// <summary>The kernels taken from the module so far (<see cref="Kernel"/>).</summary>
    public IReadOnlyList<CudaKernel> Kernels => _kernels;

    public CudaKernel Kernel(string name)
    {
        ObjectDisposedException.ThrowIf(_handle == 0, this);
        var bytes = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* pointer = bytes)
        {
            CudaDriver.Check(CudaDriver.cuModuleGetFunction(out var function, _handle, pointer), $"cuModuleGetFunction({Name}.{name})");
            var kernel = new CudaKernel(function, name, _waitsForPreviousKernel);
            _kernels.Add(kernel);
            return kernel;
        }
    }

    public void Dispose()
    {
        if (_handle != 0)
        {
            CudaDriver.Check(CudaDriver.cuModuleUnload(_handle), $"cuModuleUnload({Name})");
            _handle = 0;
        }
    }
}
