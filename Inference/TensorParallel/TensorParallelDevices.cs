using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.TensorParallel;

/// <summary>
/// <c>--tensor-parallel-size N</c> with <c>--device</c>: the N rank backends and their collectives. CUDA takes devices
/// 0…N − 1, one backend (context and stream) each, joined by NCCL. The CPU runs N ranks as threads of this process, the
/// <c>--threads</c> split between them, joined by <see cref="InProcessCollectiveGroup"/>: slower than one CPU backend with
/// all the threads, but it runs the whole tensor-parallel path on any machine, which is how its correctness is tested.
/// </summary>
public static class TensorParallelDevices
{
    /// <summary>Loads <paramref name="source"/> as one model (size 1) or a <see cref="TensorParallelModel"/> of <paramref name="size"/> ranks.</summary>
    public static IForwardModel Load(IModelSource source, string device, int size, int cpuThreads, int maxBatchTokens, int maxLogitRows,
        IProgress<(int Done, int Total)>? progress, out string reason)
    {
        if (size == 1)
        {
            var backend = BackendSelector.Create(device, cpuThreads, out reason);
            try
            {
                return new OwningModel(new LlamaModel(source, backend, maxBatchTokens, maxLogitRows, progress), backend);
            }
            catch
            {
                backend.Dispose();
                throw;
            }
        }

        // Checked before any device is touched, so that a model that does not split fails fast and the same everywhere.
        _ = new ShardPlan(source.Config, size);
        var (backends, group) = Create(device, size, cpuThreads, out reason);
        return new TensorParallelModel(source, backends, group, maxBatchTokens, maxLogitRows, progress);
    }

    /// <summary>The backends of <paramref name="size"/> ranks on <paramref name="device"/> (<c>auto</c>, <c>cuda</c> or <c>cpu</c>) and their collectives.</summary>
    public static (IBackend[] Backends, ICollectiveGroup Group) Create(string device, int size, int cpuThreads, out string reason)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 2);
        switch (device)
        {
            case "cpu":
                reason = $"--device cpu, {size} ranks in this process";
                return Cpu(size, cpuThreads);
            case "cuda":
                if (!CudaContext.IsAvailable(out var why))
                {
                    throw new InvalidOperationException($"--device cuda: {why}.");
                }

                reason = $"--device cuda ({why})";
                return Cuda(size);
            case "auto":
                if (CudaContext.IsAvailable(out var cudaReason))
                {
                    reason = $"auto: CUDA available ({cudaReason})";
                    return Cuda(size);
                }

                reason = $"auto: CPU, {size} ranks in this process, because {cudaReason}";
                return Cpu(size, cpuThreads);
            default:
                throw new ArgumentException($"Unknown device '{device}' (devices: {string.Join(", ", BackendSelector.Devices)}).", nameof(device));
        }
    }

    private static (IBackend[], ICollectiveGroup) Cpu(int size, int threads)
    {
        var perRank = Math.Max(1, (threads > 0 ? threads : Environment.ProcessorCount) / size);
        return (Enumerable.Range(0, size).Select(_ => (IBackend)new CpuBackend(perRank)).ToArray(), new InProcessCollectiveGroup(size));
    }

    private static (IBackend[], ICollectiveGroup) Cuda(int size)
    {
        CudaDriver.Check(CudaDriver.cuDeviceGetCount(out var count), "cuDeviceGetCount");
        if (count < size)
        {
            throw new InvalidOperationException($"--tensor-parallel-size {size} needs {size} CUDA devices, but this machine has {count}.");
        }

        var backends = new List<CudaBackend>();
        try
        {
            for (var i = 0; i < size; i++)
            {
                backends.Add(new CudaBackend(new CudaContext(i), ownsContext: true));
            }

            return ([.. backends], NcclCollectiveGroup.Create(backends));
        }
        catch
        {
            foreach (var backend in backends)
            {
                backend.Dispose();
            }

            throw;
        }
    }

    /// <summary>One model on one backend, owning the backend (a tensor-parallel model owns its ranks' backends the same way).</summary>
    private sealed class OwningModel(LlamaModel model, IBackend backend) : IForwardModel
    {
        public ModelConfig Config => model.Config;

        public int MaxBatchTokens => model.MaxBatchTokens;

        public int MaxLogitRows => model.MaxLogitRows;

        public IBackend Backend => backend;

        public long WeightBytesPerStep => model.WeightBytesPerStep;

        public KvCacheShape KvCacheShape(int blockSize, int blockCount) => model.KvCacheShape(blockSize, blockCount);

        public DeviceTensor? ForwardToLogits(ForwardBatch batch, PagedKvCache cache) => model.ForwardToLogits(batch, cache);

        public bool CanCaptureSteps => model.CanCaptureSteps;

        public IStepGraph CaptureStep(ForwardBatch batch, PagedKvCache cache) => model.CaptureStep(batch, cache);

        public void Dispose()
        {
            model.Dispose();
            backend.Dispose();
        }
    }
}
