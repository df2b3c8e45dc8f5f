using System.Runtime.InteropServices;

namespace AspireAi.Inference.Backends.Sampling;

/// <summary>
/// How one logits row's token is chosen (<see cref="TokenChooser"/>), laid out as sampling.cu's <c>SamplingRow</c> (48 bytes:
/// nine 4-byte fields, 4 bytes of padding, the 8-byte uniform at offset 40) so that an array of them is uploaded as is.
/// </summary>
/// <param name="Temperature">0 (or so small that 1/T overflows) takes the argmax; otherwise weights are exp((l − max) / T).</param>
/// <param name="TopK">Keep tokens whose weight is at least the K-th largest (ties kept); 0 keeps all.</param>
/// <param name="TopP">Keep tokens whose weight is at least the smallest weight of the nucleus (ties kept); 1 keeps all.</param>
/// <param name="MinP">Keep tokens whose weight is at least MinP (the most likely token weighs 1); 0 keeps all.</param>
/// <param name="RepetitionPenalty">Applied, with the two below, to this row's <see cref="TokenPenalty"/> entries; 1 is off.</param>
/// <param name="PenaltyStart">This row's first entry in the penalty list.</param>
/// <param name="PenaltyCount">This row's entries (distinct tokens of its prompt and output); 0 without penalties.</param>
/// <param name="Uniform">The row's draw in [0, 1) from its sequence's random stream (unused when greedy).</param>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct SamplingRow(
    float Temperature,
    int TopK,
    float TopP,
    float MinP,
    float RepetitionPenalty,
    float PresencePenalty,
    float FrequencyPenalty,
    int PenaltyStart,
    int PenaltyCount,
    double Uniform)
{
    /// <summary>A greedy row without penalties.</summary>
    public static SamplingRow Greedy { get; } = new(0, 0, 1, 0, 1, 0, 0, 0, 0, 0);

    /// <summary>Checks a launch's arguments on the host (a device kernel must not read out of range).</summary>
    public static void Validate(DeviceTensor logits, ReadOnlySpan<SamplingRow> rows, ReadOnlySpan<TokenPenalty> penalties, Span<int> ids)
    {
        if (rows.Length > logits.Rows || rows.Length > ids.Length)
        {
            throw new ArgumentException($"{rows.Length} sampling rows for a logits tensor of {logits.Rows} rows and {ids.Length} ids.", nameof(rows));
        }

        for (var r = 0; r < rows.Length; r++)
        {
            var row = rows[r];
            if (row.PenaltyStart < 0 || row.PenaltyCount < 0 || (long)row.PenaltyStart + row.PenaltyCount > penalties.Length)
            {
                throw new ArgumentException($"Sampling row {r}'s penalties [{row.PenaltyStart}, +{row.PenaltyCount}) are outside the list of {penalties.Length}.", nameof(rows));
            }

            if (!(row.Uniform >= 0 && row.Uniform < 1) || row.TopK < 0 || !(row.TopP > 0 && row.TopP <= 1) || !(row.MinP >= 0 && row.MinP <= 1))
            {
                throw new ArgumentOutOfRangeException(nameof(rows), row, $"Sampling row {r} needs uniform in [0, 1), top_k ≥ 0, top_p in (0, 1] and min_p in [0, 1].");
            }
        }

        foreach (var penalty in penalties)
        {
            if ((uint)penalty.Token >= (uint)logits.Columns)
            {
                throw new ArgumentOutOfRangeException(nameof(penalties), penalty.Token, $"Penalised token {penalty.Token} is outside the vocabulary of {logits.Columns}.");
            }
        }
    }
}

/// <summary>A token of a sequence's prompt or output and how often it was generated (sampling.cu's <c>TokenPenalty</c>).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct TokenPenalty(int Token, int OutputCount);
