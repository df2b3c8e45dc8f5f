using AspireAi.Agents.Storage;

namespace AspireAi.Agents.Runs;

/// <summary>
/// Numbers, persists and publishes one run's events, one at a time even when steps run concurrently. Numbers continue
/// after the highest ever persisted (<paramref name="lastSeq"/>), so a number is never given twice — not even one whose
/// event was discarded — and a client resuming from <c>Last-Event-ID</c> misses nothing.
/// </summary>
public sealed class RunEventSink(string runId, int lastSeq, RunStore store, RunEventHub hub)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private int _seq = lastSeq;

    public Task EmitAsync(string type, object data) => AppendAsync(async seq =>
    {
        var runEvent = new RunEvent(seq, type, Json.Element(data));
        await store.AppendEventAsync(runId, runEvent, CancellationToken.None);
        return runEvent;
    });

    /// <summary>
    /// Emits the run's end event in the transaction in which <paramref name="finish"/> records the run's end
    /// (<see cref="RunStore.FinishAsync"/>). Written apart, a stream that re-read the database between the two found the run
    /// ended and no event after the last it had sent, and closed without the end event.
    /// </summary>
    public Task EmitEndAsync(string type, object data, Func<RunEvent, Task> finish) => AppendAsync(async seq =>
    {
        var runEvent = new RunEvent(seq, type, Json.Element(data));
        await finish(runEvent);
        return runEvent;
    });

    /// <summary>
    /// Emits the event <paramref name="data"/> makes from the number of token events <paramref name="step"/> streamed in an
    /// interrupted attempt, deleting those in the same transaction (see <see cref="RunStore.AppendDiscardingTokensAsync"/>).
    /// </summary>
    public Task EmitDiscardingTokensAsync(string type, string step, Func<int, object> data) =>
        AppendAsync(seq => store.AppendDiscardingTokensAsync(runId, step, discarded => new RunEvent(seq, type, Json.Element(data(discarded))), CancellationToken.None));

    private async Task AppendAsync(Func<int, Task<RunEvent>> persist)
    {
        await _gate.WaitAsync(CancellationToken.None);
        try
        {
            // Persisted even when the run is being cancelled: the event happened, and a replay must show it.
            var runEvent = await persist(_seq + 1);
            _seq = runEvent.Seq;
            hub.Publish(runId, runEvent);
        }
        finally
        {
            _gate.Release();
        }
    }
}
