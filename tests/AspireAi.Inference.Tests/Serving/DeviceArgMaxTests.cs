using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>
/// Steps whose every sequence is plain greedy take their ids from the backend's in-place argmax (IDeviceArgMax: the GPU
/// copies back ids, not logits; the CPU backend implements it too, so this path runs here); any other request in the step
/// sends it through the host sampler. Both must choose the same tokens.
/// </summary>
public sealed class DeviceArgMaxTests : IDisposable
{
    private readonly TinyEngine _tiny = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task Greedy_tokens_are_the_same_from_the_backends_argmax_and_from_the_host_sampler()
    {
        var engine = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 64, MaxBatchedTokens = 64, MaxNumSeqs = 8 });
        EngineRequest Greedy(int i, bool logprobs) => new()
        {
            PromptTokenIds = [1, 3 + i, 9, 4 + i],
            MaxTokens = 40,
            Logprobs = logprobs, // logprobs need the logits on the host: the step goes through the sampler
            Sampling = new SamplingParams { Temperature = 0 },
        };

        // Alone, each on its own: the argmax path (no logprobs) and the host path (logprobs).
        var byArgMax = new List<int[]>();
        var byHost = new List<int[]>();
        for (var i = 0; i < 3; i++)
        {
            byArgMax.Add((await TinyEngine.Collect(engine.Submit(Greedy(i, logprobs: false), Ct), Ct)).Tokens);
            byHost.Add((await TinyEngine.Collect(engine.Submit(Greedy(i, logprobs: true), Ct), Ct)).Tokens);
        }

        Assert.Equal(byHost, byArgMax);
        Assert.All(byArgMax, tokens => Assert.Equal(40, tokens.Length));
        Assert.NotEqual(byArgMax[0], byArgMax[1]); // different prompts, different continuations: the test can tell them apart

        // Together in one batch with a sampled request (which moves every step to the host): still the same tokens.
        var mixed = new[] { engine.Submit(Greedy(0, false), Ct), engine.Submit(Greedy(1, false), Ct),
            engine.Submit(new EngineRequest { PromptTokenIds = [1, 7], MaxTokens = 20, Sampling = new SamplingParams { Temperature = 0.9f, Seed = 5 } }, Ct) };
        var results = await Task.WhenAll(mixed.Select(h => TinyEngine.Collect(h, Ct)));
        Assert.Equal(byArgMax[0], results[0].Tokens);
        Assert.Equal(byArgMax[1], results[1].Tokens);
    }
}
