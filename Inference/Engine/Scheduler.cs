namespace AspireAi.Inference.Engine;

/// <summary>A sequence and how many of its uncomputed tokens this step computes.</summary>
internal readonly record struct ScheduledChunk(Sequence Sequence, int Tokens);

/// <summary>
/// Continuous batching with chunked prefill (vLLM v1's scheduler): each step, priority class by priority class (interactive,
/// then batch), takes the class's running sequences' next tokens — decode tokens before the rest of unfinished prefills —
/// then admits the class's waiting sequences with prefill chunks while the token budget
/// (<see cref="EngineOptions.MaxBatchedTokens"/>), the sequence cap and the free blocks allow. When a running sequence needs a block and none is free, the least important running sequence (last
/// admitted among the lowest priority) is preempted by recompute: its blocks are freed and it goes back to the front of the
/// waiting queue with its generated tokens, to be prefilled again later (mostly from the prefix cache).
/// Logits are computed for one row per sequence (its last token) except for sequences that want prompt logprobs: their
/// prefill chunks need a row per token and share <paramref name="promptLogprobRows"/> extra rows per step.
/// </summary>
internal sealed class Scheduler(BlockManager blocks, EngineOptions options, int promptLogprobRows)
{
    private readonly List<Sequence> _waiting = [];
    private readonly List<Sequence> _running = [];
    private readonly List<Sequence> _order = [];
    private readonly HashSet<Sequence> _scheduled = [];
    private readonly Dictionary<string, int> _runningPerTenant = new(StringComparer.Ordinal);

    public IReadOnlyList<Sequence> Waiting => _waiting;

    public IReadOnlyList<Sequence> Running => _running;

    public bool HasWork => _waiting.Count > 0 || _running.Count > 0;

    /// <summary>Sequences preempted since the engine started.</summary>
    public long Preemptions { get; private set; }

    /// <summary>Queues a new sequence behind every waiting one of the same or a more important priority.</summary>
    public void Add(Sequence sequence)
    {
        var at = _waiting.FindIndex(s => s.Request.Priority > sequence.Request.Priority);
        _waiting.Insert(at < 0 ? _waiting.Count : at, sequence);
    }

    /// <summary>Takes a sequence out (finished or aborted) and returns its blocks.</summary>
    public void Remove(Sequence sequence)
    {
        if (_running.Remove(sequence))
        {
            _runningPerTenant[sequence.Request.Tenant]--;
        }
        else
        {
            _waiting.Remove(sequence);
        }

        blocks.Free(sequence);
        sequence.Status = SequenceStatus.Finished;
    }

    /// <summary>Chooses this step's work into <paramref name="output"/>; returns the sequences admitted for the first time.</summary>
    /// <remarks>
    /// Class by class, most important first: the class's running sequences (decode before prefill, then admission order),
    /// then its waiting ones — so an interactive request waiting for admission goes ahead of running batch work, which only
    /// gets what interactive work left of the step.
    /// </remarks>
    public void Schedule(List<ScheduledChunk> output, List<Sequence> firstAdmitted)
    {
        output.Clear();
        firstAdmitted.Clear();
        _scheduled.Clear();
        var step = new StepBudget
        {
            Tokens = options.MaxBatchedTokens,
            // While interactive work exists, batch sequences get only their share of the step (see EngineOptions.BatchShare),
            // and never more than BatchStepTokens (an interactive request arriving meanwhile waits for the step in flight).
            BatchTokens = Math.Min(options.BatchStepTokens,
                _running.Exists(s => s.Request.Priority == RequestPriority.Interactive) || _waiting.Exists(s => s.Request.Priority == RequestPriority.Interactive)
                    ? (int)(options.MaxBatchedTokens * options.BatchShare)
                    : options.MaxBatchedTokens),
            ExtraLogitRows = promptLogprobRows,
            MemoryShort = MakeRoomForImportantWaiting(),
        };

        // Running sequences by priority, decodes before prefill chunks within a class, otherwise in running order: four
        // passes over the list. (A comparison sort that broke ties by running index searched the list in every comparison:
        // 0.08 ms of a 256-sequence step on this project's 2-core machine.)
        _order.Clear();
        foreach (var priority in (ReadOnlySpan<RequestPriority>)[RequestPriority.Interactive, RequestPriority.Batch])
        {
            foreach (var prefill in (ReadOnlySpan<bool>)[false, true])
            {
                foreach (var sequence in _running)
                {
                    if (sequence.Request.Priority == priority && sequence.UncomputedTokens > 1 == prefill)
                    {
                        _order.Add(sequence);
                    }
                }
            }
        }

        foreach (var priority in (ReadOnlySpan<RequestPriority>)[RequestPriority.Interactive, RequestPriority.Batch])
        {
            ScheduleRunning(priority, output, ref step);
            if (!step.MemoryShort)
            {
                Admit(priority, output, firstAdmitted, ref step); // when memory is short, admitting would only preempt again
            }
        }
    }

    /// <summary>What is left of this step.</summary>
    private struct StepBudget
    {
        public int Tokens;
        public int BatchTokens;
        public int ExtraLogitRows;
        public bool MemoryShort;

        public readonly int For(Sequence sequence) =>
            sequence.Request.Priority == RequestPriority.Batch ? Math.Min(Tokens, BatchTokens) : Tokens;

        public void Take(Sequence sequence, int tokens)
        {
            Tokens -= tokens;
            BatchTokens -= sequence.Request.Priority == RequestPriority.Batch ? tokens : 0;
        }
    }

