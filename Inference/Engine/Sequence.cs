using System.Diagnostics;
using System.Threading.Channels;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Engine;

public enum SequenceStatus
{
    Waiting,
    Running,
    Finished,
}

/// <summary>
/// One sequence inside the engine: its tokens (prompt, then generated), how many of them have keys/values in the cache, its
/// block table, and its per-request state (sampler, detokenizer, stop strings, constraint). Touched only by the engine thread,
/// except <see cref="Output"/>, which the request reads.
/// </summary>
internal sealed class Sequence
{
    private readonly List<int> _tokens;

    public Sequence(long id, EngineRequest request, int vocabularySize, ITokenizer? tokenizer)
    {
        Id = id;
        Request = request;
        _tokens = new List<int>(request.PromptTokenIds.Length + request.MaxTokens);
        _tokens.AddRange(request.PromptTokenIds);
        PromptLength = request.PromptTokenIds.Length;
        VocabularySize = vocabularySize;
        Detokenizer = tokenizer is null ? null : new StreamingDetokenizer(tokenizer);
        StopStrings = new StopStringMatcher(request.StopStrings);
        ArrivalTimestamp = Stopwatch.GetTimestamp();
        PromptLogprobs = request.PromptLogprobs is null ? null : new List<PromptTokenLogprob>(PromptLength - 1);
    }

    public long Id { get; }

    public EngineRequest Request { get; }

    public int VocabularySize { get; }

    /// <summary>Prompt then generated tokens.</summary>
    public IReadOnlyList<int> Tokens => _tokens;

    public int TokenCount => _tokens.Count;

    public int PromptLength { get; }

    public int GeneratedCount => _tokens.Count - PromptLength;

    /// <summary>Tokens (from the start) whose keys/values are in the cache; the rest are computed by coming steps.</summary>
    public int ComputedTokens { get; set; }

    /// <summary>Prompt tokens found in the prefix cache at first admission (reported as <c>cached_tokens</c>).</summary>
    public int CachedPromptTokens { get; set; }

    public bool Admitted { get; set; }

    /// <summary>KV blocks, in position order: position p lives in <c>BlockTable[p / blockSize]</c>.</summary>
    public List<int> BlockTable { get; } = [];

    /// <summary>Chain hashes of the leading full blocks already registered in the prefix cache (one per block).</summary>
    public List<ulong> BlockHashes { get; } = [];

    public SequenceStatus Status { get; set; } = SequenceStatus.Waiting;

    public int Preemptions { get; set; }

    /// <summary>Created at first admission (a waiting request holds no vocabulary-sized buffers); kept across preemption
    /// so that its random stream continues where it was.</summary>
    public Sampler? Sampler { get; set; }

    public StreamingDetokenizer? Detokenizer { get; }

    public StopStringMatcher StopStrings { get; }

    public Channel<SequenceEvent> Output { get; } = Channel.CreateUnbounded<SequenceEvent>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = true, AllowSynchronousContinuations = false });

    public long ArrivalTimestamp { get; }

    public long FirstTokenTimestamp { get; set; }

    public long LastTokenTimestamp { get; set; }

    /// <summary>Set (from any thread) when the request is cancelled; the engine drops the sequence at its next step.</summary>
    public volatile bool AbortRequested;

    /// <summary>Why the sequence ends after this step's sampling (set and consumed within one step).</summary>
    public string? PendingFinish { get; set; }

    public int UncomputedTokens => _tokens.Count - ComputedTokens;

    /// <summary>Prompt logprobs of tokens 1, 2, … so far (kept across preemption); null when the request wants none.</summary>
    public List<PromptTokenLogprob>? PromptLogprobs { get; }

    /// <summary>Whether some prompt logprobs are still to be computed: the prefill of this sequence needs logits per position.</summary>
    public bool PromptLogprobsPending => PromptLogprobs is { } list && list.Count < PromptLength - 1;

    /// <summary>Whether position <paramref name="position"/>'s logits give a prompt logprob not computed yet (that of the next token).</summary>
    public bool NeedsPromptLogprobAt(int position) =>
        PromptLogprobs is { } list && position + 1 < PromptLength && position + 1 > list.Count;

    /// <summary>Whether the prompt logprobs went out (once, before the first generated token).</summary>
    public bool PromptLogprobsSent { get; set; }

    public void Append(int token) => _tokens.Add(token);
}
