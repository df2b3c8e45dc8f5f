using AspireAi.Inference.Backends.Sampling;
using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Tests.Engine;

public sealed class SamplerTests
{
    // Probabilities 0.5, 0.3, 0.15, 0.05 as logits.
    private static readonly float[] Four = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.15f), MathF.Log(0.05f)];

    private static HashSet<int> Draw(float[] logits, SamplingParams p, int draws = 4000)
    {
        var sampler = new Sampler(logits.Length, p);
        var seen = new HashSet<int>();
        for (var i = 0; i < draws; i++)
        {
            seen.Add(sampler.Sample(logits));
        }

        return seen;
    }

    [Fact]
    public void Greedy_takes_the_argmax()
    {
        var sampler = new Sampler(4, SamplingParams.Greedy);
        Assert.Equal(2, sampler.Sample([0.1f, -3f, 0.7f, 0.69f]));
    }

    [Fact]
    public void Same_seed_gives_the_same_tokens_and_another_seed_does_not()
    {
        var logits = Enumerable.Range(0, 100).Select(i => MathF.Sin(i)).ToArray();
        int[] Run(int seed)
        {
            var sampler = new Sampler(logits.Length, new SamplingParams { Temperature = 1.2f, TopP = 0.95f, Seed = seed });
            return Enumerable.Range(0, 64).Select(_ => sampler.Sample(logits)).ToArray();
        }

        Assert.Equal(Run(7), Run(7));
        Assert.NotEqual(Run(7), Run(8));
    }

    [Fact]
    public void Temperature_one_draws_in_proportion_to_the_softmax()
    {
        var sampler = new Sampler(4, new SamplingParams { Seed = 1 });
        var counts = new int[4];
        const int draws = 40_000;
        for (var i = 0; i < draws; i++)
        {
            counts[sampler.Sample(Four)]++;
        }

        double[] expected = [0.5, 0.3, 0.15, 0.05];
        for (var i = 0; i < 4; i++)
        {
            // 5 standard deviations of a binomial proportion.
            Assert.InRange(counts[i] / (double)draws, expected[i] - 5 * Math.Sqrt(expected[i] * (1 - expected[i]) / draws), expected[i] + 5 * Math.Sqrt(expected[i] * (1 - expected[i]) / draws));
        }
    }

    [Fact]
    public void Top_k_top_p_and_min_p_keep_exactly_the_allowed_tokens()
    {
        Assert.Equal([0], Draw(Four, new SamplingParams { TopK = 1, Seed = 1 }));
        Assert.Equal([0, 1, 2], Draw(Four, new SamplingParams { TopK = 3, Seed = 1 }).Order());
        Assert.Equal([0, 1], Draw(Four, new SamplingParams { TopP = 0.7f, Seed = 1 }).Order());
        Assert.Equal([0, 1, 2], Draw(Four, new SamplingParams { TopP = 0.85f, Seed = 1 }).Order());
        // min-p 0.5: keep tokens at least half as likely as the best (0.25): 0.5 and 0.3.
        Assert.Equal([0, 1], Draw(Four, new SamplingParams { MinP = 0.5f, Seed = 1 }).Order());
        Assert.Equal([0, 1, 2, 3], Draw(Four, new SamplingParams { Seed = 1 }).Order());
    }

    [Fact]
    public void Top_p_over_a_wide_nucleus_matches_a_full_sort()
    {
        // 3,000 tokens of similar likelihood: the nucleus holds hundreds, beyond the first 64 the sampler sorts.
        var random = new Random(5);
        var logits = Enumerable.Range(0, 3000).Select(_ => (float)random.NextDouble()).ToArray();
        var probs = logits.Select(l => Math.Exp(l)).ToArray();
        var order = Enumerable.Range(0, logits.Length).OrderByDescending(i => probs[i]).ToArray();
        var total = probs.Sum();
        var nucleus = new HashSet<int>();
        var sum = 0.0;
        foreach (var i in order)
        {
            nucleus.Add(i);
            sum += probs[i];
            if (sum >= 0.5 * total)
            {
                break;
            }
        }

        Assert.True(nucleus.Count > 256);
        var drawn = Draw(logits, new SamplingParams { TopP = 0.5f, Seed = 3 }, draws: 6_000);
        Assert.Subset(nucleus, drawn);
        Assert.True(drawn.Count > nucleus.Count * 0.8);
    }

    [Fact]
    public void Repetition_penalty_covers_the_prompt_and_divides_positive_logits()
    {
        var sampler = new Sampler(3, SamplingParams.Greedy with { RepetitionPenalty = 2f });
        sampler.SetPrompt([0]);
        Assert.Equal(1, sampler.Sample([2f, 1.5f, -1f])); // 2 / 2 = 1 < 1.5
        var negative = new Sampler(2, SamplingParams.Greedy with { RepetitionPenalty = 2f });
        negative.SetPrompt([0]);
        Assert.Equal(1, negative.Sample([-1f, -1.5f])); // -1 · 2 = -2 < -1.5
    }

    [Fact]
    public void Presence_and_frequency_penalties_count_generated_tokens_only()
    {
        var sampler = new Sampler(2, SamplingParams.Greedy with { FrequencyPenalty = 0.3f, PresencePenalty = 0.1f });
        sampler.SetPrompt([1]);
        float[] logits = [1f, 0.5f];
        Assert.Equal(0, sampler.Sample(logits)); // nothing generated yet: the prompt's token 1 is not penalised
        sampler.Accept(0);
        Assert.Equal(0, sampler.Sample(logits)); // 1 − 0.3 − 0.1 = 0.6 > 0.5
        sampler.Accept(0);
        Assert.Equal(1, sampler.Sample(logits)); // 1 − 0.6 − 0.1 = 0.3 < 0.5
        Assert.Equal([1f, 0.5f], logits); // the caller's logits are untouched (logprobs read them)
    }

    [Fact]
    public void A_sampler_keeps_no_vocabulary_sized_state_until_it_samples_on_the_host()
    {
        // Qwen3's vocabulary: dense per-sequence state was 2.6 MB here, 660 MB for 256 concurrent requests.
        const int vocabulary = 151_936;
        var penalties = new List<TokenPenalty>();
        var before = GC.GetAllocatedBytesForCurrentThread();
        var plain = new Sampler(vocabulary, new SamplingParams { Temperature = 0.7f, Seed = 1 });
        plain.SetPrompt([1, 2, 3]);
        plain.Accept(5);
        plain.DeviceRow(penalties);
        var penalized = new Sampler(vocabulary, SamplingParams.Greedy with { FrequencyPenalty = 0.5f });
        penalized.SetPrompt([1, 2, 3]);
        penalized.Accept(5);
        penalized.Accept(5);
        penalized.DeviceRow(penalties);
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 16 * 1024);
        Assert.Equal([new TokenPenalty(1, 0), new TokenPenalty(2, 0), new TokenPenalty(3, 0), new TokenPenalty(5, 2)], penalties);

        var logits = new float[vocabulary];
        logits[7] = 5f;
        Assert.Equal(7, penalized.Sample(logits)); // the host path makes its scratch when it first samples
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before > 3L * 4 * vocabulary);
    }

    [Theory]
    [InlineData("temperature")]
    [InlineData("top_p")]
    [InlineData("min_p")]
    [InlineData("top_k")]
    public void Out_of_range_parameters_are_refused_by_name(string field)
    {
        var p = field switch
        {
            "temperature" => new SamplingParams { Temperature = -1 },
            "top_p" => new SamplingParams { TopP = 0 },
            "min_p" => new SamplingParams { MinP = 2 },
            _ => new SamplingParams { TopK = -5 },
        };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(4, p));
        Assert.Equal(field, e.ParamName);
    }

    [Fact]
    public void Top_logprobs_are_sorted_and_normalised()
    {
        var top = Logprobs.Top(Four, 3);
        Assert.Equal([0, 1, 2], top.Select(t => t.Id));
        Assert.Equal(Math.Log(0.5), top[0].Logprob, 5);
        Assert.Equal(Math.Log(0.15), top[2].Logprob, 5);
    }
}