    private void ScheduleRunning(RequestPriority priority, List<ScheduledChunk> output, ref StepBudget step)
    {
        foreach (var sequence in _order)
        {
            if (step.Tokens == 0)
            {
                break;
            }

            if (sequence.Request.Priority != priority || sequence.Status != SequenceStatus.Running || _scheduled.Contains(sequence))
            {
                continue; // another class, or preempted earlier in this step
            }

            var tokens = FitLogitRows(sequence, Math.Min(sequence.UncomputedTokens, step.For(sequence)), ref step.ExtraLogitRows);
            if (tokens == 0)
            {
                continue; // batch work paused this step; it keeps its blocks
            }

            while (!blocks.TryAllocate(sequence, sequence.ComputedTokens + tokens))
            {
                step.MemoryShort = true;
                var victim = LeastImportantUnscheduled(sequence);
                Preempt(victim);
                if (victim == sequence)
                {
                    break;
                }
            }

            if (sequence.Status == SequenceStatus.Running)
            {
                output.Add(new ScheduledChunk(sequence, tokens));
                _scheduled.Add(sequence);
                step.Take(sequence, tokens);
            }
        }
    }

    private void Admit(RequestPriority priority, List<ScheduledChunk> output, List<Sequence> firstAdmitted, ref StepBudget step)
    {
        for (var i = 0; i < _waiting.Count && step.Tokens > 0 && _running.Count < options.MaxNumSeqs;)
        {
            var sequence = _waiting[i];
            if (sequence.Request.Priority > priority)
            {
                break; // the queue is ordered by priority: the rest is a later class
            }

            if (options.MaxRunningPerTenant > 0 && _runningPerTenant.GetValueOrDefault(sequence.Request.Tenant) >= options.MaxRunningPerTenant)
            {
                i++; // this tenant is at its cap; others may go ahead
                continue;
            }

            if (step.For(sequence) <= 0)
            {
                break; // batch work has used its share of the step
            }

            // A cached position has no logits: a sequence that still needs prompt logprobs computes its prompt itself.
            var cached = sequence.PromptLogprobsPending ? 0 : blocks.AllocateCachedPrefix(sequence, countQuery: !sequence.Admitted);
            blocks.CopyOnWrite(sequence);
            var tokens = FitLogitRows(sequence, Math.Min(sequence.UncomputedTokens, step.For(sequence)), ref step.ExtraLogitRows);
            if (!blocks.TryAllocate(sequence, sequence.ComputedTokens + tokens))
            {
                blocks.Free(sequence);
                step.MemoryShort = true;
                break; // first come, first served: nothing behind it jumps the queue for memory
            }

            if (!sequence.Admitted)
            {
                sequence.Admitted = true;
                sequence.CachedPromptTokens = Math.Min(cached, sequence.ComputedTokens);
                firstAdmitted.Add(sequence);
            }

            _waiting.RemoveAt(i);
            _running.Add(sequence);
            _runningPerTenant[sequence.Request.Tenant] = _runningPerTenant.GetValueOrDefault(sequence.Request.Tenant) + 1;
            sequence.Status = SequenceStatus.Running;
            output.Add(new ScheduledChunk(sequence, tokens));
            _scheduled.Add(sequence);
            step.Take(sequence, tokens);
        }
    }

    /// <summary>
    /// Shortens the chunk of a sequence that needs prompt logprobs to the logit rows left this step: it has one row like every
    /// sequence, and each further token takes one of the step's extra rows.
    /// </summary>
    private static int FitLogitRows(Sequence sequence, int tokens, ref int extraRows)
    {
        if (tokens <= 1 || !sequence.PromptLogprobsPending)
        {
            return tokens;
        }

        tokens = Math.Min(tokens, 1 + extraRows);
        extraRows -= tokens - 1;
        return tokens;
    }

    /// <summary>
    /// Priority preemption: when the first waiting sequence outranks running ones and cannot be admitted (no sequence slot or
    /// no blocks for its first chunk), the least important running sequences make way, so batch work never delays
    /// interactive requests for more than a step.
    /// Returns whether memory is still short after preempting.
    /// </summary>
    private bool MakeRoomForImportantWaiting()
    {
        if (_waiting.Count == 0)
        {
            return false;
        }

        var head = _waiting[0];
        var needed = blocks.BlocksFor(Math.Min(head.TokenCount, options.MaxBatchedTokens));
        var preempted = false;
        while (_running.Count >= options.MaxNumSeqs || blocks.FreeBlocks < needed)
        {
            var victim = _running.LastOrDefault(s => s.Request.Priority > head.Request.Priority);
            if (victim is null)
            {
                break;
            }

            Preempt(victim);
            preempted = true;
        }

        // Room made: the waiting sequence is admitted this step. Otherwise memory is still short.
        var roomMade = _running.Count < options.MaxNumSeqs && blocks.FreeBlocks >= needed;
        return preempted && !roomMade;
    }

    private Sequence LeastImportantUnscheduled(Sequence current)
    {
        for (var i = _order.Count - 1; i >= 0; i--)
        {
            var candidate = _order[i];
            if (candidate.Status == SequenceStatus.Running && !_scheduled.Contains(candidate) && candidate != current
                && candidate.Request.Priority >= current.Request.Priority)
            {
                return candidate;
            }
        }

        return current;
    }

    private void Preempt(Sequence sequence)
    {
        _running.Remove(sequence);
        _runningPerTenant[sequence.Request.Tenant]--;
        blocks.Free(sequence);
        sequence.Status = SequenceStatus.Waiting;
        sequence.Preemptions++;
        Preemptions++;
        // Front of the queue, ahead of everything of its priority class.
        var at = _waiting.FindIndex(s => s.Request.Priority >= sequence.Request.Priority);
        _waiting.Insert(at < 0 ? _waiting.Count : at, sequence);
    }
}
