using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Sampling;
using AspireAi.Inference.Models;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Engine;

/// <summary>
/// The serving engine (nano-vllm's LLMEngine): requests come in from any thread, and one engine thread runs the step loop —
/// schedule (<see cref="Scheduler"/>), one forward pass over every scheduled token of every sequence, then sample each
/// sequence that reached the end of its tokens and send what it produced to the request through its channel.
/// </summary>
public sealed class LlmEngine : IDisposable
{
    private readonly IForwardModel _model;
    private readonly ITokenizer? _tokenizer;
    private readonly PagedKvCache _cache;
    private readonly KvOffloadStore? _offload;
    private readonly BlockManager _blocks;
    private readonly Scheduler _scheduler;
    private readonly ForwardBatch _batch;
    private readonly float[] _logits;
    private readonly float[] _rawRow;

    // Set on a backend that chooses tokens where its logits are: steps in which no sequence needs its logits on the host
    // (logprobs, a grammar) take ids from it, not rows × vocabulary floats.
    private readonly IDeviceSampler? _deviceSampler;
    private readonly DecodeGraphs? _graphs;
    private readonly SamplingRow[] _samplingRows;
    private readonly List<TokenPenalty> _penalties = [];
    private readonly int[] _deviceIds;
    private long _tokensChosenOnDevice;
    private long _tokensChosenOnHost;
    private readonly ConcurrentQueue<Sequence> _inbox = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _thread;
    private readonly List<ScheduledChunk> _chunks = [];
    private readonly List<Sequence> _admitted = [];
    private readonly List<Sequence> _finished = [];
    private readonly EngineMetrics _metrics;
    private long _nextId;
    private int _queued;
    private volatile bool _stopping;
    private volatile EngineSnapshot _snapshot;

    /// <param name="model">Built with room for <see cref="EngineOptions.MaxBatchedTokens"/> tokens and
    /// <see cref="EngineOptions.MaxNumSeqs"/> logit rows per step; rows beyond that let a prompt-logprobs prefill compute
    /// more positions per step (with none extra it advances one position per step).</param>
    /// <param name="tokenizer">Turns tokens into text (stop strings need it); null streams ids only.</param>
    public LlmEngine(IForwardModel model, ITokenizer? tokenizer, EngineOptions options, string modelName = "model")
    {
        options.Validate();
        if (model.MaxBatchTokens < options.MaxBatchedTokens || model.MaxLogitRows < options.MaxNumSeqs)
        {
            throw new ArgumentException(
                $"The model was built for {model.MaxBatchTokens} tokens and {model.MaxLogitRows} logit rows per step; the engine needs {options.MaxBatchedTokens} and {options.MaxNumSeqs}.",
                nameof(model));
        }

        _model = model;
        _tokenizer = tokenizer;
        Options = options;
        ModelName = modelName;
        var config = model.Config;
        // Decode steps replay CUDA graphs unless the options say eager; their padding tokens write to one block allocated
        // beyond the KvCacheBlocks the block manager hands out, so those stay the usable capacity either way.
        var graphs = options.CudaGraphs && model.CanCaptureSteps;
        _blocks = new BlockManager(options.KvCacheBlocks, options.BlockSize, options.KvOffloadBlocks);
        // Logit rows beyond one per sequence go to prompt logprobs (see Scheduler).
        _scheduler = new Scheduler(_blocks, options, model.MaxLogitRows - options.MaxNumSeqs);
        var shape = model.KvCacheShape(options.BlockSize, options.KvCacheBlocks + (graphs ? 1 : 0), options.KvCacheDtype);
        _cache = model.CreateKvCache(shape);
        _offload = options.KvOffloadBlocks > 0 ? model.CreateKvOffloadStore(shape, options.KvOffloadBlocks) : null;
        _batch = new ForwardBatch(options.MaxBatchedTokens, options.MaxNumSeqs, _blocks.BlocksFor(config.ContextLength));
        _logits = new float[model.MaxLogitRows * config.VocabularySize];
        _rawRow = new float[config.VocabularySize];
        _deviceSampler = model.Backend as IDeviceSampler;
        _graphs = graphs ? new DecodeGraphs(model, options, paddingBlock: options.KvCacheBlocks) : null;
        _samplingRows = new SamplingRow[model.MaxLogitRows];
        _deviceIds = new int[model.MaxLogitRows];
        _snapshot = new EngineSnapshot(0, 0, 0, _blocks.BlockCount, _blocks.BlockCount, 0, 0, 0, 0);
        _metrics = new EngineMetrics(this, modelName);
        _thread = new Thread(Run) { IsBackground = true, Name = "llm-engine" };
        _thread.Start();
    }

