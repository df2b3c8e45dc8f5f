using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// A forward step recorded on one CUDA backend (<see cref="CudaBackend.CaptureStep"/>). A replay uploads the batch's
/// metadata to where the recording reads it — the same offsets, as the batch has the recorded shape — and launches the graph.
/// </summary>
internal sealed class CudaStepGraph(CudaBackend device, CudaGraph graph, DeviceTensor? logits) : IStepGraph
{
    private readonly BatchMetadata _layout = device.Layout;
    private readonly int _generation = device.StepBufferGeneration;

    public bool IsCurrent => device.StepBufferGeneration == _generation;

    public DeviceTensor? Replay(ForwardBatch batch)
    {
        device.BeginBatch(batch);
        if (device.Layout != _layout)
        {
            throw new InvalidOperationException($"A step of {batch.TokenCount} tokens (context {batch.MaxContextLength}) does not have the recorded shape.");
        }

        graph.Launch(device.Stream);
        return logits;
    }

    public void Dispose() => graph.Dispose();
}
