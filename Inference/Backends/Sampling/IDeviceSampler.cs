namespace AspireAi.Inference.Backends.Sampling;

/// <summary>
/// A backend that chooses each logits row's token where the logits are (a GPU: in device memory), so that a step copies
/// back one id per sequence instead of rows × vocabulary floats (128k floats per row for Llama 3). The choice is
/// <see cref="TokenChooser"/>'s, bit for bit: the same logits, parameters and uniform give the same id as the host sampler.
/// </summary>
public interface IDeviceSampler
{
    /// <summary>
    /// Row <c>r</c> of <paramref name="logits"/> gets penalties <c>penalties[rows[r].PenaltyStart ..][.. rows[r].PenaltyCount]</c>
    /// (applied to a copy: the logits are left as they are), then its token is chosen by <c>rows[r]</c>'s parameters and
    /// uniform; the ids of the first <c>rows.Length</c> rows go to <paramref name="ids"/>.
    /// </summary>
    void Sample(DeviceTensor logits, ReadOnlySpan<SamplingRow> rows, ReadOnlySpan<TokenPenalty> penalties, Span<int> ids);
}
