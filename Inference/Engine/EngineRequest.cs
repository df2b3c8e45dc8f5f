using System.Diagnostics;

namespace AspireAi.Inference.Engine;

/// <summary>Scheduling class of a request: lower runs first and is preempted last.</summary>
public enum RequestPriority
{
    Interactive = 0,
    /// <summary>OpenAI Batch API work: fills idle capacity, first to be preempted.</summary>
    Batch = 1,
}

/// <summary>One sequence to generate, as handed to <see cref="LlmEngine.Submit"/>.</summary>
public sealed record EngineRequest
{
    /// <summary>The prompt's token ids (BOS included when the model wants it).</summary>
    public required int[] PromptTokenIds { get; init; }

    public SamplingParams Sampling { get; init; } = SamplingParams.Greedy;

    /// <summary>Most tokens to generate; generation also ends at the model's context length.</summary>
    public int MaxTokens { get; init; } = 16;

    /// <summary>Ids that end generation (not part of the output); usually the tokenizer's end-of-generation ids.</summary>
    public IReadOnlySet<int> StopTokenIds { get; init; } = new HashSet<int>();

    /// <summary>Strings that end generation (not part of the text).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Alternatives to report per generated token (0: none); any value &gt; 0 also reports the chosen token's logprob.</summary>
    public int TopLogprobs { get; init; }

    /// <summary>Whether the chosen token's log-probability is reported.</summary>
    public bool Logprobs { get; init; }

    /// <summary>
    /// Reports the log-probability of every prompt token after the first under the model's distribution at the position
    /// before it, computed during prefill (OpenAI's <c>echo</c> with <c>logprobs</c>, vLLM's <c>prompt_logprobs</c>), with
    /// this many alternatives each; null: none. Such a sequence bypasses the prefix cache for its prompt (a cached position
    /// has no logits).
    /// </summary>
    public int? PromptLogprobs { get; init; }

    public RequestPriority Priority { get; init; } = RequestPriority.Interactive;

    /// <summary>Whose request this is (the gateway's <c>X-AspireAi-Tenant</c>), for the per-tenant cap of running sequences.</summary>
    public string Tenant { get; init; } = "default";

    /// <summary>Restricts which tokens may come next (structured output, forced tool calls); null: any token.</summary>
    public ITokenConstraint? Constraint { get; init; }

    /// <summary>The request's span; the engine adds an event per step it takes part in.</summary>
    public Activity? Activity { get; init; }
}

/// <summary>
/// Something a sequence produced: a token (with its text delta, possibly empty while a character or a possible stop string
/// is incomplete), trailing text at the end (<see cref="TokenId"/> −1), or the end (<see cref="FinishReason"/> set, with usage).
/// </summary>
/// <remarks>A request that asked for <see cref="EngineRequest.PromptLogprobs"/> gets them once, in an event without a token
/// (<see cref="TokenId"/> −1) before its first generated token.</remarks>
public readonly record struct SequenceEvent(
    int TokenId,
    string Text,
    float Logprob,
    TokenLogprob[]? TopLogprobs,
    string? FinishReason = null,
    SequenceUsage? Usage = null,
    IReadOnlyList<PromptTokenLogprob>? PromptLogprobs = null);

/// <summary>
/// A prompt token's log-probability given the tokens before it, its rank in that distribution (1: the most likely), and
/// the most likely alternatives when asked for.
/// </summary>
public readonly record struct PromptTokenLogprob(int Id, float Logprob, int Rank, TokenLogprob[]? TopLogprobs);

/// <summary>Token counts of a finished sequence; <see cref="CachedPromptTokens"/> were served from the prefix cache.</summary>
public sealed record SequenceUsage(int PromptTokens, int CompletionTokens, int CachedPromptTokens, int Preemptions);

/// <summary>A request the engine refused before doing any work.</summary>
public sealed class AdmissionException(string message, string code, string? param = null, TimeSpan? retryAfter = null) : Exception(message)
{
    /// <summary>OpenAI-style error code: <c>context_length_exceeded</c> or <c>queue_full</c>.</summary>
    public string Code { get; } = code;

    public string? Param { get; } = param;

    /// <summary>Set when trying again later can succeed (a full queue).</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;
}
