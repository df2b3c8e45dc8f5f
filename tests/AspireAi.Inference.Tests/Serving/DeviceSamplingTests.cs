using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>
/// Steps in which no sequence needs its logits on the host take their ids from the backend's <c>IDeviceSampler</c> (the GPU
/// copies back ids, not logits; the CPU backend implements it too, so this path runs here); a sequence that wants logprobs
/// sends its steps through the host sampler. Both must choose the same tokens: the same penalties and chooser, and the same
/// uniform from the sequence's own seeded stream, drawn once per sampled token on either path. The engine's counters
/// (TokensChosenOnDevice / OnHost, read from the snapshot of the step that left the engine idle) show which path ran.
/// </summary>
public sealed class DeviceSamplingTests : IDisposable
{
    private readonly TinyEngine _tiny = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _tiny.Dispose();

    public static TheoryData<string> Mixes => ["greedy", "temperature", "top-k", "top-p", "min-p", "combined", "penalties", "greedy-penalties"];

    private static SamplingParams Params(string mix, int seed) => mix switch
    {
        "greedy" => SamplingParams.Greedy,
        "temperature" => new SamplingParams { Temperature = 1.3f, Seed = seed },
        "top-k" => new SamplingParams { Temperature = 1f, TopK = 5, Seed = seed },
        "top-p" => new SamplingParams { Temperature = 1.2f, TopP = 0.8f, Seed = seed },
        "min-p" => new SamplingParams { Temperature = 1.5f, MinP = 0.2f, Seed = seed },
        "combined" => new SamplingParams { Temperature = 0.9f, TopK = 20, TopP = 0.9f, MinP = 0.05f, Seed = seed },
        "penalties" => new SamplingParams { Temperature = 1f, TopP = 0.95f, RepetitionPenalty = 1.3f, PresencePenalty = 0.5f, FrequencyPenalty = 0.4f, Seed = seed },
        _ => SamplingParams.Greedy with { RepetitionPenalty = 1.5f, FrequencyPenalty = 1f },
    };

    private static EngineRequest Request(int i, SamplingParams sampling, int maxTokens = 40, bool logprobs = false) => new()
    {
        PromptTokenIds = [1, 3 + i, 9, 4 + i, 17, 5],
        MaxTokens = maxTokens,
        Logprobs = logprobs, // logprobs need the logits on the host: the step goes through the host sampler
        Sampling = sampling,
    };

    /// <summary>Runs one request alone; returns its tokens and how many tokens the device and the host chose meanwhile.</summary>
    private static async Task<(int[] Tokens, long Device, long Host)> Alone(LlmEngine engine, EngineRequest request)
    {
        var before = engine.Snapshot; // the engine is idle between these runs: no step can change it meanwhile
        var idle = engine.NextIdleAsync();
        var (tokens, _) = await TinyEngine.Collect(engine.Submit(request, Ct), Ct);
        var after = await idle;
        return (tokens, after.TokensChosenOnDevice - before.TokensChosenOnDevice, after.TokensChosenOnHost - before.TokensChosenOnHost);
    }

    [Theory]
    [MemberData(nameof(Mixes))]
    public async Task Seeded_requests_choose_the_same_tokens_on_the_device_path_as_on_the_host_path(string mix)
    {
        var engine = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 64, MaxBatchedTokens = 64, MaxNumSeqs = 8 });
        var greedy = await Alone(engine, Request(0, SamplingParams.Greedy));
        foreach (var seed in new[] { 11, 12 })
        {
            var onDevice = await Alone(engine, Request(0, Params(mix, seed)));
            var onHost = await Alone(engine, Request(0, Params(mix, seed), logprobs: true));

            Assert.Equal((40L, 0L), (onDevice.Device, onDevice.Host));
            Assert.Equal((0L, 40L), (onHost.Device, onHost.Host));
            Assert.Equal(40, onDevice.Tokens.Length);
            Assert.True(onHost.Tokens.SequenceEqual(onDevice.Tokens),
                $"{mix}, seed {seed}: device [{string.Join(",", onDevice.Tokens)}] host [{string.Join(",", onHost.Tokens)}]");
            if (Params(mix, seed).Temperature > 0)
            {
                Assert.False(greedy.Tokens.SequenceEqual(onDevice.Tokens), $"{mix}: the sampled request should not follow the greedy path");
            }
        }
    }

    [Fact]
    public async Task A_mixed_batch_of_greedy_sampled_and_logprob_requests_gives_each_the_tokens_it_gets_alone()
    {
        var engine = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 64, MaxBatchedTokens = 64, MaxNumSeqs = 8 });
        EngineRequest[] requests =
        [
            Request(0, SamplingParams.Greedy),
            Request(1, Params("top-p", 5)),
            Request(2, Params("penalties", 6)),
            Request(3, Params("combined", 7), maxTokens: 12, logprobs: true), // its steps run on the host while it lasts
            Request(4, Params("greedy-penalties", 0)),
        ];

        var alone = new List<int[]>();
        foreach (var request in requests)
        {
            alone.Add((await Alone(engine, request)).Tokens);
        }

        var before = engine.Snapshot;
        var idle = engine.NextIdleAsync();
        var handles = requests.Select(r => engine.Submit(r, Ct)).ToArray();
        var together = await Task.WhenAll(handles.Select(h => TinyEngine.Collect(h, Ct)));
        var after = await idle;

        for (var i = 0; i < requests.Length; i++)
        {
            Assert.True(alone[i].SequenceEqual(together[i].Tokens), $"request {i}: alone [{string.Join(",", alone[i])}] together [{string.Join(",", together[i].Tokens)}]");
            Assert.Equal(requests[i].MaxTokens, together[i].Tokens.Length);
        }

        // Every token was chosen once; the logprob request's 12 on the host, and the others' last ones (after it ended) on the device.
        var device = after.TokensChosenOnDevice - before.TokensChosenOnDevice;
        var host = after.TokensChosenOnHost - before.TokensChosenOnHost;
        Assert.Equal(requests.Sum(r => r.MaxTokens), device + host);
        Assert.True(host >= 12 && device >= 40 - 12, $"device {device}, host {host}");
    }
}
