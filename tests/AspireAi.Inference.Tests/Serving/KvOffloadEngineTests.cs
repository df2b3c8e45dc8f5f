using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>
/// The KV offload tier in the real engine (CPU backend, a tiny random model): prefix blocks evicted from a deliberately small
/// device cache come back from the host instead of being computed again, and nothing a request produces changes — the same
/// tokens as without the tier, and the same logprobs bit for bit as when the prefix never left the device.
/// </summary>
public sealed class KvOffloadEngineTests : IDisposable
{
    private readonly TinyEngine _tiny = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _tiny.Dispose();

    private sealed record Outcome(int[] Tokens, float[] Logprobs, TokenLogprob[][] Top, SequenceUsage Usage);

    private static async Task<Outcome> Run(LlmEngine engine, EngineRequest request)
    {
        var events = new List<SequenceEvent>();
        SequenceUsage? usage = null;
        await foreach (var e in engine.Submit(request, Ct).ReadAllAsync(Ct))
        {
            if (e.TokenId >= 0)
            {
                events.Add(e);
            }

            usage = e.Usage ?? usage;
        }

        return new Outcome([.. events.Select(e => e.TokenId)], [.. events.Select(e => e.Logprob)], [.. events.Select(e => e.TopLogprobs ?? [])], usage!);
    }

    private static async Task<(Outcome Outcome, EngineSnapshot After)> RunToIdle(LlmEngine engine, EngineRequest request)
    {
        var idle = engine.NextIdleAsync();
        var outcome = await Run(engine, request);
        return (outcome, await idle.WaitAsync(Ct));
    }

    private static int[] Prompt(int length, int seed) => [.. Enumerable.Range(0, length).Select(i => 3 + (i * 7 + seed) % 60)];

