using System.Collections.Concurrent;
using System.Threading.Channels;

namespace AspireAi.Agents.Runs;

/// <summary>
/// Live fan-out of run events to the SSE streams attached to them, within this instance. Subscribers attach before they
/// read the persisted events, then skip live events they already replayed (by <see cref="RunEvent.Seq"/>), so none is
/// missed or doubled. Also carries approval decisions to a run waiting for one.
/// </summary>
public sealed class RunEventHub
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<Channel<RunEvent>, byte>> _subscribers = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _decisions = new();

    public Subscription Subscribe(string runId)
    {
        var channel = Channel.CreateUnbounded<RunEvent>(new UnboundedChannelOptions { SingleReader = true });
        _subscribers.GetOrAdd(runId, _ => new())[channel] = 0;
        return new Subscription(this, runId, channel);
    }

    public void Publish(string runId, RunEvent runEvent)
    {
        if (_subscribers.TryGetValue(runId, out var channels))
        {
            foreach (var channel in channels.Keys)
            {
                channel.Writer.TryWrite(runEvent);
            }
        }
    }

    /// <summary>Completes the live streams of a run this instance stops executing (they re-read the database to see why).</summary>
    public void Detach(string runId)
    {
        if (_subscribers.TryGetValue(runId, out var channels))
        {
            foreach (var channel in channels.Keys)
            {
                channel.Writer.TryComplete();
            }
        }
    }

    /// <summary>Wakes a run of this instance waiting for an approval decision.</summary>
    public void SignalDecision(string runId)
    {
        if (_decisions.TryRemove(runId, out var waiter))
        {
            waiter.TrySetResult();
        }
    }

    /// <summary>A task that completes when <see cref="SignalDecision"/> is called for the run.</summary>
    public Task DecisionSignal(string runId) =>
        _decisions.GetOrAdd(runId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    public sealed class Subscription(RunEventHub hub, string runId, Channel<RunEvent> channel) : IDisposable
    {
        public ChannelReader<RunEvent> Reader => channel.Reader;

        public void Dispose()
        {
            if (hub._subscribers.TryGetValue(runId, out var channels))
            {
                channels.TryRemove(channel, out _);
            }
        }
    }
}