    /// <summary>The <see cref="System.Diagnostics.Metrics.Meter"/> of the engine's vLLM-named metrics (subscribe with <c>AddMeter</c>).</summary>
    public const string MeterName = EngineMetrics.MeterName;

    public ModelConfig Config => _model.Config;

    public ITokenizer? Tokenizer => _tokenizer;

    public EngineOptions Options { get; }

    /// <summary>The model's id in metrics and responses.</summary>
    public string ModelName { get; }

    /// <summary>Counters as of the end of the last step (safe to read from any thread).</summary>
    public EngineSnapshot Snapshot => _snapshot;

    /// <summary>
    /// The snapshot of the first step after this call at whose end nothing runs or waits. Call it before submitting the
    /// work to wait for: it never completes while the engine has nothing to do.
    /// </summary>
    public Task<EngineSnapshot> NextIdleAsync()
    {
        var idle = new TaskCompletionSource<EngineSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
        var steps = Snapshot.Steps;
        void OnStep(EngineSnapshot s)
        {
            if (s.Running == 0 && s.Waiting == 0 && s.Steps > steps)
            {
                StepCompleted -= OnStep;
                idle.TrySetResult(s);
            }
        }

        StepCompleted += OnStep;
        return idle.Task;
    }

    /// <summary>Requests submitted and not yet admitted, counted now (the snapshot's count is as of the last step).</summary>
    public int QueuedRequests => Volatile.Read(ref _queued);

    /// <summary>Raised on the engine thread after every step (tests wait on it; keep handlers short).</summary>
    public event Action<EngineSnapshot>? StepCompleted;

    /// <summary>
    /// Queues a request. Events arrive on the returned handle until one carries a finish reason. Cancelling
    /// <paramref name="cancellation"/> (a client disconnect) drops the sequence at the next step and frees its blocks.
    /// </summary>
    /// <exception cref="AdmissionException">The request can never fit (<c>context_length_exceeded</c>) or the queue is full (<c>queue_full</c>).</exception>
    public EngineRequestHandle Submit(EngineRequest request, CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        Validate(request);
        if (Interlocked.Increment(ref _queued) > Options.MaxWaiting)
        {
            Interlocked.Decrement(ref _queued);
            throw new AdmissionException($"The server is at capacity: {Options.MaxWaiting} requests are already waiting. Retry later.",
                "queue_full", retryAfter: TimeSpan.FromSeconds(1));
        }

        var sequence = new Sequence(Interlocked.Increment(ref _nextId), request, Config.VocabularySize, _tokenizer);
        var handle = new EngineRequestHandle(sequence, this);
        if (cancellation.CanBeCanceled)
        {
            handle.Registration = cancellation.Register(static s => ((EngineRequestHandle)s!).Abort(), handle);
        }

        _inbox.Enqueue(sequence);
        _wake.Release();
        return handle;
    }

    internal void RequestAbort(Sequence sequence)
    {
        sequence.AbortRequested = true;
        _wake.Release();
    }

