using AspireAi.Inference.Backends;

namespace AspireAi.Inference.Models;

/// <summary>
/// One step of the forward pass recorded once (<see cref="IForwardModel.CaptureStep"/>) and replayed for later batches of
/// the same shape: the same token and sequence counts and the same <see cref="ForwardBatch.MaxContextLength"/>, with new
/// token ids, positions, slots and block tables. On CUDA a graph: one launch instead of hundreds.
/// </summary>
public interface IStepGraph : IDisposable
{
    /// <summary>False once the backend has moved a buffer the recording addresses (a larger step grew it): record again.</summary>
    bool IsCurrent { get; }

    /// <summary>Uploads <paramref name="batch"/>'s metadata and queues the recorded step; returns the logits as <see cref="IForwardModel.ForwardToLogits"/> does.</summary>
    DeviceTensor? Replay(ForwardBatch batch);
}
