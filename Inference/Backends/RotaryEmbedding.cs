using AspireAi.Inference.Models;

namespace AspireAi.Inference.Backends;

/// <summary>
/// What a rotary embedding needs: rotated width, base, pairing style, optional per-pair frequency divisors (llama.cpp's
/// <c>rope_freqs.weight</c>, which is how Llama 3.1 scaling reaches the engine), and the position limit.
/// </summary>
public sealed record RopeSpec(int HeadDim, float Theta, RopeStyle Style, float[]? FrequencyFactors, int MaxPositions)
{
    /// <summary>θ^(−2i/d) / factor_i for each rotated pair i, in double, shared by every backend so they rotate identically.</summary>
    public double[] InverseFrequencies()
    {
        var result = new double[HeadDim / 2];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = Math.Pow(Theta, -2.0 * i / HeadDim) / (FrequencyFactors?[i] ?? 1f);
        }

        return result;
    }
}

/// <summary>A backend's precomputed rotation table for one <see cref="RopeSpec"/>.</summary>
public abstract class RotaryEmbedding : IDisposable
{
    protected RotaryEmbedding(RopeSpec spec) => Spec = spec;

    public RopeSpec Spec { get; }

    public abstract void Dispose();
}
