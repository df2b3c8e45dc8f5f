using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.Backends.Sampling;
using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Tests.Backends;

/// <summary>
/// The CPU backend's <see cref="IDeviceSampler"/> (the reference sampling.cu is checked against) must choose what the host
/// <see cref="Sampler"/> chooses: for each row, two samplers with the same seed and history, one sampling on the host from
/// the row's logits, the other handing its <see cref="Sampler.DeviceRow"/> (uniform and penalty list) to the backend,
/// every row with its own parameters in one call.
/// </summary>
public sealed class CpuDeviceSamplerTests
{
    [Theory]
    [InlineData(97)]
    [InlineData(1000)]
    [InlineData(4099)]
    public void Every_row_equals_the_host_sampler_with_its_own_parameters_penalties_and_draw(int vocabulary)
    {
        var random = new Random(vocabulary);
        var parameters = TokenChooserTests.Mixes.Select(Params)
            .Concat([
                new SamplingParams { Temperature = 0, RepetitionPenalty = 1.3f }, // greedy with penalties
                new SamplingParams { Temperature = 0.9f, TopP = 0.9f, PresencePenalty = 0.5f, FrequencyPenalty = 0.7f },
                new SamplingParams { Temperature = 1.1f, TopK = 30, RepetitionPenalty = 0.8f, FrequencyPenalty = -1.5f },
                new SamplingParams { Temperature = 0.6f, MinP = 0.1f, RepetitionPenalty = 1.5f, PresencePenalty = 2f },
            ]).ToArray();
        using var backend = new CpuBackend(1);
        using var logits = backend.CreateTensor(parameters.Length, vocabulary);
        var values = new float[parameters.Length * vocabulary];
        var host = new int[parameters.Length];
        var rows = new SamplingRow[parameters.Length];
        var penalties = new List<TokenPenalty>();
        var penalised = 0;
        for (var round = 0; round < 6; round++)
        {
            penalties.Clear();
            for (var r = 0; r < parameters.Length; r++)
            {
                var row = TokenChooserTests.Logits(random, vocabulary, (r + round) % 3);
                row[random.Next(vocabulary)] = 7;
                row.CopyTo(values, r * vocabulary);
                var p = parameters[r] with { Seed = 100 * round + r };
                var (hostSampler, deviceSampler) = (new Sampler(vocabulary, p), new Sampler(vocabulary, p));
                var prompt = Enumerable.Range(0, 20).Select(_ => random.Next(vocabulary)).ToArray();
                var output = Enumerable.Range(0, 30).Select(_ => random.Next(vocabulary)).ToArray();
                foreach (var sampler in new[] { hostSampler, deviceSampler })
                {
                    sampler.SetPrompt(prompt);
                    foreach (var id in output)
                    {
                        sampler.Accept(id);
                    }
                }

                host[r] = hostSampler.Sample(row);
                rows[r] = deviceSampler.DeviceRow(penalties);
                penalised += rows[r].PenaltyCount > 0 ? 1 : 0;
            }

            backend.WriteRows(logits, values);
            var device = Enumerable.Repeat(-1, parameters.Length).ToArray();
            backend.Sample(logits, rows, penalties.ToArray(), device);
            Assert.Equal(host, device);
        }

        Assert.Equal(6 * 4, penalised); // the four penalised mixes sent their prompt+output tokens every round
    }

    [Fact]
    public void Rows_with_penalties_leave_the_logits_tensor_unchanged()
    {
        using var backend = new CpuBackend(1);
        using var logits = backend.CreateTensor(1, 4);
        float[] values = [1f, 3f, 2f, -1f];
        backend.WriteRows(logits, values);
        var ids = new int[1];
        // Token 1 penalised from 3 to 3 / 4 = 0.75: the argmax moves to token 2.
        backend.Sample(logits, [SamplingRow.Greedy with { RepetitionPenalty = 4, PenaltyCount = 1 }], [new TokenPenalty(1, 0)], ids);
        Assert.Equal(2, ids[0]);
        var after = new float[4];
        backend.ReadRows(logits, 1, after);
        Assert.Equal(values, after);
    }

    [Fact]
    public void Penalty_ranges_outside_the_list_and_tokens_outside_the_vocabulary_are_refused_by_name()
    {
        using var backend = new CpuBackend(1);
        using var logits = backend.CreateTensor(2, 4);
        var ids = new int[2];
        var e = Assert.Throws<ArgumentException>(() =>
            backend.Sample(logits, [SamplingRow.Greedy, SamplingRow.Greedy with { PenaltyStart = 1, PenaltyCount = 1 }], [new TokenPenalty(0, 1)], ids));
        Assert.Contains("Sampling row 1", e.Message);
        var token = Assert.Throws<ArgumentOutOfRangeException>(() =>
            backend.Sample(logits, [SamplingRow.Greedy with { PenaltyCount = 1 }], [new TokenPenalty(4, 1)], ids));
        Assert.Contains("token 4", token.Message);
    }

    private static SamplingParams Params(SamplingRow row) => new()
    {
        Temperature = row.Temperature, TopK = row.TopK, TopP = row.TopP, MinP = row.MinP,
    };
}
