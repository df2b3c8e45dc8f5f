namespace AspireAi.Inference.Backends;

/// <summary>
/// A backend whose logits live in device memory and that can pick each row's largest logit there, so that a greedy step
/// copies back one id per sequence instead of rows × vocabulary floats (128k floats per row for Llama 3).
/// </summary>
public interface IDeviceArgMax
{
    /// <summary>The index of each row's largest value (the first one on ties, as the CPU sampler), for the first <paramref name="rows"/> rows.</summary>
    void ArgMax(DeviceTensor logits, int rows, Span<int> ids);
}
