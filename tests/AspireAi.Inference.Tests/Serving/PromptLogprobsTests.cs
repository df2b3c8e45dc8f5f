using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>
/// Prompt logprobs are computed during prefill; they must equal what decoding reports for the same tokens one position at a
/// time (teacher forcing), however the prefill is chunked, cached or batched with other sequences.
/// </summary>
public sealed class PromptLogprobsTests : IDisposable
{
    private readonly TinyEngine _tiny = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _tiny.Dispose();

    private static int[] Prompt(int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => 3 + random.Next(60)).ToArray();
    }

    private static async Task<(IReadOnlyList<PromptTokenLogprob> Prompt, int[] Tokens)> Run(LlmEngine engine, EngineRequest request)
    {
        IReadOnlyList<PromptTokenLogprob>? prompt = null;
        var tokens = new List<int>();
        await foreach (var e in engine.Submit(request, Ct).ReadAllAsync(Ct))
        {
            if (e.PromptLogprobs is { } p)
            {
                Assert.Null(prompt); // once
                Assert.Empty(tokens); // before the first token
                prompt = p;
            }

            if (e.TokenId >= 0)
            {
                tokens.Add(e.TokenId);
            }
        }

        Assert.NotNull(prompt);
        return (prompt!, tokens.ToArray());
    }

    /// <summary>Teacher forcing through the decode path: the full distribution (top-k = vocabulary) after each prefix.</summary>
    private async Task<TokenLogprob[][]> Forced(LlmEngine engine, int[] prompt)
    {
        var vocabulary = _tiny.Spec.Vocabulary;
        var handles = Enumerable.Range(1, prompt.Length - 1).Select(i => engine.Submit(new EngineRequest
        {
            PromptTokenIds = prompt[..i],
            MaxTokens = 1,
            Logprobs = true,
            TopLogprobs = vocabulary,
        }, Ct)).ToArray();
        var distributions = new TokenLogprob[handles.Length][];
        for (var i = 0; i < handles.Length; i++)
        {
            await foreach (var e in handles[i].ReadAllAsync(Ct))
            {
                if (e.TokenId >= 0)
                {
                    distributions[i] = e.TopLogprobs!;
                }
            }
        }

        return distributions;
    }

    [Fact]
    public async Task Prompt_logprobs_equal_teacher_forced_decode_logprobs()
    {
        var prompt = Prompt(40, 1);
        var engine = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 64, MaxBatchedTokens = 64, MaxNumSeqs = 4 }, promptLogprobRows: 60);
        var (scored, _) = await Run(engine, new EngineRequest { PromptTokenIds = prompt, MaxTokens = 2, PromptLogprobs = 3 });
        var forced = await Forced(engine, prompt);

        Assert.Equal(prompt.Length - 1, scored.Count);
        for (var t = 1; t < prompt.Length; t++)
        {
            var entry = scored[t - 1];
            var distribution = forced[t - 1];
            var expected = distribution.Single(a => a.Id == prompt[t]);
            Assert.Equal(prompt[t], entry.Id);
            Assert.True(Math.Abs(expected.Logprob - entry.Logprob) < 1e-4, $"token {t}: prefill {entry.Logprob}, decode {expected.Logprob}");
            Assert.Equal(1 + distribution.Count(a => a.Logprob > expected.Logprob), entry.Rank);
            Assert.Equal(distribution.Take(3).Select(a => a.Id), entry.TopLogprobs!.Select(a => a.Id));
        }
    }

    [Fact]
    public async Task Chunked_cached_and_batched_prefill_gives_the_same_prompt_logprobs()
    {
        var prompt = Prompt(70, 2);
        var reference = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 64, MaxBatchedTokens = 128, MaxNumSeqs = 4 }, promptLogprobRows: 124);
        var (expected, expectedTokens) = await Run(reference, new EngineRequest { PromptTokenIds = prompt, MaxTokens = 8, PromptLogprobs = 2 });

        // 16 tokens per step (the prompt takes five or more steps), 5 extra logit rows per step, another sequence alongside
        // that shares the first 48 prompt tokens (cached blocks the prompt-logprobs request must not use).
        var chunked = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 64, MaxBatchedTokens = 16, MaxNumSeqs = 4 }, promptLogprobRows: 5);
        var neighbour = chunked.Submit(new EngineRequest { PromptTokenIds = [.. prompt[..48], 5, 6], MaxTokens = 30 }, Ct);
        await neighbour.Events.WaitToReadAsync(Ct); // its prompt is computed (and cached) before the next request arrives
        var (actual, actualTokens) = await Run(chunked, new EngineRequest { PromptTokenIds = prompt, MaxTokens = 8, PromptLogprobs = 2 });
        await TinyEngine.Collect(neighbour, Ct);

        Assert.Equal(expectedTokens, actualTokens);
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Id, actual[i].Id);
            Assert.Equal(expected[i].Rank, actual[i].Rank);
            Assert.True(Math.Abs(expected[i].Logprob - actual[i].Logprob) < 1e-4, $"token {i + 1}: {expected[i].Logprob} vs {actual[i].Logprob}");
            Assert.Equal(expected[i].TopLogprobs!.Select(a => a.Id), actual[i].TopLogprobs!.Select(a => a.Id));
        }

        var snapshot = await EngineBatchingTests.Idle(chunked);
        Assert.Equal(snapshot.TotalBlocks, snapshot.FreeBlocks);
    }

    [Fact]
    public async Task Without_extra_logit_rows_prompt_logprobs_advance_one_position_per_step()
    {
        // The engine's model has one logit row per sequence only: the request still completes, scoring one position per step.
        var prompt = Prompt(20, 3);
        var engine = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 16, MaxBatchedTokens = 32, MaxNumSeqs = 2 });
        var before = engine.Snapshot.Steps;
        var (scored, tokens) = await Run(engine, new EngineRequest { PromptTokenIds = prompt, MaxTokens = 1, PromptLogprobs = 0 });
        var after = await EngineBatchingTests.Idle(engine);

        Assert.Equal(prompt.Length - 1, scored.Count);
        Assert.All(scored, s => Assert.Null(s.TopLogprobs));
        Assert.Single(tokens);
        Assert.Equal(prompt.Length, after.Steps - before);
    }
}
