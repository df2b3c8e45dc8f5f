using AspireAi.Inference.Backends.Sampling;

namespace AspireAi.Inference.Tests.Backends;

/// <summary>
/// <see cref="TokenChooser"/> is the definition the host sampler, the CPU backend and sampling.cu all implement. Here it is
/// checked against a plain sort-based reading of that definition (whole-row sorts and LINQ instead of quickselect and the
/// widening nucleus), and its exp against the exact value.
/// </summary>
public sealed class TokenChooserTests
{
    /// <summary>Parameter mixes: greedy, temperature alone, each filter alone, combinations, extremes.</summary>
    public static readonly SamplingRow[] Mixes =
    [
        SamplingRow.Greedy,
        Row(1f), Row(0.5f), Row(1.7f), Row(1e-3f), Row(1e-39f), // the last: 1/T overflows, so greedy
        Row(1f, topK: 1), Row(0.8f, topK: 2), Row(1f, topK: 5), Row(1f, topK: 50), Row(1f, topK: 1_000_000),
        Row(1f, topP: 0.1f), Row(0.9f, topP: 0.5f), Row(1f, topP: 0.9f), Row(1.2f, topP: 0.99f),
        Row(1f, minP: 0.05f), Row(1f, minP: 0.3f), Row(1f, minP: 1f),
        Row(0.7f, topK: 40, topP: 0.9f), Row(1f, topK: 10, minP: 0.1f), Row(0.8f, topP: 0.95f, minP: 0.02f),
        Row(1.1f, topK: 20, topP: 0.8f, minP: 0.01f),
    ];

    public static SamplingRow Row(float temperature, int topK = 0, float topP = 1, float minP = 0, double uniform = 0) =>
        new(temperature, topK, topP, minP, 1, 0, 0, 0, 0, uniform);

    /// <summary>Random logit rows: spread out, with many exact ties (few distinct values), and with masked (−∞) entries.</summary>
    public static float[] Logits(Random random, int vocabulary, int kind) => kind switch
    {
        0 => Enumerable.Range(0, vocabulary).Select(_ => (float)(random.NextDouble() * 12 - 6)).ToArray(),
        1 => Enumerable.Range(0, vocabulary).Select(_ => random.Next(6) * 0.5f).ToArray(),
        _ => Enumerable.Range(0, vocabulary).Select(_ => random.Next(3) == 0 ? float.NegativeInfinity : (float)(random.NextDouble() * 4)).ToArray(),
    };

    [Fact]
    public void Choices_equal_the_sort_based_reference_on_random_rows_and_parameter_mixes()
    {
        var random = new Random(42);
        var checkedRows = 0;
        foreach (var vocabulary in new[] { 1, 7, 100, 1000, 3001 })
        {
            var chooser = new TokenChooser(vocabulary);
            for (var kind = 0; kind < 3; kind++)
            {
                var logits = Logits(random, vocabulary, kind);
                logits[random.Next(vocabulary)] = 7; // a finite maximum even in a masked row
                foreach (var mix in Mixes)
                {
                    for (var draw = 0; draw < 4; draw++)
                    {
                        var row = mix with { Uniform = draw switch { 0 => 0, 1 => Math.BitDecrement(1.0), _ => random.NextDouble() } };
                        Assert.True(Reference(logits, row) == chooser.Choose(logits, row), $"vocabulary {vocabulary}, kind {kind}, {row}");
                        checkedRows++;
                    }
                }
            }
        }

        Assert.Equal(5 * 3 * Mixes.Length * 4, checkedRows);
    }

    [Fact]
    public void Top_k_and_top_p_keep_every_token_tied_at_their_threshold()
    {
        // Weights 1, 1, e⁻¹, 1: three tokens tied at the largest weight, token 2 far below them.
        float[] logits = [2, 2, 1, 2];
        var chooser = new TokenChooser(4);
        var total = 3 + Math.Exp(-1);
        int Choose(SamplingRow row, double uniform) => chooser.Choose(logits, row with { Uniform = uniform });

        // Unfiltered, the draw walks the vocabulary in order: a uniform of 2.2 / total lands in token 2's share.
        Assert.Equal(2, Choose(Row(1f), 2.2 / total));
        // top-k 1 keeps all three tokens tied at the largest weight (vLLM's mask), drawn in vocabulary order.
        Assert.Equal(0, Choose(Row(1f, topK: 1), 0));
        Assert.Equal(1, Choose(Row(1f, topK: 1), 2.2 / total));
        Assert.Equal(3, Choose(Row(1f, topK: 1), Math.BitDecrement(1.0)));
        // top-p 0.2: one token of weight 1 already reaches 0.2 of the total, and its ties come with it.
        Assert.Equal(1, Choose(Row(1f, topP: 0.2f), 2.2 / total));
        Assert.Equal(3, Choose(Row(1f, topP: 0.2f), Math.BitDecrement(1.0)));
    }

