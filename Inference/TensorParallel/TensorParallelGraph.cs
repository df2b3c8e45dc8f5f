using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Backends.Cuda.Driver;

namespace AspireAi.Inference.TensorParallel;

/// <summary>
/// A tensor-parallel step captured per rank (<see cref="TensorParallelModel.CaptureStep"/>): replaying launches every
/// rank's graph from its own thread, after uploading the batch's metadata there. The peer all-reduce keeps its call counters
/// in device memory, so replays stay in step across ranks.
/// </summary>
public sealed class TensorParallelGraph : IDisposable
{
    private readonly CudaBackend[] _devices;
    private readonly CudaGraph[] _graphs;
    private readonly RankThreads _threads;

    internal TensorParallelGraph(CudaBackend[] devices, CudaGraph[] graphs, RankThreads threads, DeviceTensor? logits)
    {
        _devices = devices;
        _graphs = graphs;
        _threads = threads;
        Logits = logits;
    }

    /// <summary>The full logits in rank 0's backend after a replay (null for a step that needs none).</summary>
    public DeviceTensor? Logits { get; }

    /// <summary>Queues one replay on every rank; <paramref name="batch"/> must have the captured step's shape.</summary>
    public void Replay(ForwardBatch batch) => _threads.Run(r =>
    {
        _devices[r].UploadBatch(batch);
        _graphs[r].Launch(_devices[r].Stream);
    });

    public void Dispose()
    {
        foreach (var graph in _graphs)
        {
            graph.Dispose();
        }
    }
}
