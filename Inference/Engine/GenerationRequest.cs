namespace AspireAi.Inference.Engine;

/// <summary>What to generate after a prompt, and what to report along the way.</summary>
public sealed record GenerationRequest
{
    public SamplingParams Sampling { get; init; } = SamplingParams.Greedy;

    /// <summary>Most tokens to generate (generation also stops at the model's context length).</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>Token ids that end generation (not included in the output); usually the tokenizer's end-of-generation ids.</summary>
    public IReadOnlySet<int> StopTokenIds { get; init; } = new HashSet<int>();

    /// <summary>Strings that end generation (not included in the text); needs a tokenizer.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Top-K alternatives to report for each generated position (0: none).</summary>
    public int TopLogprobs { get; init; }

    /// <summary>Top-K candidates for every prompt position after the first (0: none).</summary>
    public int PromptLogprobs { get; init; }
}

/// <summary>One generated token as it streams out.</summary>
public readonly record struct GeneratedToken(int Id, string Text, float Logprob, TokenLogprob[]? TopLogprobs);

/// <summary>Everything a generation produced.</summary>
public sealed record GenerationResult(
    int[] PromptTokenIds,
    int[] TokenIds,
    string Text,
    string FinishReason,
    IReadOnlyList<TokenLogprob[]>? TopLogprobs,
    IReadOnlyList<TokenLogprob[]>? PromptLogprobs);