    [Fact]
    public void Min_p_is_relative_to_the_most_likely_token()
    {
        // Weights 1, e⁻¹ ≈ 0.37, e⁻² ≈ 0.14: min-p 0.2 keeps the first two only; the largest uniform picks the second.
        float[] logits = [3, 2, 1];
        var chooser = new TokenChooser(3);
        Assert.Equal(1, chooser.Choose(logits, Row(1f, minP: 0.2f, uniform: Math.BitDecrement(1.0))));
        Assert.Equal(2, chooser.Choose(logits, Row(1f, minP: 0.1f, uniform: Math.BitDecrement(1.0))));
    }

    [Fact]
    public void Greedy_takes_the_first_of_tied_maxima()
    {
        var chooser = new TokenChooser(5);
        Assert.Equal(1, chooser.Choose([0, 4, -1, 4, 3], SamplingRow.Greedy));
        Assert.Equal(1, chooser.Choose([0, 4, -1, 4, 3], Row(1e-39f, uniform: 0.99))); // 1/T overflows: greedy
    }

    [Fact]
    public void Exp_is_within_one_ulp_of_the_exact_value_and_the_vector_lanes_equal_the_scalar_code()
    {
        var random = new Random(3);
        var worst = 0.0;
        for (var i = 0; i < 200_000; i++)
        {
            var x = (float)(-random.NextDouble() * 87);
            var exact = Math.Exp(x);
            worst = Math.Max(worst, Math.Abs(TokenChooser.Exp(x) - exact) / exact);
        }

        Assert.True(worst < 1.2e-7, $"worst relative error {worst:E2}"); // one ulp of a float is at most 2⁻²³ ≈ 1.2e-7 relative
        Assert.Equal(1f, TokenChooser.Exp(0f));
        Assert.Equal(1f, TokenChooser.Exp(-0f));
        Assert.Equal(0f, TokenChooser.Exp(-87.5f));
        Assert.Equal(0f, TokenChooser.Exp(float.NegativeInfinity));
        Assert.Equal(0f, TokenChooser.Exp(float.NaN));

        // 1003 logits: 125 vectors of 8 and a scalar tail of 3; every weight must have the scalar function's bits.
        var logits = Enumerable.Range(0, 1003).Select(_ => (float)(random.NextDouble() * 200 - 150)).ToArray();
        logits[17] = float.NegativeInfinity;
        var weights = new float[logits.Length];
        const float inverse = 1f / 0.7f;
        TokenChooser.Weights(logits, inverse, weights);
        var max = logits.Max();
        for (var i = 0; i < logits.Length; i++)
        {
            Assert.Equal(BitConverter.SingleToInt32Bits(TokenChooser.Exp((logits[i] - max) * inverse)), BitConverter.SingleToInt32Bits(weights[i]));
        }
    }

    [Fact]
    public void Kept_total_sums_fixed_point_weights_exactly_in_any_lane_order()
    {
        var random = new Random(9);
        var weights = Enumerable.Range(0, 1001).Select(_ => (float)Math.Pow(random.NextDouble(), 8)).ToArray();
        const float floor = 0.01f;
        var expected = 0UL;
        for (var i = weights.Length - 1; i >= 0; i--)
        {
            expected += weights[i] >= floor ? (ulong)Math.Floor(weights[i] * 4294967296.0) : 0;
        }

        Assert.Equal(expected, TokenChooser.KeptTotal(weights, floor));
    }

    /// <summary>TokenChooser's definition read literally: whole sorts, then a walk in vocabulary order.</summary>
    private static int Reference(float[] logits, SamplingRow row)
    {
        int ArgMax() => Array.IndexOf(logits, logits.Max());
        if (!(row.Temperature > 0) || float.IsInfinity(1f / row.Temperature))
        {
            return ArgMax();
        }

        var w = new float[logits.Length];
        TokenChooser.Weights(logits, 1f / row.Temperature, w);
        float[] Kept(float floor) => w.Where(v => v >= floor).OrderDescending().ToArray();
        var floor = Math.Max(TokenChooser.MinimumWeight, row.MinP);
        var kept = Kept(floor);
        if (row.TopK > 0 && row.TopK < kept.Length)
        {
            floor = kept[row.TopK - 1];
        }

        kept = Kept(floor);
        var keptTotal = kept.Aggregate(0UL, (s, v) => s + TokenChooser.Fixed(v));
        if (row.TopP < 1 && keptTotal > 0)
        {
            var sum = 0UL;
            foreach (var v in kept)
            {
                sum += TokenChooser.Fixed(v);
                if (sum >= (double)row.TopP * keptTotal)
                {
                    floor = v;
                    break;
                }
            }
        }

        var tokens = Enumerable.Range(0, w.Length).Where(i => w[i] >= floor).ToArray();
        var total = tokens.Aggregate(0UL, (s, i) => s + TokenChooser.Fixed(w[i]));
        if (total == 0)
        {
            return ArgMax();
        }

        var r = Math.Min((ulong)(row.Uniform * total), total - 1);
        var running = 0UL;
        return tokens.First(i => (running += TokenChooser.Fixed(w[i])) > r);
    }
}
