using AspireAi.Inference.Engine;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>
/// Continuous batching, preemption and prefix caching must never change what a request produces: every request of a crowd
/// that does not fit in the KV cache at once completes with exactly the tokens it produces alone with the same seed.
/// </summary>
public sealed class EngineBatchingTests : IDisposable
{
    private readonly TinyEngine _tiny = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _tiny.Dispose();

    private static EngineRequest Request(int i, Random random)
    {
        var prompt = Enumerable.Range(0, 8 + random.Next(40)).Select(_ => 3 + random.Next(60)).ToArray();
        return new EngineRequest
        {
            PromptTokenIds = prompt,
            MaxTokens = 20 + random.Next(40),
            // Half greedy, half sampled with their own seed.
            Sampling = i % 2 == 0 ? SamplingParams.Greedy : new SamplingParams { Temperature = 0.9f, TopP = 0.95f, Seed = 1000 + i },
        };
    }

    [Fact]
    public async Task Crowd_larger_than_the_cache_matches_solo_runs_and_returns_every_block()
    {
        var random = new Random(5);
        var requests = Enumerable.Range(0, 24).Select(i => Request(i, random)).ToArray();

        // Alone: one request at a time, a cache that holds it entirely, no other traffic.
        var solo = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 64, MaxBatchedTokens = 64, MaxNumSeqs = 4 });
        var expected = new List<int[]>();
        foreach (var request in requests)
        {
            expected.Add((await TinyEngine.Collect(solo.Submit(request, Ct), Ct)).Tokens);
        }

        // Together: 24 requests × up to ~100 tokens against 20 blocks × 16 = 320 tokens of cache, small prefill chunks.
        var crowd = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 20, MaxBatchedTokens = 32, MaxNumSeqs = 8 });
        var handles = requests.Select(r => crowd.Submit(r, Ct)).ToArray();
        var results = await Task.WhenAll(handles.Select(h => TinyEngine.Collect(h, Ct)));

        for (var i = 0; i < requests.Length; i++)
        {
            Assert.True(expected[i].SequenceEqual(results[i].Tokens),
                $"request {i}: alone [{string.Join(",", expected[i])}] together [{string.Join(",", results[i].Tokens)}]");
            Assert.Equal(requests[i].MaxTokens, results[i].Tokens.Length);
            Assert.Equal("length", results[i].Final.FinishReason);
        }

        var snapshot = await Idle(crowd);
        Assert.True(snapshot.Preemptions > 0, "the crowd should not fit without preemption");
        Assert.Equal(snapshot.TotalBlocks, snapshot.FreeBlocks);
        Assert.Equal(0, snapshot.Running);
        // The engine thread's step time contains the forward passes' and is nothing but them plus the host's work.
        Assert.True(snapshot.ForwardSeconds > 0, "forward time is recorded");
        Assert.InRange(snapshot.StepSeconds - snapshot.ForwardSeconds, 0, snapshot.StepSeconds);
    }

    [Fact]
    public async Task Shared_prefix_is_computed_once()
    {
        var engine = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 32, MaxBatchedTokens = 64, MaxNumSeqs = 4 });
        var prefix = Enumerable.Range(0, 48).Select(i => 3 + i % 60).ToArray(); // three full blocks
        var first = new EngineRequest { PromptTokenIds = [.. prefix, 7, 8], MaxTokens = 4 };
        var second = new EngineRequest { PromptTokenIds = [.. prefix, 9, 10, 11], MaxTokens = 4 };

        var a = await TinyEngine.Collect(engine.Submit(first, Ct), Ct);
        Assert.Equal(0, a.Final.Usage!.CachedPromptTokens);
        var before = engine.Snapshot;
        var b = await TinyEngine.Collect(engine.Submit(second, Ct), Ct);
        var after = await Idle(engine);

        Assert.Equal(48, b.Final.Usage!.CachedPromptTokens);
        Assert.Equal(48, after.PrefixHitTokens - before.PrefixHitTokens);
        Assert.Equal(second.PromptTokenIds.Length, after.PrefixQueryTokens - before.PrefixQueryTokens);

        // The cached prefix gives the same tokens as computing it afresh.
        var fresh = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 32, MaxBatchedTokens = 64, MaxNumSeqs = 4 });
        Assert.Equal((await TinyEngine.Collect(fresh.Submit(second, Ct), Ct)).Tokens, b.Tokens);
    }

    [Fact]
    public async Task Fully_cached_prompt_copies_the_last_block_before_writing()
    {
        var engine = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 16, MaxBatchedTokens = 64, MaxNumSeqs = 4 });
        var prompt = Enumerable.Range(0, 32).Select(i => 3 + (i * 7) % 60).ToArray(); // exactly two blocks
        var request = new EngineRequest { PromptTokenIds = prompt, MaxTokens = 10 };
        var first = await TinyEngine.Collect(engine.Submit(request, Ct), Ct);
        var second = await TinyEngine.Collect(engine.Submit(request, Ct), Ct);
        Assert.Equal(first.Tokens, second.Tokens);
        // Block 1 is cached but holds the last prompt token, whose logits are needed: it is recomputed into a private copy.
        Assert.Equal(16, second.Final.Usage!.CachedPromptTokens);
        var snapshot = await Idle(engine);
        Assert.Equal(snapshot.TotalBlocks, snapshot.FreeBlocks);
    }

    [Fact]
    public async Task Cancelled_request_frees_its_blocks_within_one_step()
    {
        // A long context and a long request: when the engine is released after the cancellation, the sequence would have
        // hundreds of steps left, so "at most one more step" measures the abort, not the end of the request.
        using var longContext = new TinyEngine(new TinyGgufModel { Vocabulary = 64, Context = 1024, Seed = 11 });
        var engine = longContext.CreateEngine(new EngineOptions { KvCacheBlocks = 64, MaxBatchedTokens = 64, MaxNumSeqs = 4 });
        using var cancel = new CancellationTokenSource();
        // The engine thread is held at the end of the first step that holds the sequence's blocks until the test has
        // cancelled: reading the first token and then the snapshot raced (the token is sent before the step's snapshot is
        // published). Idle snapshots (no blocks used) are published too, so the condition is on the blocks.
        using var cancelled = new ManualResetEventSlim();
        var firstStep = new TaskCompletionSource<EngineSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
        engine.StepCompleted += snapshot =>
        {
            if (snapshot.UsedBlocks > 0 && firstStep.TrySetResult(snapshot))
            {
                cancelled.Wait(TimeSpan.FromSeconds(30));
            }
        };
        var handle = engine.Submit(new EngineRequest { PromptTokenIds = [1, 5, 6, 7], MaxTokens = 1000 }, cancel.Token);
        var atFirstStep = await firstStep.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(1, atFirstStep.Running);
        cancel.Cancel();
        var stepsAtCancel = atFirstStep.Steps;
        cancelled.Set();
        var last = default(SequenceEvent);
        await foreach (var e in handle.Events.ReadAllAsync(Ct))
        {
            last = e;
        }

        Assert.Equal("abort", last.FinishReason);
        var snapshot = await Idle(engine);
        Assert.Equal(snapshot.TotalBlocks, snapshot.FreeBlocks);
        Assert.True(snapshot.Steps - stepsAtCancel <= 1, $"{snapshot.Steps - stepsAtCancel} steps ran after the cancellation");
    }

    [Fact]
    public void Request_that_can_never_fit_is_refused_at_once()
    {
        var engine = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 4, MaxBatchedTokens = 64, MaxNumSeqs = 4 });
        var overContext = Assert.Throws<AdmissionException>(() => engine.Submit(new EngineRequest { PromptTokenIds = new int[100], MaxTokens = 29 }, Ct));
        Assert.Equal("context_length_exceeded", overContext.Code);
        var overCache = Assert.Throws<AdmissionException>(() => engine.Submit(new EngineRequest { PromptTokenIds = new int[60], MaxTokens = 5 }, Ct));
        Assert.Equal("context_length_exceeded", overCache.Code);
        Assert.Contains("64", overCache.Message);
    }

    /// <summary>Waits (up to 10 s) until <paramref name="condition"/> holds.</summary>
    internal static async Task Until(Func<bool> condition)
    {
        for (var i = 0; i < 1000 && !condition(); i++)
        {
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }

        Assert.True(condition(), "the condition did not come true within 10 s");
    }

    /// <summary>Waits until the engine has nothing left to do and returns its counters then.</summary>
    internal static async Task<EngineSnapshot> Idle(LlmEngine engine)
    {
        for (var i = 0; i < 500; i++)
        {
            var s = engine.Snapshot;
            if (s.Running == 0 && s.Waiting == 0)
            {
                return s;
            }

            await Task.Delay(10, Ct);
        }

        throw new TimeoutException("The engine did not become idle.");
    }
}
