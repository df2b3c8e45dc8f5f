using System.Runtime.CompilerServices;
using System.Text.Json;
using AspireAi.Agents.Storage;

namespace AspireAi.Agents.Runs;

/// <summary>
/// A run's events in order: first those already persisted, then live ones, until the run ends (or pauses for approval, when
/// <c>untilPause</c>); and their server-sent-events form (<c>id: seq</c>, <c>event: type</c>, <c>data: json</c>).
/// </summary>
internal static class RunStreamer
{
    public static async Task StreamAsync(HttpContext context, RunStore store, RunEventHub hub, string runId, bool untilPause, CancellationToken ct)
    {
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["X-Accel-Buffering"] = "no";
        await context.Response.Body.FlushAsync(ct);
        await foreach (var runEvent in ReadAsync(store, hub, runId, untilPause, ct))
        {
            var data = JsonSerializer.Serialize(runEvent, Json.Options);
            await context.Response.WriteAsync($"id: {runEvent.Seq}\nevent: {runEvent.Type}\ndata: {data}\n\n", ct);
            await context.Response.Body.FlushAsync(ct);
        }
    }

    public static async IAsyncEnumerable<RunEvent> ReadAsync(RunStore store, RunEventHub hub, string runId, bool untilPause,
        [EnumeratorCancellation] CancellationToken ct)
    {
        var lastSeq = 0;
        while (!ct.IsCancellationRequested)
        {
            using var subscription = hub.Subscribe(runId);
            foreach (var runEvent in await store.EventsAsync(runId, lastSeq, ct))
            {
                yield return runEvent;
                lastSeq = runEvent.Seq;
                if (Ends(runEvent, untilPause))
                {
                    yield break;
                }
            }

            var run = await store.GetAsync(runId, ct);
            if (run is null || RunStatus.IsTerminal(run.Status) && await store.LastEventSeqAsync(runId, ct) <= lastSeq)
            {
                yield break;
            }

            // Live events, with a re-read of the database every 2 s: the run may be executing on another instance.
            using var poll = CancellationTokenSource.CreateLinkedTokenSource(ct);
            poll.CancelAfter(TimeSpan.FromSeconds(2));
            var reader = subscription.Reader;
            while (true)
            {
                RunEvent runEvent;
                try
                {
                    if (!await reader.WaitToReadAsync(poll.Token) || !reader.TryRead(out runEvent!))
                    {
                        break;
                    }
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    break;
                }

                if (runEvent.Seq <= lastSeq)
                {
                    continue;
                }

                if (runEvent.Seq > lastSeq + 1)
                {
                    break; // missed some: re-read them from the database
                }

                yield return runEvent;
                lastSeq = runEvent.Seq;
                if (Ends(runEvent, untilPause))
                {
                    yield break;
                }
            }
        }
    }

    private static bool Ends(RunEvent runEvent, bool untilPause) =>
        RunEventTypes.Ends(runEvent.Type) || (untilPause && runEvent.Type == RunEventTypes.ApprovalRequired);
}
