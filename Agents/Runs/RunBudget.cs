using AspireAi.Agents.Definitions;

namespace AspireAi.Agents.Runs;

/// <summary>A limit of <see cref="RunLimits"/> was reached: the run ends as <c>incomplete</c> with what it has.</summary>
public sealed class RunLimitException(string limit, string message) : Exception(message)
{
    public string Limit { get; } = limit;
}

/// <summary>What a run has spent against its <see cref="RunLimits"/>: tokens, cost, steps, tool calls and wall time.</summary>
public sealed class RunBudget(RunLimits limits, DateTimeOffset startedAt, TimeProvider time)
{
    private readonly Lock _lock = new();
    private long _inputTokens, _outputTokens;
    private decimal _cost;
    private int _steps, _toolCalls;

    public RunLimits Limits => limits;
    public DateTimeOffset Deadline => startedAt + TimeSpan.FromSeconds(limits.MaxWallSeconds);
    public long InputTokens { get { lock (_lock) { return _inputTokens; } } }
    public long OutputTokens { get { lock (_lock) { return _outputTokens; } } }
    public decimal Cost { get { lock (_lock) { return _cost; } } }

    /// <summary>Seeds the counters of a resumed run with what it spent before the restart.</summary>
    public void Restore(long inputTokens, long outputTokens, decimal cost, int steps, int toolCalls)
    {
        lock (_lock)
        {
            (_inputTokens, _outputTokens, _cost, _steps, _toolCalls) = (inputTokens, outputTokens, cost, steps, toolCalls);
        }
    }

    public void AddUsage(long input, long output, decimal cost)
    {
        lock (_lock)
        {
            _inputTokens += input;
            _outputTokens += output;
            _cost += cost;
        }
    }

    /// <summary>Throws when a model call may not start: tokens, cost or wall time spent.</summary>
    public void EnsureCanCallModel()
    {
        lock (_lock)
        {
            if (_inputTokens + _outputTokens >= limits.MaxTokens)
            {
                throw new RunLimitException("max_tokens", $"The run used {_inputTokens + _outputTokens} tokens of its limit of {limits.MaxTokens}.");
            }

            if (limits.MaxCost is { } maxCost && _cost >= maxCost)
            {
                throw new RunLimitException("max_cost", $"The run cost {_cost} of its limit of {maxCost}.");
            }
        }

        EnsureTime();
    }

    public void EnsureTime()
    {
        if (time.GetUtcNow() >= Deadline)
        {
            throw new RunLimitException("max_wall_seconds", $"The run reached its wall-time limit of {limits.MaxWallSeconds} s.");
        }
    }

    public void TakeStep()
    {
        lock (_lock)
        {
            if (_steps >= limits.MaxSteps)
            {
                throw new RunLimitException("max_steps", $"The run reached its limit of {limits.MaxSteps} steps.");
            }

            _steps++;
        }
    }

    public void TakeToolCall()
    {
        lock (_lock)
        {
            if (_toolCalls >= limits.MaxToolCalls)
            {
                throw new RunLimitException("max_tool_calls", $"The run reached its limit of {limits.MaxToolCalls} tool calls.");
            }

            _toolCalls++;
        }
    }

    public object Snapshot()
    {
        lock (_lock)
        {
            return new
            {
                prompt_tokens = _inputTokens,
                completion_tokens = _outputTokens,
                total_tokens = _inputTokens + _outputTokens,
                cost = _cost,
                steps = _steps,
                tool_calls = _toolCalls,
            };
        }
    }
}
