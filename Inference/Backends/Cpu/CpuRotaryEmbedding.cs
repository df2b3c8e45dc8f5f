namespace AspireAi.Inference.Backends.Cpu;

/// <summary>cos/sin of position · frequency for every position below the limit and every rotated pair, computed in double.</summary>
internal sealed unsafe class CpuRotaryEmbedding : RotaryEmbedding
{
    private readonly NativeBuffer _cos;
    private readonly NativeBuffer _sin;

    public CpuRotaryEmbedding(RopeSpec spec) : base(spec)
    {
        Pairs = spec.HeadDim / 2;
        _cos = new NativeBuffer((long)spec.MaxPositions * Pairs * sizeof(float));
        _sin = new NativeBuffer((long)spec.MaxPositions * Pairs * sizeof(float));
        var freqs = spec.InverseFrequencies();
        for (var p = 0; p < spec.MaxPositions; p++)
        {
            for (var i = 0; i < Pairs; i++)
            {
                var angle = p * freqs[i];
                ((float*)_cos.Pointer)[(long)p * Pairs + i] = (float)Math.Cos(angle);
                ((float*)_sin.Pointer)[(long)p * Pairs + i] = (float)Math.Sin(angle);
            }
        }
    }

    public int Pairs { get; }

    /// <summary>Rotates one head of <see cref="RopeSpec.HeadDim"/> values in place for <paramref name="position"/>.</summary>
    public void Rotate(float* head, int position)
    {
        if ((uint)position >= (uint)Spec.MaxPositions)
        {
            throw new ArgumentOutOfRangeException(nameof(position), position, $"RoPE table covers positions below {Spec.MaxPositions}.");
        }

        var cos = (float*)_cos.Pointer + (long)position * Pairs;
        var sin = (float*)_sin.Pointer + (long)position * Pairs;
        if (Spec.Style == Models.RopeStyle.AdjacentPairs)
        {
            for (var i = 0; i < Pairs; i++)
            {
                float x0 = head[2 * i], x1 = head[2 * i + 1];
                head[2 * i] = x0 * cos[i] - x1 * sin[i];
                head[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
            }
        }
        else
        {
            for (var i = 0; i < Pairs; i++)
            {
                float x0 = head[i], x1 = head[i + Pairs];
                head[i] = x0 * cos[i] - x1 * sin[i];
                head[i + Pairs] = x0 * sin[i] + x1 * cos[i];
            }
        }
    }

    public override void Dispose()
    {
        _cos.Dispose();
        _sin.Dispose();
    }
}
