namespace AspireAi.Inference.Models;

/// <summary>Architectures the forward pass implements; anything else is refused at load with this list.</summary>
public enum ModelArchitecture
{
    /// <summary>Llama 2/3/3.1/3.2, TinyLlama, SmolLM, Mistral.</summary>
    Llama,

    /// <summary>Llama with biases on the q/k/v projections.</summary>
    Qwen2,

    /// <summary>Llama with per-head RMSNorm on q and k before RoPE.</summary>
    Qwen3,
}

/// <summary>How RoPE pairs dimensions: GGUF <c>llama</c> rotates adjacent pairs (0,1),(2,3)…; NeoX-style (Qwen) rotates (i, i + d/2).</summary>
public enum RopeStyle
{
    AdjacentPairs,
    NeoX,
}

/// <summary>Llama 3.1's frequency-dependent RoPE scaling (<c>rope_scaling.rope_type = "llama3"</c>).</summary>
public sealed record Llama3RopeScaling(float Factor, float LowFreqFactor, float HighFreqFactor, int OriginalContextLength)
{
    /// <summary>
    /// The per-pair frequency divisors this scaling implies for a head of <paramref name="headDim"/> dimensions, computed as
    /// llama.cpp's converter does (<c>LlamaModel.generate_extra_tensors</c>): 1 for short wavelengths, <see cref="Factor"/> for
    /// long ones, a smooth blend between.
    /// </summary>
    public float[] FrequencyFactors(int headDim, float ropeTheta)
    {
        var factors = new float[headDim / 2];
        var lowFreqWavelength = OriginalContextLength / LowFreqFactor;
        var highFreqWavelength = OriginalContextLength / HighFreqFactor;
        for (var i = 0; i < factors.Length; i++)
        {
            // In float32, like the converter's torch computation.
            var freq = 1.0f / MathF.Pow(ropeTheta, 2 * i / (float)headDim);
            var wavelength = 2 * MathF.PI / freq;
            if (wavelength < highFreqWavelength)
            {
                factors[i] = 1;
            }
            else if (wavelength > lowFreqWavelength)
            {
                factors[i] = Factor;
            }
            else
            {
                var smooth = (OriginalContextLength / wavelength - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
                factors[i] = 1 / ((1 - smooth) / Factor + smooth);
            }
        }

        return factors;
    }
}

/// <summary>
/// The hyperparameters of a decoder-only transformer, read from GGUF metadata or a Hugging Face <c>config.json</c>.
/// Tensor names everywhere in the engine are GGUF's (<c>token_embd.weight</c>, <c>blk.N.attn_q.weight</c>, …);
/// the safetensors reader maps Hugging Face names onto them.
/// </summary>
public sealed record ModelConfig
{
    public required ModelArchitecture Architecture { get; init; }
    public required int EmbeddingLength { get; init; }
    public required int LayerCount { get; init; }
    public required int HeadCount { get; init; }
    public required int KvHeadCount { get; init; }
    public required int HeadDim { get; init; }
    public required int FeedForwardLength { get; init; }
    public required int VocabularySize { get; init; }
    public required int ContextLength { get; init; }
    public required float RmsNormEpsilon { get; init; }
    public required float RopeTheta { get; init; }
    public RopeStyle RopeStyle { get; init; } = RopeStyle.AdjacentPairs;
    public Llama3RopeScaling? RopeScaling { get; init; }

    /// <summary>
    /// Per-pair divisors of the RoPE frequencies (<c>HeadDim / 2</c> values), as llama.cpp's <c>rope_freqs.weight</c>:
    /// pair i rotates by <c>pos * theta^(-2i/HeadDim) / RopeFrequencyFactors[i]</c>. Llama 3.1+ GGUF files carry them as a
    /// tensor; for Hugging Face folders they are computed from <see cref="RopeScaling"/>. Null means all 1.
    /// </summary>
    public float[]? RopeFrequencyFactors { get; init; }

    /// <summary>True when there is no <c>output.weight</c> and the logits reuse <c>token_embd.weight</c>.</summary>
    public bool TiedEmbeddings { get; init; }

    /// <summary>Qwen2: <c>blk.N.attn_{q,k,v}.bias</c> exist.</summary>
    public bool HasQkvBias { get; init; }

    /// <summary>Qwen3: <c>blk.N.attn_{q,k}_norm.weight</c> (per-head RMSNorm) exist.</summary>
    public bool HasQkNorm { get; init; }
}
