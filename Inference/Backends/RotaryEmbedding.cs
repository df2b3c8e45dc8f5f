using AspireAi.Inference.Models;

namespace AspireAi.Inference.Backends;

/// <summary>What a rotary embedding needs: rotated width, base, pairing style, optional Llama-3 scaling, position limit.</summary>
public sealed record RopeSpec(int HeadDim, float Theta, RopeStyle Style, Llama3RopeScaling? Scaling, int MaxPositions)
{
    /// <summary>
    /// The inverse frequency of each rotated pair, θ^(−2i/d), with Llama 3.1's wavelength-dependent scaling applied when
    /// configured (high frequencies kept, low ones divided by the factor, a smooth blend between). Computed in double and
    /// shared by every backend so they rotate identically.
    /// </summary>
    public double[] InverseFrequencies()
    {
        var pairs = HeadDim / 2;
        var result = new double[pairs];
        for (var i = 0; i < pairs; i++)
        {
            var freq = Math.Pow(Theta, -2.0 * i / HeadDim);
            if (Scaling is { } s)
            {
                var lowFreqWavelength = s.OriginalContextLength / s.LowFreqFactor;
                var highFreqWavelength = s.OriginalContextLength / s.HighFreqFactor;
                var wavelength = 2 * Math.PI / freq;
                if (wavelength > lowFreqWavelength)
                {
                    freq /= s.Factor;
                }
                else if (wavelength >= highFreqWavelength)
                {
                    var smooth = (s.OriginalContextLength / wavelength - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                    freq = (1 - smooth) * freq / s.Factor + smooth * freq;
                }
            }

            result[i] = freq;
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
