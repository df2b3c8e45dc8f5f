using System.Diagnostics;
using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>Priority (batch work yields to interactive work) and the per-tenant cap of running sequences.</summary>
public sealed class SchedulingPolicyTests : IDisposable
{
    private readonly TinyEngine _tiny = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public async Task Batch_sequences_are_preempted_before_interactive_ones()
    {
        // 12 blocks: the batch sequences take the cache, then three interactive requests arrive that need all of it (4 blocks each).
        var engine = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 12, MaxBatchedTokens = 64, MaxNumSeqs = 8 });
        EngineRequest Make(int i, RequestPriority priority) => new()
        {
            PromptTokenIds = [1, 3 + i, 4 + i, 5 + i],
            MaxTokens = 60,
            Priority = priority,
            Sampling = new SamplingParams { Temperature = 0.8f, Seed = i },
        };

        // The interactive requests are submitted from the engine thread at the end of the first step that holds 8 blocks:
        // polling the snapshot from the test thread missed that moment on a fast machine (the batch finished first).
        var interactiveSubmitted = new TaskCompletionSource<EngineRequestHandle[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        engine.StepCompleted += snapshot =>
        {
            if (snapshot.UsedBlocks >= 8 && !interactiveSubmitted.Task.IsCompleted)
            {
                interactiveSubmitted.SetResult(Enumerable.Range(10, 3).Select(i => engine.Submit(Make(i, RequestPriority.Interactive), Ct)).ToArray());
            }
        };

        var batch = Enumerable.Range(0, 4).Select(i => engine.Submit(Make(i, RequestPriority.Batch), Ct)).ToArray();
        var interactive = await interactiveSubmitted.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        var interactiveResults = await Task.WhenAll(interactive.Select(h => TinyEngine.Collect(h, Ct)));
        var batchResults = await Task.WhenAll(batch.Select(h => TinyEngine.Collect(h, Ct)));
        Assert.All(interactiveResults, r => Assert.Equal(0, r.Final.Usage!.Preemptions));
        Assert.Contains(batchResults, r => r.Final.Usage!.Preemptions > 0);
        Assert.All(batchResults.Concat(interactiveResults), r => Assert.Equal(60, r.Tokens.Length));
    }

    private const string SourceName = "AspireAi.Inference.Tests.Scheduling";

    // Compared by name in the listener: the listener is asked about this source while the source's static initialiser runs.
    private static readonly ActivitySource Source = new(SourceName);

    /// <summary>(step, tokens of this sequence in it) from the engine's step events on the request's span.</summary>
    private static List<(long Step, int Tokens)> Steps(Activity activity) => activity.Events
        .Where(e => e.Name == "engine.step")
        .Select(e => (Convert.ToInt64(e.Tags.First(t => t.Key == "aspireai.step").Value), Convert.ToInt32(e.Tags.First(t => t.Key == "aspireai.step.sequence_tokens").Value)))
        .ToList();

    [Fact]
    public async Task Waiting_interactive_requests_are_admitted_ahead_of_running_batch_work_and_batch_steps_stay_short()
    {
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);

        // Batch work may share steps (BatchShare 1) but takes at most 24 tokens of a step.
        var engine = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 32, MaxBatchedTokens = 32, MaxNumSeqs = 4, BatchShare = 1, BatchStepTokens = 24 });
        using var batchSpan = Source.StartActivity("batch")!;
        using var interactiveSpan = Source.StartActivity("interactive")!;
        var interactive = new TaskCompletionSource<(EngineRequestHandle Handle, long Step)>(TaskCreationOptions.RunContinuationsAsynchronously);
        // Submitted on the engine thread after the batch request's first step, so it is waiting when the next step is planned.
        engine.StepCompleted += snapshot =>
        {
            if (snapshot.Steps == 1 && !interactive.Task.IsCompleted)
            {
                interactive.SetResult((engine.Submit(new EngineRequest { PromptTokenIds = [2, .. Enumerable.Range(40, 19)], MaxTokens = 4, Activity = interactiveSpan }, Ct), snapshot.Steps));
            }
        };

        var batch = engine.Submit(new EngineRequest { PromptTokenIds = [1, .. Enumerable.Range(0, 99).Select(i => 3 + i % 60)], MaxTokens = 8, Priority = RequestPriority.Batch, Activity = batchSpan }, Ct);
        var (handle, submittedAfter) = await interactive.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        await TinyEngine.Collect(handle, Ct);
        await TinyEngine.Collect(batch, Ct);

        var batchSteps = Steps(batchSpan);
        var interactiveSteps = Steps(interactiveSpan);
        // The very next step takes the interactive request's whole 20-token prompt; the batch prefill gets what is left.
        Assert.Equal((submittedAfter, 20), interactiveSteps[0]);
        Assert.Equal(32 - 20, batchSteps.Single(s => s.Step == submittedAfter).Tokens);
        Assert.All(batchSteps, s => Assert.InRange(s.Tokens, 1, 24));
        Assert.Equal(24, batchSteps[0].Tokens);
    }

    [Fact]
    public async Task A_tenant_at_its_cap_waits_while_others_run()
    {
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);

        var engine = _tiny.CreateEngine(new EngineOptions { KvCacheBlocks = 64, MaxBatchedTokens = 64, MaxNumSeqs = 8, MaxRunningPerTenant = 1 });
        // Steps are read from the engine's own step events on each request's span, not from the readers' clocks: a reader may
        // wake late on a busy machine (CI saw tenant b's first token noted after tenant a's last request had started).
        var requests = new[] { ("a", 0), ("a", 1), ("a", 2), ("b", 3) }.Select(r =>
        {
            var span = Source.StartActivity($"{r.Item1}{r.Item2}")!;
            var handle = engine.Submit(new EngineRequest { PromptTokenIds = [1, 3 + r.Item2], MaxTokens = 25, Tenant = r.Item1, Activity = span }, Ct);
            return (Tenant: r.Item1, Span: span, Handle: handle);
        }).ToList();
        await Task.WhenAll(requests.Select(r => TinyEngine.Collect(r.Handle, Ct)));
        foreach (var r in requests)
        {
            r.Span.Dispose();
        }

        var ranges = requests.Select(r => (r.Tenant, First: Steps(r.Span).Min(s => s.Step), Last: Steps(r.Span).Max(s => s.Step))).ToList();
        var a = ranges.Where(r => r.Tenant == "a").OrderBy(r => r.First).ToList();
        for (var i = 1; i < a.Count; i++)
        {
            Assert.True(a[i].First > a[i - 1].Last, $"tenant a's sequences must run one at a time: steps {a[i - 1].First}..{a[i - 1].Last} and {a[i].First}..{a[i].Last} overlap");
        }

        var b = ranges.Single(r => r.Tenant == "b");
        Assert.True(b.First < a[^1].First, $"tenant b (first step {b.First}) is held up behind tenant a's queue (a's last request began at step {a[^1].First})");
    }
}
