using AspireAi.Inference.Backends.Sampling;

namespace AspireAi.Inference.Engine;

/// <summary>
/// One sequence's token choice: its parameters, its penalty state (prompt tokens, output counts) and its random stream.
/// Penalties, then <see cref="TokenChooser"/> (temperature → min-p → top-k → top-p → a draw, vLLM's order). A sampled
/// token consumes exactly one <see cref="NextUniform"/> (greedy ones none), whether it is chosen here
/// (<see cref="Sample"/>) or on a device (<see cref="DeviceRow"/>), so a seeded request gives the same tokens either way.
/// Scratch arrays are sized once to the vocabulary, so sampling allocates nothing per token.
/// </summary>
public sealed class Sampler
{
    private readonly SamplingParams _params;
    private readonly Random _random;
    private readonly TokenChooser _chooser;
    private readonly float[] _adjusted;
    private readonly int[] _outputCounts;
    private readonly bool[] _inPrompt;
    private readonly List<int> _penalized = [];

    public Sampler(int vocabularySize, SamplingParams parameters)
    {
        parameters.Validate();
        _params = parameters;
        _random = parameters.Seed is { } seed ? new Random(seed) : new Random();
        _chooser = new TokenChooser(vocabularySize);
        _adjusted = new float[vocabularySize];
        _outputCounts = new int[vocabularySize];
        _inPrompt = new bool[vocabularySize];
    }

    /// <summary>Registers the prompt (the repetition penalty covers prompt and output, as in vLLM).</summary>
    public void SetPrompt(ReadOnlySpan<int> prompt)
    {
        foreach (var id in prompt)
        {
            if ((uint)id < (uint)_inPrompt.Length && !_inPrompt[id])
            {
                _inPrompt[id] = true;
                if (_outputCounts[id] == 0)
                {
                    _penalized.Add(id);
                }
            }
        }
    }

    /// <summary>Records a generated token (penalties count it from now on).</summary>
    public void Accept(int id)
    {
        if (_outputCounts[id]++ == 0 && !_inPrompt[id])
        {
            _penalized.Add(id);
        }
    }

    /// <summary>The next number in [0, 1) of this sequence's random stream: one per sampled (non-greedy) token.</summary>
    public double NextUniform() => _random.NextDouble();

    /// <summary>Chooses the next token from <paramref name="rawLogits"/> (left unchanged, so logprobs can still be read from it).</summary>
    public int Sample(ReadOnlySpan<float> rawLogits)
    {
        var logits = _adjusted.AsSpan(0, rawLogits.Length);
        rawLogits.CopyTo(logits);
        if (_params.HasPenalties)
        {
            foreach (var id in _penalized)
            {
                logits[id] = TokenChooser.Penalize(logits[id], _outputCounts[id], _params.RepetitionPenalty, _params.PresencePenalty, _params.FrequencyPenalty);
            }
        }

        return _chooser.Choose(logits, Row(_params.IsGreedy ? 0 : NextUniform(), 0, 0));
    }

    /// <summary>
    /// This sequence's next token as a device chooses it: its row (drawing its uniform now, as <see cref="Sample"/> would),
    /// with its penalty entries appended to <paramref name="penalties"/>.
    /// </summary>
    public SamplingRow DeviceRow(List<TokenPenalty> penalties)
    {
        var start = penalties.Count;
        if (_params.HasPenalties)
        {
            foreach (var id in _penalized)
            {
                penalties.Add(new TokenPenalty(id, _outputCounts[id]));
            }
        }

        return Row(_params.IsGreedy ? 0 : NextUniform(), start, penalties.Count - start);
    }

    public static int ArgMax(ReadOnlySpan<float> logits) => TokenChooser.ArgMax(logits);

    private SamplingRow Row(double uniform, int penaltyStart, int penaltyCount) => new(
        _params.Temperature, _params.TopK, _params.TopP, _params.MinP,
        _params.RepetitionPenalty, _params.PresencePenalty, _params.FrequencyPenalty, penaltyStart, penaltyCount, uniform);
}