    [Fact]
    public async Task Evicted_prefix_comes_back_from_the_host_with_identical_results()
    {
        var prefix = Prompt(64, 0); // four full blocks
        var first = new EngineRequest { PromptTokenIds = [.. prefix, 7, 8], MaxTokens = 4 };
        // 120 tokens of other traffic: the whole 8-block cache, so every cached block of the prefix is evicted.
        var traffic = new EngineRequest { PromptTokenIds = Prompt(100, 5), MaxTokens = 20 };
        var again = new EngineRequest { PromptTokenIds = [.. prefix, 9, 10, 11], MaxTokens = 12, Logprobs = true, TopLogprobs = 5 };

        // Then the traffic once more: its leading blocks are still on the device, the rest went to the host while the prefix
        // came back into the very blocks they left (both copies in one step: the host copy must be taken first).
        var trafficAgain = traffic with { Logprobs = true, TopLogprobs = 5 };

        async Task<(Outcome Again, EngineSnapshot Before, EngineSnapshot After, Outcome Traffic, EngineSnapshot Last)> Scenario(EngineOptions options)
        {
            var engine = _tiny.CreateEngine(options);
            await RunToIdle(engine, first);
            var (_, before) = await RunToIdle(engine, traffic);
            var (outcome, after) = await RunToIdle(engine, again);
            var (trafficOutcome, last) = await RunToIdle(engine, trafficAgain);
            return (outcome, before, after, trafficOutcome, last);
        }

        var small = new EngineOptions { KvCacheBlocks = 8, MaxBatchedTokens = 64, MaxNumSeqs = 4 };
        var tiered = await Scenario(small with { KvOffloadBlocks = 32 });
        var untiered = await Scenario(small);
        var roomy = await Scenario(small with { KvCacheBlocks = 64 }); // the prefix never leaves the device

        // With the tier: the prefix's four blocks were stored on eviction and all came back from the host.
        Assert.True(tiered.Before.OffloadStoredBlocks >= 4, $"stored {tiered.Before.OffloadStoredBlocks}");
        Assert.Equal(64, tiered.After.OffloadHitTokens - tiered.Before.OffloadHitTokens);
        Assert.Equal(4, tiered.After.OffloadLoadedBlocks - tiered.Before.OffloadLoadedBlocks);
        Assert.Equal(again.PromptTokenIds.Length, tiered.After.OffloadQueryTokens - tiered.Before.OffloadQueryTokens);
        Assert.Equal(0, tiered.After.PrefixHitTokens - tiered.Before.PrefixHitTokens);
        Assert.Equal(64, tiered.Again.Usage.CachedPromptTokens);
        // Without it the prefix is computed again; with a roomy cache it is a device hit.
        Assert.Equal(0, untiered.Again.Usage.CachedPromptTokens);
        Assert.Equal(0, untiered.After.OffloadHitTokens);
        Assert.Equal(64, roomy.Again.Usage.CachedPromptTokens);
        Assert.Equal(0, roomy.After.OffloadStoredBlocks);

        Assert.Equal(untiered.Again.Tokens, tiered.Again.Tokens);
        Assert.Equal(roomy.Again.Tokens, tiered.Again.Tokens);
        // The host copy holds the bytes the device had: logprobs equal bit for bit to the run whose prefix stayed on the device.
        Assert.Equal(roomy.Again.Logprobs.Select(BitConverter.SingleToInt32Bits), tiered.Again.Logprobs.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(roomy.Again.Top.SelectMany(t => t), tiered.Again.Top.SelectMany(t => t));

        Assert.True(tiered.Last.OffloadHitTokens > tiered.After.OffloadHitTokens, "the traffic's evicted blocks should come from the host");
        Assert.Equal(untiered.Traffic.Tokens, tiered.Traffic.Tokens);
        Assert.Equal(roomy.Traffic.Logprobs.Select(BitConverter.SingleToInt32Bits), tiered.Traffic.Logprobs.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(roomy.Traffic.Top.SelectMany(t => t), tiered.Traffic.Top.SelectMany(t => t));

        foreach (var scenario in new[] { tiered, untiered, roomy })
        {
            Assert.Equal(scenario.Last.TotalBlocks, scenario.Last.FreeBlocks);
        }

        Assert.InRange(tiered.Last.OffloadUsedBlocks, 4, 32);
    }

    [Fact]
    public async Task Crowd_with_preemption_and_swap_ins_matches_solo_runs_and_the_host_tier_stays_bounded()
    {
        int[][] prefixes = [Prompt(32, 1), Prompt(32, 2), Prompt(32, 3)]; // two full blocks each
        var random = new Random(7);
        var crowd = Enumerable.Range(0, 10).Select(i => new EngineRequest
        {
            PromptTokenIds = [.. prefixes[i % 3], .. Enumerable.Range(0, 4 + random.Next(9)).Select(_ => 3 + random.Next(60))],
            MaxTokens = 16 + random.Next(15),
            Sampling = i % 2 == 0 ? SamplingParams.Greedy : new SamplingParams { Temperature = 0.9f, TopP = 0.95f, Seed = 500 + i },
        }).ToArray();

        // Alone: each request on a cache that holds it entirely, no tier.
        var solo = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 64, MaxBatchedTokens = 32, MaxNumSeqs = 4 });
        var expected = new List<int[]>();
        foreach (var request in crowd)
        {
            expected.Add((await Run(solo, request)).Tokens);
        }

        // An 8-block device cache (128 tokens) and an 8-block host tier: up to 4 running sequences of up to 74 tokens each
        // do not fit, so the crowd preempts; more blocks leave the device than the host holds, so the host evicts.
        const int hostBlocks = 8;
        var engine = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 8, MaxBatchedTokens = 32, MaxNumSeqs = 4, KvOffloadBlocks = hostBlocks });
        var mostUsed = 0;
        engine.StepCompleted += s => mostUsed = Math.Max(mostUsed, s.OffloadUsedBlocks); // on the engine thread

        // Each prefix computed once, then evicted by 120 tokens of other traffic: all three are on the host only.
        foreach (var prefix in prefixes)
        {
            await RunToIdle(engine, new EngineRequest { PromptTokenIds = [.. prefix, 60, 61], MaxTokens = 6 });
        }

        var (_, before) = await RunToIdle(engine, new EngineRequest { PromptTokenIds = Prompt(100, 9), MaxTokens = 20 });

        // The crowd arrives while the engine thread is held inside a step event, so every request is queued before the next
        // step schedules (the same schedule on every run). The first request starts the engine and is held there.
        var idle = engine.NextIdleAsync();
        using var held = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        void Hold(EngineSnapshot s)
        {
            if (s.Running == 0)
            {
                return; // an idle event from before the first request's step
            }

            engine.StepCompleted -= Hold;
            held.Set();
            release.Wait(Ct);
        }

        engine.StepCompleted += Hold;
        var handles = new List<EngineRequestHandle> { engine.Submit(crowd[0], Ct) };
        held.Wait(Ct);
        handles.AddRange(crowd.Skip(1).Select(r => engine.Submit(r, Ct)));
        release.Set();
        var results = await Task.WhenAll(handles.Select(h => TinyEngine.Collect(h, Ct)));
        var after = await idle.WaitAsync(Ct);

        for (var i = 0; i < crowd.Length; i++)
        {
            Assert.True(expected[i].SequenceEqual(results[i].Tokens),
                $"request {i}: alone [{string.Join(",", expected[i])}] in the crowd [{string.Join(",", results[i].Tokens)}]");
        }

        Assert.True(after.Preemptions > before.Preemptions, "the crowd should not fit without preemption");
        Assert.True(after.OffloadHitTokens - before.OffloadHitTokens >= 32, $"host hits {after.OffloadHitTokens - before.OffloadHitTokens}");
        Assert.True(after.OffloadEvictedBlocks > 0, "more blocks should leave the device than the host holds");
        Assert.InRange(mostUsed, 1, hostBlocks);
        Assert.Equal(hostBlocks, after.OffloadTotalBlocks);
        Assert.Equal(after.TotalBlocks, after.FreeBlocks);
        Assert.Equal(0, after.Running);
    }
}
