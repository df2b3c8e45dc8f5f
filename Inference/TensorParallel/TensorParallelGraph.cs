using AspireAi.Inference.Backends;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.TensorParallel;

/// <summary>
/// A tensor-parallel step recorded per rank (<see cref="TensorParallelModel.CaptureStep"/>): replaying launches every
/// rank's graph from its own thread, after uploading the batch's metadata there. The peer all-reduce keeps its call counters
/// in device memory, so replays stay in step across ranks.
/// </summary>
internal sealed class TensorParallelGraph(IStepGraph[] ranks, RankThreads threads) : IStepGraph
{
    public bool IsCurrent => ranks.All(r => r.IsCurrent);

    /// <summary>Queues one replay on every rank; returns the full logits in rank 0's backend (null for a step that needs none).</summary>
    public DeviceTensor? Replay(ForwardBatch batch)
    {
        var logits = new DeviceTensor?[ranks.Length];
        threads.Run(r => logits[r] = ranks[r].Replay(batch));
        return logits[0];
    }

    public void Dispose()
    {
        foreach (var rank in ranks)
        {
            rank.Dispose();
        }
    }
}
