namespace AspireAi.Inference.Engine;

/// <summary>How the next token is chosen from the logits (vLLM's and OpenAI's parameters, with their neutral defaults).</summary>
public sealed record SamplingParams
{
    /// <summary>0 means greedy (argmax).</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Keep the K most likely tokens; 0 keeps all.</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of most likely tokens whose probability reaches P; 1 keeps all.</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Drop tokens less likely than MinP × the most likely one; 0 keeps all.</summary>
    public float MinP { get; init; }

    /// <summary>Divides positive (multiplies negative) logits of tokens already in the prompt or output; 1 is off.</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>Subtracted once from the logit of every token already generated (OpenAI's presence_penalty).</summary>
    public float PresencePenalty { get; init; }

    /// <summary>Subtracted per occurrence from the logit of every generated token (OpenAI's frequency_penalty).</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>Fixes the random stream: the same seed, prompt and parameters give the same tokens.</summary>
    public int? Seed { get; init; }

    public static SamplingParams Greedy { get; } = new() { Temperature = 0 };

    public bool IsGreedy => Temperature == 0;

    /// <summary>Whether any penalty changes the logits (tokens of the prompt and output need tracking).</summary>
    public bool HasPenalties => RepetitionPenalty != 1 || PresencePenalty != 0 || FrequencyPenalty != 0;

    /// <summary>Throws naming the first field out of range.</summary>
    public void Validate()
    {
        static void Fail(string field, object value, string rule) =>
            throw new ArgumentOutOfRangeException(field, value, $"{field} must be {rule}.");

        if (!(Temperature >= 0) || float.IsInfinity(Temperature))
        {
            Fail("temperature", Temperature, "a finite number ≥ 0");
        }

        if (TopK < 0)
        {
            Fail("top_k", TopK, "≥ 0 (0 = off)");
        }

        if (!(TopP > 0 && TopP <= 1))
        {
            Fail("top_p", TopP, "in (0, 1]");
        }

        if (!(MinP >= 0 && MinP <= 1))
        {
            Fail("min_p", MinP, "in [0, 1]");
        }

        if (!(RepetitionPenalty > 0) || float.IsInfinity(RepetitionPenalty))
        {
            Fail("repetition_penalty", RepetitionPenalty, "a finite number > 0");
        }

        if (!(PresencePenalty >= -2 && PresencePenalty <= 2))
        {
            Fail("presence_penalty", PresencePenalty, "in [-2, 2]");
        }

        if (!(FrequencyPenalty >= -2 && FrequencyPenalty <= 2))
        {
            Fail("frequency_penalty", FrequencyPenalty, "in [-2, 2]");
        }
    }
}