    private void Validate(EngineRequest request)
    {
        var prompt = request.PromptTokenIds;
        var context = Config.ContextLength;
        if (prompt.Length == 0)
        {
            throw new ArgumentException("The prompt has no tokens.", nameof(request));
        }

        foreach (var id in prompt)
        {
            if ((uint)id >= (uint)Config.VocabularySize)
            {
                throw new ArgumentException($"Prompt token id {id} is outside the vocabulary of {Config.VocabularySize}.", nameof(request));
            }
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(request.MaxTokens, "max_tokens");
        if (request.PromptLogprobs is < 0)
        {
            throw new ArgumentOutOfRangeException("prompt_logprobs", request.PromptLogprobs, "prompt_logprobs must be ≥ 0.");
        }

        request.Sampling.Validate();
        if (request.StopStrings.Count > 0 && _tokenizer is null)
        {
            throw new ArgumentException("Stop strings need the model's tokenizer.", nameof(request));
        }

        var total = (long)prompt.Length + request.MaxTokens;
        if (total > context)
        {
            throw new AdmissionException(
                $"This model's maximum context length is {context} tokens. However, you requested {total} tokens ({prompt.Length} in the prompt, {request.MaxTokens} for the completion). Please reduce the prompt or max_tokens.",
                "context_length_exceeded", "messages");
        }

        if (_blocks.BlocksFor((int)total) > _blocks.BlockCount)
        {
            throw new AdmissionException(
                $"The request needs {total} tokens of KV cache ({prompt.Length} prompt + {request.MaxTokens} max_tokens) but the whole cache holds {_blocks.BlockCount * Options.BlockSize}.",
                "context_length_exceeded", "max_tokens");
        }
    }

    private void Run()
    {
        while (!_stopping)
        {
            while (_inbox.TryDequeue(out var sequence))
            {
                _scheduler.Add(sequence);
            }

            DropAborted();
            if (!_scheduler.HasWork)
            {
                Publish();
                _wake.Wait();
                continue;
            }

            var stepStarted = Stopwatch.GetTimestamp();
            try
            {
                Step();
            }
            catch (Exception e)
            {
                // A failing step must not strand its requests: end them all with the error, free everything, keep serving.
                foreach (var sequence in _scheduler.Running.Concat(_scheduler.Waiting).ToList())
                {
                    Finish(sequence, "error", e);
                }
            }

            _stepTicks += Stopwatch.GetTimestamp() - stepStarted;
            Publish();
        }

        foreach (var sequence in _scheduler.Running.Concat(_scheduler.Waiting).Concat(_inbox).ToList())
        {
            Finish(sequence, "abort", new ObjectDisposedException(nameof(LlmEngine)));
        }

        _graphs?.Dispose(); // on the thread that recorded them, where the device is current
    }

    private void DropAborted()
    {
        _finished.Clear();
        _finished.AddRange(_scheduler.Running.Where(s => s.AbortRequested));
        _finished.AddRange(_scheduler.Waiting.Where(s => s.AbortRequested));
        foreach (var sequence in _finished)
        {
            Finish(sequence, "abort");
        }
    }

    private void Step()
    {
        try
        {
            _scheduler.Schedule(_chunks, _admitted);
        }
        finally
        {
            // Whatever the scheduler moved between the tiers is copied before anything reads or overwrites those blocks.
            IssueKvCopies();
        }

        foreach (var sequence in _admitted)
        {
            Interlocked.Decrement(ref _queued);
            sequence.Sampler = new Sampler(Config.VocabularySize, sequence.Request.Sampling);
            sequence.Sampler.SetPrompt(sequence.Request.PromptTokenIds);
        }

        if (_chunks.Count == 0)
        {
            // Nothing fits yet (every waiting request's tenant is at its cap): wait for a finish or a new request.
            _wake.Wait(TimeSpan.FromMilliseconds(50));
            return;
        }

        _batch.Clear();
        var tokensThisStep = 0;
        foreach (var (sequence, count) in _chunks)
        {
            var index = _batch.AddSequence(CollectionsMarshal.AsSpan(sequence.BlockTable));
            var tokens = sequence.Tokens;
            var end = sequence.ComputedTokens + count;
            for (var p = sequence.ComputedTokens; p < end; p++)
            {
                _batch.AddToken(tokens[p], p, index, _blocks.Slot(sequence, p),
                    needsLogits: p == sequence.TokenCount - 1 || sequence.NeedsPromptLogprobAt(p));
            }

            tokensThisStep += count;
        }

        var started = Stopwatch.GetTimestamp();
        var onDevice = _deviceSampler is not null && _chunks.TrueForAll(c => ChoosesOnDevice(c.Sequence, c.Tokens));
        if (onDevice)
        {
            // Rows before the step runs: a replayed graph pads the batch, and the padding's logit rows are never sampled.
            var rows = FillSamplingRows();
            var deviceLogits = _graphs is not null && _graphs.TryRun(_batch, _cache, out var replayed) ? replayed : _model.ForwardToLogits(_batch, _cache);
            if (deviceLogits is not null)
            {
                _deviceSampler!.Sample(deviceLogits, _samplingRows.AsSpan(0, rows), CollectionsMarshal.AsSpan(_penalties), _deviceIds);
                _tokensChosenOnDevice += rows;
            }
        }
        else
        {
            _model.Forward(_batch, _cache, _logits);
        }

        var forwardTicks = Stopwatch.GetTimestamp() - started;
        _forwardTicks += forwardTicks;
        var stepSeconds = (double)forwardTicks / Stopwatch.Frequency;

        var vocabulary = Config.VocabularySize;
        var row = 0;
        _finished.Clear();
        foreach (var (sequence, count) in _chunks)
        {
            // Rows come in token order: this chunk's prompt-logprob positions, then its last token when it samples.
            for (var p = sequence.ComputedTokens; p < sequence.ComputedTokens + count; p++)
            {
                if (sequence.NeedsPromptLogprobAt(p))
                {
                    sequence.PromptLogprobs!.Add(PromptLogprob(_logits.AsSpan(row * vocabulary, vocabulary), sequence.Tokens[p + 1], sequence.Request.PromptLogprobs!.Value));
                    row++;
                }
            }

            sequence.ComputedTokens += count;
            _blocks.CacheFullBlocks(sequence);
            RecordStepEvent(sequence, count, tokensThisStep, stepSeconds);
            if (sequence.PromptLogprobs is { } promptLogprobs && !sequence.PromptLogprobsSent && !sequence.PromptLogprobsPending)
            {
                sequence.PromptLogprobsSent = true;
                sequence.Output.Writer.TryWrite(new SequenceEvent(-1, "", float.NaN, null, PromptLogprobs: promptLogprobs.ToArray()));
            }

            if (sequence.ComputedTokens == sequence.TokenCount)
            {
                var finish = onDevice
                    ? Emit(sequence, _deviceIds[row], float.NaN, null)
                    : SampleNext(sequence, _logits.AsSpan(row * vocabulary, vocabulary));
                if (finish is { } reason)
                {
                    _finished.Add(sequence);
                    sequence.PendingFinish = reason;
                }

                row++;
            }
        }

        foreach (var sequence in _finished)
        {
            Finish(sequence, sequence.PendingFinish!);
        }

        _steps++;
    }

    private long _steps;

    // Engine-thread time in steps, and the part of it in the forward pass and device sampling (the rest is the host's:
    // scheduling, building the batch, emitting tokens), in Stopwatch ticks.
    private long _stepTicks, _forwardTicks;

    /// <summary>
    /// Issues the block manager's copies between the device cache and the offload tier, in the order recorded: a block
    /// evicted to the host is read before a later copy or step writes it, and a block copied back is in place before the
    /// step's attention reads it (the backend orders its operations: a device backend queues them on its stream).
    /// </summary>
    private void IssueKvCopies()
    {
        var copies = _blocks.PendingCopies;
        foreach (var copy in copies)
        {
            if (copy.ToHost)
            {
                _model.CopyKvBlockToHost(_cache, copy.DeviceBlock, _offload!, copy.HostSlot);
            }
            else
            {
                _model.CopyKvBlockFromHost(_offload!, copy.HostSlot, _cache, copy.DeviceBlock);
            }
        }

        copies.Clear();
    }

    /// <summary>The prompt token <paramref name="token"/>'s logprob and rank under <paramref name="logits"/> (the position before it).</summary>
    private static PromptTokenLogprob PromptLogprob(ReadOnlySpan<float> logits, int token, int top)
    {
        var value = logits[token];
        var rank = 1;
        foreach (var logit in logits)
        {
            rank += logit > value ? 1 : 0;
        }

        return new PromptTokenLogprob(token, (float)(value - Logprobs.LogSumExp(logits)), rank, top > 0 ? Logprobs.Top(logits, top) : null);
    }

    /// <summary>Samples the sequence's next token from its logits row, emits it, and returns a finish reason when it ends.</summary>
    private string? SampleNext(Sequence sequence, Span<float> logits)
    {
        var request = sequence.Request;
        var sampler = sequence.Sampler!;
        var wantLogprobs = request.Logprobs || request.TopLogprobs > 0;
        var lse = 0.0;
        TokenLogprob[]? top = null;
        if (wantLogprobs)
        {
            lse = Logprobs.LogSumExp(logits);
            top = request.TopLogprobs > 0 ? Logprobs.Top(logits, request.TopLogprobs) : null;
            logits.CopyTo(_rawRow);
        }

        if (request.Constraint is { } constraint)
        {
            var remaining = Math.Min(request.MaxTokens - sequence.GeneratedCount, Config.ContextLength - sequence.TokenCount) - 1;
            Span<float> stopLogits = stackalloc float[Math.Min(request.StopTokenIds.Count, 64)];
            var i = 0;
            foreach (var id in request.StopTokenIds)
            {
                if (i < stopLogits.Length)
                {
                    stopLogits[i++] = logits[id];
                }
            }

            var any = constraint.MaskLogits(logits, remaining);
            if (constraint.IsComplete)
            {
                i = 0;
                foreach (var id in request.StopTokenIds)
                {
                    if (i < stopLogits.Length)
                    {
                        logits[id] = stopLogits[i++];
                        any = true;
                    }
                }
            }

            if (!any)
            {
                return "stop";
            }
        }

        var token = sampler.Sample(logits);
        _tokensChosenOnHost++;
        return Emit(sequence, token, wantLogprobs ? (float)(_rawRow[token] - lse) : float.NaN, top);
    }

    /// <summary>
    /// Whether this chunk's sequence can take its next token from the device sampler: it wants no logprobs of any kind and
    /// follows no grammar (those need the logits on the host). A step uses the device only when every chunk can.
    /// </summary>
    private static bool ChoosesOnDevice(Sequence sequence, int count)
    {
        var request = sequence.Request;
        return request.PromptLogprobs is null
            && (sequence.ComputedTokens + count < sequence.TokenCount
                || (!request.Logprobs && request.TopLogprobs == 0 && request.Constraint is null));
    }

    /// <summary>
    /// One sampling row per sequence that reaches the end of its tokens this step, in logit-row order, each drawing its
    /// uniform from the sequence's own stream now (the host path draws the same number when it samples); returns the count.
    /// </summary>
    private int FillSamplingRows()
    {
        _penalties.Clear();
        var rows = 0;
        foreach (var (sequence, count) in _chunks)
        {
            if (sequence.ComputedTokens + count == sequence.TokenCount)
            {
                _samplingRows[rows++] = sequence.Sampler!.DeviceRow(_penalties);
            }
        }

        // Without prompt logprobs (never on this path) a step's logit rows are exactly its sampling sequences' last tokens.
        return rows == _batch.LogitCount ? rows : throw new InvalidOperationException($"{rows} sampling rows for {_batch.LogitCount} logit rows.");
    }

    /// <summary>Emits the chosen <paramref name="token"/> (or ends on a stop token) and returns a finish reason when the sequence ends.</summary>
    private string? Emit(Sequence sequence, int token, float logprob, TokenLogprob[]? top)
    {
        var request = sequence.Request;
        var sampler = sequence.Sampler!;
        var now = Stopwatch.GetTimestamp();
        if (sequence.FirstTokenTimestamp == 0)
        {
            sequence.FirstTokenTimestamp = now;
            _metrics.TimeToFirstToken(Stopwatch.GetElapsedTime(sequence.ArrivalTimestamp, now).TotalSeconds);
        }
        else
        {
            _metrics.InterTokenLatency(Stopwatch.GetElapsedTime(sequence.LastTokenTimestamp, now).TotalSeconds);
        }

        sequence.LastTokenTimestamp = now;
        if (request.StopTokenIds.Contains(token))
        {
            return "stop";
        }

        sampler.Accept(token);
        request.Constraint?.Accept(token);
        sequence.Append(token);
        _metrics.GenerationTokens(1);
        var text = sequence.Detokenizer is { } detokenizer ? sequence.StopStrings.Push(detokenizer.Push(token)) : "";
        sequence.Output.Writer.TryWrite(new SequenceEvent(token, text, logprob, top));
        if (sequence.StopStrings.Stopped || request.Constraint?.IsTerminated == true)
        {
            return "stop";
        }

        if (sequence.GeneratedCount >= request.MaxTokens || sequence.TokenCount >= Config.ContextLength)
        {
            return "length";
        }

        return null;
    }

    private void Finish(Sequence sequence, string reason, Exception? error = null)
    {
        if (sequence.Status != SequenceStatus.Finished)
        {
            if (!sequence.Admitted)
            {
                Interlocked.Decrement(ref _queued);
            }

            _scheduler.Remove(sequence);
        }

        if (error is null && reason != "abort" && sequence.Detokenizer is { } detokenizer && !sequence.StopStrings.Stopped)
        {
            var tail = sequence.StopStrings.Push(detokenizer.Flush()) + sequence.StopStrings.Flush();
            if (tail.Length > 0)
            {
                sequence.Output.Writer.TryWrite(new SequenceEvent(-1, tail, float.NaN, null));
            }
        }

        var usage = new SequenceUsage(sequence.PromptLength, sequence.GeneratedCount, sequence.CachedPromptTokens, sequence.Preemptions);
        if (error is null)
        {
            sequence.Output.Writer.TryWrite(new SequenceEvent(-1, "", float.NaN, null, reason, usage));
            sequence.Output.Writer.TryComplete();
        }
        else
        {
            sequence.Output.Writer.TryComplete(error);
        }

        if (reason is "stop" or "length")
        {
            _metrics.RequestFinished(sequence, reason);
        }
    }

    private void RecordStepEvent(Sequence sequence, int tokens, int batchTokens, double seconds)
    {
        if (sequence.Request.Activity is { IsAllDataRequested: true } activity)
        {
            activity.AddEvent(new ActivityEvent("engine.step", tags: new ActivityTagsCollection
            {
                ["aspireai.step"] = _steps,
                ["aspireai.step.sequence_tokens"] = tokens,
                ["aspireai.step.batch_tokens"] = batchTokens,
                ["aspireai.step.batch_sequences"] = _chunks.Count,
                ["aspireai.step.seconds"] = seconds,
            }));
        }
    }

    private void Publish()
    {
        var snapshot = new EngineSnapshot(
            _scheduler.Running.Count,
            _scheduler.Waiting.Count + _inbox.Count,
            _blocks.BlockCount - _blocks.FreeBlocks,
            _blocks.FreeBlocks,
            _blocks.BlockCount,
            _blocks.PrefixQueries,
            _blocks.PrefixHits,
            _scheduler.Preemptions,
            _steps)
        {
            OffloadQueryTokens = _blocks.OffloadQueries,
            OffloadHitTokens = _blocks.OffloadHits,
            OffloadStoredBlocks = _blocks.Offload?.Stored ?? 0,
            OffloadEvictedBlocks = _blocks.Offload?.Evicted ?? 0,
            OffloadLoadedBlocks = _blocks.Offload?.Loaded ?? 0,
            OffloadUsedBlocks = _blocks.Offload?.Used ?? 0,
            OffloadTotalBlocks = _blocks.Offload?.Capacity ?? 0,
            TokensChosenOnDevice = _tokensChosenOnDevice,
            TokensChosenOnHost = _tokensChosenOnHost,
            GraphReplays = _graphs?.Replays ?? 0,
            GraphRecordings = _graphs?.Recordings ?? 0,
            GraphFailure = _graphs?.Failure,
            StepSeconds = (double)_stepTicks / Stopwatch.Frequency,
            ForwardSeconds = (double)_forwardTicks / Stopwatch.Frequency,
        };
        _snapshot = snapshot;
        StepCompleted?.Invoke(snapshot);
    }

    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        _wake.Release();
        _thread.Join();
        _offload?.Dispose(); // first: a device backend waits there for copies still queued between the tiers
        _cache.Dispose();
        _metrics.Dispose();
        _wake.Dispose();
    }
}

