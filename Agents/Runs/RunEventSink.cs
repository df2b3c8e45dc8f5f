using AspireAi.Agents.Storage;

namespace AspireAi.Agents.Runs;

/// <summary>Numbers, persists and publishes one run's events, one at a time even when steps run concurrently.</summary>
public sealed class RunEventSink(string runId, int lastSeq, RunStore store, RunEventHub hub)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private int _seq = lastSeq;

    public async Task EmitAsync(string type, object data)
    {
        await _gate.WaitAsync(CancellationToken.None);
        try
        {
            var runEvent = new RunEvent(_seq + 1, type, Json.Element(data));
            // Persisted even when the run is being cancelled: the event happened, and a replay must show it.
            await store.AppendEventAsync(runId, runEvent, CancellationToken.None);
            _seq = runEvent.Seq;
            hub.Publish(runId, runEvent);
        }
        finally
        {
            _gate.Release();
        }

    }
}
