using System.Runtime.InteropServices;
using AspireAi.Inference.Backends.Sampling;

namespace AspireAi.Inference.Engine;

/// <summary>
/// One sequence's token choice: its parameters, its penalty state (prompt tokens, output counts) and its random stream.
/// Penalties, then <see cref="TokenChooser"/> (temperature → min-p → top-k → top-p → a draw, vLLM's order). A sampled
/// token consumes exactly one <see cref="NextUniform"/> (greedy ones none), whether it is chosen here
/// (<see cref="Sample"/>) or on a device (<see cref="DeviceRow"/>), so a seeded request gives the same tokens either way.
/// </summary>
/// <remarks>
/// Memory per sequence is what it uses: the vocabulary-sized scratch of <see cref="Sample"/> is made at its first call (a
/// sequence whose tokens the device chooses never makes it), and the penalty state is kept only for requests with
/// penalties, as counts of the tokens seen rather than arrays over the vocabulary. Dense state cost 17 bytes per
/// vocabulary entry per sequence: 2.6 MB each for Qwen3's 151,936 tokens, 660 MB of large-object allocations for the
/// nano-vllm workload's 256 sequences. Sampling allocates nothing per token.
/// </remarks>
public sealed class Sampler
{
    private readonly int _vocabularySize;
    private readonly SamplingParams _params;
    private readonly Random _random;
    private readonly Dictionary<int, int>? _outputCounts;
    private readonly HashSet<int>? _inPrompt;
    private readonly List<int> _penalized = [];
    private TokenChooser? _chooser;
    private float[]? _adjusted;

    public Sampler(int vocabularySize, SamplingParams parameters)
    {
        parameters.Validate();
        _vocabularySize = vocabularySize;
        _params = parameters;
        _random = parameters.Seed is { } seed ? new Random(seed) : new Random();
        if (parameters.HasPenalties)
        {
            _outputCounts = [];
            _inPrompt = [];
        }
    }

    /// <summary>Registers the prompt (the repetition penalty covers prompt and output, as in vLLM).</summary>
    public void SetPrompt(ReadOnlySpan<int> prompt)
    {
        if (_inPrompt is null)
        {
            return;
        }

        foreach (var id in prompt)
        {
            if ((uint)id < (uint)_vocabularySize && _inPrompt.Add(id) && !_outputCounts!.ContainsKey(id))
            {
                _penalized.Add(id);
            }
        }
    }

    /// <summary>Records a generated token (penalties count it from now on).</summary>
    public void Accept(int id)
    {
        if (_outputCounts is null)
        {
            return;
        }

        ref var count = ref CollectionsMarshal.GetValueRefOrAddDefault(_outputCounts, id, out _);
        if (count++ == 0 && !_inPrompt!.Contains(id))
        {
            _penalized.Add(id);
        }
    }

    /// <summary>The next number in [0, 1) of this sequence's random stream: one per sampled (non-greedy) token.</summary>
    public double NextUniform() => _random.NextDouble();

    /// <summary>Chooses the next token from <paramref name="rawLogits"/> (left unchanged, so logprobs can still be read from it).</summary>
    public int Sample(ReadOnlySpan<float> rawLogits)
    {
        _adjusted ??= new float[_vocabularySize];
        _chooser ??= new TokenChooser(_vocabularySize);
        var logits = _adjusted.AsSpan(0, rawLogits.Length);
        rawLogits.CopyTo(logits);
        foreach (var id in _penalized)
        {
            logits[id] = TokenChooser.Penalize(logits[id], OutputCount(id), _params.RepetitionPenalty, _params.PresencePenalty, _params.FrequencyPenalty);
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
        foreach (var id in _penalized)
        {
            penalties.Add(new TokenPenalty(id, OutputCount(id)));
        }

        return Row(_params.IsGreedy ? 0 : NextUniform(), start, penalties.Count - start);
    }

    /// <summary>How often <paramref name="id"/> was generated (a penalized token: only requests with penalties have any).</summary>
    private int OutputCount(int id) => _outputCounts!.GetValueOrDefault(id);

    public static int ArgMax(ReadOnlySpan<float> logits) => TokenChooser.ArgMax(logits);

    private SamplingRow Row(double uniform, int penaltyStart, int penaltyCount) => new(
        _params.Temperature, _params.TopK, _params.TopP, _params.MinP,
        _params.RepetitionPenalty, _params.PresencePenalty, _params.FrequencyPenalty, penaltyStart, penaltyCount, uniform);
}