/// <summary>The engine's counters at one moment.</summary>
public sealed record EngineSnapshot(
    int Running,
    int Waiting,
    int UsedBlocks,
    int FreeBlocks,
    int TotalBlocks,
    long PrefixQueryTokens,
    long PrefixHitTokens,
    long Preemptions,
    long Steps)
{
    public double KvCacheUsage => (double)UsedBlocks / TotalBlocks;

    /// <summary>Prompt tokens looked up in the KV offload tier (those the device cache did not have), and how many it had.</summary>
    public long OffloadQueryTokens { get; init; }

    public long OffloadHitTokens { get; init; }

    /// <summary>Blocks copied to the offload tier, and blocks it dropped (least recently used) to make room.</summary>
    public long OffloadStoredBlocks { get; init; }

    public long OffloadEvictedBlocks { get; init; }

    /// <summary>Blocks copied back from the offload tier (prefix hits, re-admissions after preemption included).</summary>
    public long OffloadLoadedBlocks { get; init; }

    /// <summary>Host slots holding a block, of <see cref="OffloadTotalBlocks"/> (0 without a tier).</summary>
    public int OffloadUsedBlocks { get; init; }

    public int OffloadTotalBlocks { get; init; }

    /// <summary>Tokens chosen where the logits are (<see cref="IDeviceSampler"/>: only ids came back), and on the host from copied logits.</summary>
    public long TokensChosenOnDevice { get; init; }

    public long TokensChosenOnHost { get; init; }

    /// <summary>Steps replayed from CUDA graphs, graphs recorded, and why recording stopped (null while it works); see <see cref="EngineOptions.CudaGraphs"/>.</summary>
    public long GraphReplays { get; init; }

    public long GraphRecordings { get; init; }

    public string? GraphFailure { get; init; }

    /// <summary>
    /// Seconds the engine thread spent in its steps, and of them in the forward pass (with device sampling: until the ids
    /// are back); the difference is the host's own work per step — scheduling, building the batch, emitting tokens — which
    /// a GPU step waits for.
    /// </summary>
    public double StepSeconds { get; init; }

    public double ForwardSeconds { get; init; }

    /// <summary>Share of the offload tier's slots in use (0…1; 0 without a tier).</summary>
    public double KvOffloadUsage => OffloadTotalBlocks == 0 ? 0 : (double)OffloadUsedBlocks / OffloadTotalBlocks;
}

/// <summary>A submitted request: read its events; abort it.</summary>
public sealed class EngineRequestHandle
{
    private readonly Sequence _sequence;
    private readonly LlmEngine _engine;

    internal EngineRequestHandle(Sequence sequence, LlmEngine engine)
    {
        _sequence = sequence;
        _engine = engine;
    }

    public long Id => _sequence.Id;

    public ChannelReader<SequenceEvent> Events => _sequence.Output.Reader;

    internal CancellationTokenRegistration Registration { get; set; }

    /// <summary>Ends the sequence at the engine's next step (its final event has finish reason <c>abort</c>).</summary>
    public void Abort() => _engine.RequestAbort(_sequence);

    /// <summary>Every event until the finish (the last one carries the finish reason and usage).</summary>
    public async IAsyncEnumerable<SequenceEvent> ReadAllAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellation = default)
    {
        try
        {
            await foreach (var e in Events.ReadAllAsync(cancellation))
            {
                yield return e;
            }
        }
        finally
        {
            await Registration.DisposeAsync();
        }
    }
}
