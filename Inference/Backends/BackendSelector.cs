using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Backends.Cuda.Driver;

namespace AspireAi.Inference.Backends;

/// <summary>
/// <c>--device auto|cuda|cpu</c>: <c>auto</c> takes CUDA when the driver loads and reports a device, otherwise the CPU
/// backend, and says which and why in <see cref="Reason"/> (the commands log it). <c>cuda</c> fails with the driver's
/// reason instead of falling back.
/// </summary>
public static class BackendSelector
{
    public static readonly string[] Devices = ["auto", "cuda", "cpu"];

    public static IBackend Create(string device, int cpuThreads, out string reason)
    {
        switch (device)
        {
            case "cpu":
                reason = "--device cpu";
                return new CpuBackend(cpuThreads);
            case "cuda":
                if (!CudaContext.IsAvailable(out var why))
                {
                    throw new InvalidOperationException($"--device cuda: {why}.");
                }

                reason = $"--device cuda ({why})";
                return new CudaBackend();
            case "auto":
                if (CudaContext.IsAvailable(out var cudaReason))
                {
                    reason = $"auto: CUDA available ({cudaReason})";
                    return new CudaBackend();
                }

                reason = $"auto: CPU, because {cudaReason}";
                return new CpuBackend(cpuThreads);
            default:
                throw new ArgumentException($"Unknown device '{device}' (devices: {string.Join(", ", Devices)}).", nameof(device));
        }
    }
}
