using AspireAi.Inference.Engine;
using AspireAi.Inference.Tests.Serving;

namespace AspireAi.Inference.Tests.TensorParallel;

/// <summary>
/// The serving engine over two CPU ranks with the KV offload tier: each rank's KV heads of an evicted prefix go to its own
/// host store and come back, and the requests produce what one rank produces.
/// </summary>
public sealed class TensorParallelEngineTests : IDisposable
{
    private readonly TinyEngine _tiny = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _tiny.Dispose();

    private static int[] Prompt(int length, int seed) => [.. Enumerable.Range(0, length).Select(i => 3 + (i * 7 + seed) % 60)];

    [Fact]
    public async Task An_evicted_prefix_comes_back_from_every_ranks_host_store_with_the_tokens_of_one_rank()
    {
        var prefix = Prompt(64, 0); // four full blocks
        EngineRequest[] requests =
        [
            new() { PromptTokenIds = [.. prefix, 7, 8], MaxTokens = 4 },
            // 120 tokens of other traffic: the whole 8-block cache, so the prefix's blocks are evicted to the host.
            new() { PromptTokenIds = Prompt(100, 5), MaxTokens = 20 },
            new() { PromptTokenIds = [.. prefix, 9, 10, 11], MaxTokens = 12, Logprobs = true },
        ];

        async Task<(int[][] Tokens, float[] LastLogprobs, EngineSnapshot Before, EngineSnapshot After)> Scenario(int tensorParallel)
        {
            var engine = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 8, MaxBatchedTokens = 64, MaxNumSeqs = 4, KvOffloadBlocks = 32 }, tensorParallel: tensorParallel);
            var tokens = new List<int[]>();
            var logprobs = new List<float>();
            var before = engine.Snapshot;
            foreach (var request in requests)
            {
                before = engine.Snapshot;
                var idle = engine.NextIdleAsync();
                var events = new List<SequenceEvent>();
                await foreach (var e in engine.Submit(request, Ct).ReadAllAsync(Ct))
                {
                    if (e.TokenId >= 0)
                    {
                        events.Add(e);
                    }
                }

                tokens.Add([.. events.Select(e => e.TokenId)]);
                logprobs = [.. events.Select(e => e.Logprob)];
                await idle.WaitAsync(Ct);
            }

            return ([.. tokens], [.. logprobs], before, engine.Snapshot);
        }

        var one = await Scenario(1);
        var two = await Scenario(2);
        Assert.Equal(64, two.After.OffloadHitTokens - two.Before.OffloadHitTokens);
        Assert.Equal(4, two.After.OffloadLoadedBlocks - two.Before.OffloadLoadedBlocks);
        Assert.Equal(one.Tokens, two.Tokens);
        Assert.Equal(one.LastLogprobs.Length, two.LastLogprobs.Length);
        for (var i = 0; i < one.LastLogprobs.Length; i++)
        {
            // Float32 summation order only (see TensorParallelForwardTests).
            Assert.Equal(one.LastLogprobs[i], two.LastLogprobs[i], 1e-4);
        }
    }
}
