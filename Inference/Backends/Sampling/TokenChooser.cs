using System.Diagnostics;
using System.Runtime.Intrinsics;

namespace AspireAi.Inference.Backends.Sampling;

/// <summary>
/// The definition of how a token is chosen from one row of (already penalised) logits, written so that a GPU can compute
/// exactly the same thing in parallel: the host <c>Sampler</c>, the CPU backend's <see cref="IDeviceSampler"/> and
/// sampling.cu's <c>sample_rows</c> all give the same id for the same logits, parameters and uniform.
/// <list type="number">
/// <item>Temperature 0 (or 1/T overflowing): the first index of the largest logit.</item>
/// <item>Weights w = exp((l − max) · (1/T)) with <see cref="Exp"/> (the most likely token weighs exactly 1).</item>
/// <item>Every filter is a floor on w, and the kept set is {w ≥ floor}: min-p (w ≥ MinP) and tokens too unlikely to carry
///   fixed-point weight (w ≥ 2⁻³²) first, then top-k (the K-th largest kept weight; ties at it kept), then top-p (the
///   largest v such that the kept weights ≥ v sum to at least P × the kept total; ties at it kept).</item>
/// <item>The draw: r = ⌊u · total⌋ (at most total − 1), and the first kept token in vocabulary order whose running weight
///   exceeds r. (A row where no token has weight — its largest logit +∞ or NaN, never from a model — takes the argmax.)</item>
/// </list>
/// Why it is built this way: sums are over fixed-point weights ⌊w · 2³²⌋ (exact integers, ≤ 2⁵³ for any vocabulary below two
/// million tokens), so they do not depend on the order of additions, which differs between one CPU loop, SIMD lanes and a
/// thousand GPU threads; <see cref="Exp"/> is Cephes' expf polynomial with every multiply and add rounded separately (the
/// kernel writes the same operations with <c>__fmul_rn</c>/<c>__fadd_rn</c>, which nvcc may not fuse), so weights are
/// bit-identical too. The library exps (TensorPrimitives, CUDA's expf) differ in the last bit, and then a draw near a
/// boundary could differ between host and device.
/// </summary>
public sealed class TokenChooser
{
    /// <summary>Weights are summed as ⌊w · 2³²⌋: a token below 2⁻³² of the most likely one has no weight and is never kept.</summary>
    public const float FixedPointScale = 4294967296f;

    public const float MinimumWeight = 1f / FixedPointScale;

    // Cephes expf (Moshier): x = n·ln2 + r with ln2 split in two (C1 is exact in 9 bits, so n·C1 is exact), then a degree-5
    // polynomial for e^r on |r| ≤ ln2/2. Below −87 the weight is 0: that also keeps every result a normal float (no
    // denormals, which GPUs may flush), and such weights are far below MinimumWeight anyway.
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693359375f;
    private const float Ln2Lo = -2.12194440e-4f;
    private const float P0 = 1.9875691500e-4f;
    private const float P1 = 1.3981999507e-3f;
    private const float P2 = 8.3334519073e-3f;
    private const float P3 = 4.1665795894e-2f;
    private const float P4 = 1.6666665459e-1f;
    private const float P5 = 5.0000001201e-1f;
    private const float Cutoff = -87f;

    // The nucleus is usually a few dozen tokens: select the largest 64 and sort only those, widening ×4 while they do not
    // reach P (sorting a whole 32,000-token row costs ~1 ms, as much as a decode step).
    private const int NucleusGuess = 64;

    private const int DrawBlock = 256;

    private readonly float[] _weights;
    private readonly float[] _selection;

