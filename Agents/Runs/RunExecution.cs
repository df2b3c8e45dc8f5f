using AspireAi.Agents.Tools;

namespace AspireAi.Agents.Runs;

/// <summary>Everything one executing run carries: its record, budget, event sink, tools and their context.</summary>
internal sealed class RunExecution(RunRecord record, RunStore store, RunEventHub hub, RunEventSink events, RunBudget budget, ToolContext tools)
{
    public string Id => Record.Id;
    public RunRecord Record { get; } = record;
    public RunStore Store { get; } = store;
    public RunEventHub Hub { get; } = hub;
    public RunEventSink Events { get; } = events;
    public RunBudget Budget { get; } = budget;
    public ToolContext Tools { get; } = tools;

    /// <summary>A limit reached inside function invocation, which turns exceptions into tool results: rethrown once the model call returns.</summary>
    public RunLimitException? LimitReached { get; set; }

    public void ThrowIfLimitReached()
    {
        if (LimitReached is { } limit)
        {
            throw limit;
        }
    }
}