    public TokenChooser(int vocabularySize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabularySize);
        _weights = new float[vocabularySize];
        _selection = new float[vocabularySize];
    }

    /// <summary>The token for <paramref name="logits"/> (penalties already applied) under <paramref name="row"/>'s parameters and uniform.</summary>
    public int Choose(ReadOnlySpan<float> logits, in SamplingRow row)
    {
        if (IsGreedy(row.Temperature, out var inverseTemperature))
        {
            return ArgMax(logits);
        }

        var weights = _weights.AsSpan(0, logits.Length);
        Weights(logits, inverseTemperature, weights);
        var floor = MathF.Max(MinimumWeight, row.MinP);
        if (row.TopK > 0)
        {
            floor = TopKFloor(weights, floor, row.TopK);
        }

        if (row.TopP < 1)
        {
            floor = TopPFloor(weights, floor, row.TopP);
        }

        // No weight at all only when the largest logit is +∞ or NaN (never from a model): then the argmax.
        var total = KeptTotal(weights, floor);
        return total == 0 ? ArgMax(logits) : Draw(weights, floor, total, row.Uniform);
    }

    /// <summary>Whether a row takes the argmax: temperature 0, or one so small that 1/T overflows.</summary>
    public static bool IsGreedy(float temperature, out float inverseTemperature)
    {
        inverseTemperature = 1f / temperature;
        return !(temperature > 0) || float.IsInfinity(inverseTemperature);
    }

    /// <summary>The first index of the largest value (vLLM's and the kernels' tie rule).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>
    /// One logit after the penalties (vLLM's): the repetition penalty divides a positive logit and multiplies a negative one
    /// of every token in the prompt or output; presence and frequency penalties subtract for generated tokens only.
    /// </summary>
    public static float Penalize(float logit, int outputCount, float repetition, float presence, float frequency)
    {
        if (repetition != 1)
        {
            logit = logit > 0 ? logit / repetition : logit * repetition;
        }

        if (outputCount > 0)
        {
            logit -= frequency * outputCount + presence;
        }

        return logit;
    }

    /// <summary>Applies <paramref name="row"/>'s penalty entries of <paramref name="penalties"/> to <paramref name="logits"/>.</summary>
    public static void ApplyPenalties(Span<float> logits, ReadOnlySpan<TokenPenalty> penalties, in SamplingRow row)
    {
        foreach (var (token, count) in penalties.Slice(row.PenaltyStart, row.PenaltyCount))
        {
            logits[token] = Penalize(logits[token], count, row.RepetitionPenalty, row.PresencePenalty, row.FrequencyPenalty);
        }
    }

    /// <summary>w = <see cref="Exp"/>((l − max) · inverseTemperature), eight at a time (the same operations as the scalar tail).</summary>
    public static void Weights(ReadOnlySpan<float> logits, float inverseTemperature, Span<float> weights)
    {
        var max = System.Numerics.Tensors.TensorPrimitives.Max(logits);
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var shift = Vector256.Create(max);
            var scale = Vector256.Create(inverseTemperature);
            for (; i + 8 <= logits.Length; i += 8)
            {
                Exp((Vector256.Create(logits.Slice(i, 8)) - shift) * scale).CopyTo(weights.Slice(i, 8));
            }
        }

        for (; i < logits.Length; i++)
        {
            weights[i] = Exp((logits[i] - max) * inverseTemperature);
        }
    }

    /// <summary>
    /// e^x for x ≤ 0 (0 below −87, and for NaN), within 0.98 ulp (8.1e-8 relative) of the exact value over [−87, 0] in steps
    /// of 1e-6; see the class remarks for why not MathF.Exp.
    /// </summary>
    public static float Exp(float x)
    {
        if (!(x >= Cutoff))
        {
            return 0;
        }

        var n = MathF.Floor(x * Log2E + 0.5f);
        var r = x - n * Ln2Hi;
        r -= n * Ln2Lo;
        var p = P0 * r + P1;
        p = p * r + P2;
        p = p * r + P3;
        p = p * r + P4;
        p = p * r + P5;
        p = p * (r * r) + r + 1f;
        return p * BitConverter.Int32BitsToSingle(((int)n + 127) << 23);
    }

    private static Vector256<float> Exp(Vector256<float> x)
    {
        var n = Vector256.Floor(x * Vector256.Create(Log2E) + Vector256.Create(0.5f));
        var r = x - n * Vector256.Create(Ln2Hi);
        r -= n * Vector256.Create(Ln2Lo);
        var p = Vector256.Create(P0) * r + Vector256.Create(P1);
        p = p * r + Vector256.Create(P2);
        p = p * r + Vector256.Create(P3);
        p = p * r + Vector256.Create(P4);
        p = p * r + Vector256.Create(P5);
        p = p * (r * r) + r + Vector256<float>.One;
        // Lanes below the cutoff (or NaN) have a meaningless exponent here and are replaced by 0.
        var power = Vector256.ShiftLeft(Vector256.ConvertToInt32(n) + Vector256.Create(127), 23).AsSingle();
        return Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256.Create(Cutoff)), p * power, Vector256<float>.Zero);
    }

    /// <summary>A weight in fixed point: ⌊w · 2³²⌋ (exact: w · 2³² is a float scaled by a power of two; converted through
    /// long, which x64 converts in one instruction, unlike ulong).</summary>
    public static ulong Fixed(float weight) => (ulong)(long)(weight * FixedPointScale);

    /// <summary>The sum of <see cref="Fixed"/> over the weights ≥ <paramref name="floor"/>: exact integers, so any order gives it.</summary>
    public static ulong KeptTotal(ReadOnlySpan<float> weights, float floor)
    {
        var i = 0;
        var total = 0UL;
        if (Vector256.IsHardwareAccelerated)
        {
            // Each lane's partial sum is an integer below 2⁵³, so double addition is exact.
            var sums = Vector256<double>.Zero;
            var scale = Vector256.Create(FixedPointScale);
            var minimum = Vector256.Create(floor);
            for (; i + 8 <= weights.Length; i += 8)
            {
                var w = Vector256.Create(weights.Slice(i, 8));
                var kept = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(w, minimum), Vector256.Floor(w * scale), Vector256<float>.Zero);
                var (lower, upper) = Vector256.Widen(kept);
                sums += lower + upper;
            }

            total = (ulong)Vector256.Sum(sums);
        }

        for (; i < weights.Length; i++)
        {
            total += weights[i] >= floor ? Fixed(weights[i]) : 0;
        }

        return total;
    }

    /// <summary>The K-th largest weight ≥ <paramref name="floor"/> (the floor itself when fewer are kept).</summary>
    private float TopKFloor(ReadOnlySpan<float> weights, float floor, int k)
    {
        var kept = Gather(weights, floor);
        return k < kept.Length ? PartitionLargest(kept, k) : floor;
    }

    /// <summary>The smallest weight of the nucleus: the largest kept v whose kept weights ≥ v reach P of the kept total.</summary>
    private float TopPFloor(ReadOnlySpan<float> weights, float floor, float topP)
    {
        var kept = Gather(weights, floor);
        var total = 0UL;
        foreach (var w in kept)
        {
            total += Fixed(w);
        }

        if (total == 0)
        {
            return floor;
        }

        var target = (double)topP * total;
        for (var m = Math.Min(NucleusGuess, kept.Length); ; m = Math.Min(m * 4, kept.Length))
        {
            PartitionLargest(kept, m);
            var head = kept[..m];
            head.Sort();
            var sum = 0UL;
            for (var i = m - 1; i >= 0; i--)
            {
                sum += Fixed(head[i]);
                if (sum >= target)
                {
                    return head[i];
                }
            }

            if (m == kept.Length)
            {
                throw new UnreachableException("The whole kept set sums to its total, which reaches P × total.");
            }
        }
    }

    /// <summary>The first kept token (vocabulary order) whose running fixed-point weight exceeds ⌊u · total⌋.</summary>
    private static int Draw(ReadOnlySpan<float> weights, float floor, ulong total, double uniform)
    {
        var r = Math.Min((ulong)(uniform * total), total - 1);
        var running = 0UL;
        var i = 0;
        // Whole blocks whose kept weight leaves the running sum ≤ r are skipped with the vectorised sum (exact integers:
        // the same answer as adding one by one, at a fraction of the scalar walk's cost).
        for (; i + DrawBlock <= weights.Length; i += DrawBlock)
        {
            var block = KeptTotal(weights.Slice(i, DrawBlock), floor);
            if (running + block > r)
            {
                break;
            }

            running += block;
        }

        for (; i < weights.Length; i++)
        {
            if (weights[i] >= floor)
            {
                running += Fixed(weights[i]);
                if (running > r)
                {
                    return i;
                }
            }
        }

        throw new UnreachableException("The kept weights sum to more than r.");
    }

    private Span<float> Gather(ReadOnlySpan<float> weights, float floor)
    {
        var count = 0;
        foreach (var w in weights)
        {
            if (w >= floor)
            {
                _selection[count++] = w;
            }
        }

        return _selection.AsSpan(0, count);
    }

    /// <summary>
    /// Moves the <paramref name="k"/> largest values to the front (quickselect, Hoare partition) and returns the k-th
    /// largest. Hand-written: .NET has no nth_element, and sorting the whole row is the cost this avoids.
    /// </summary>
    private static float PartitionLargest(Span<float> values, int k)
    {
        int left = 0, right = values.Length - 1, target = k - 1;
        while (left < right)
        {
            var pivot = values[(left + right) >>> 1];
            int i = left, j = right;
            while (i <= j)
            {
                while (values[i] > pivot)
                {
                    i++;
                }

                while (values[j] < pivot)
                {
                    j--;
                }

                if (i <= j)
                {
                    (values[i], values[j]) = (values[j], values[i]);
                    i++;
                    j--;
                }
            }

            // Now values[left..j] ≥ pivot ≥ values[i..right], and everything between j and i equals the pivot.
            if (target <= j)
            {
                right = j;
            }
            else if (target >= i)
            {
                left = i;
            }
            else
            {
                break;
            }
        }

        return values[target];
    }
}
