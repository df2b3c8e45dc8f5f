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
public sealed record Llama3RopeScaling(float Factor, float LowFreqFactor, float HighFreqFactor, int OriginalContextLength);

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

    /// <summary>True when there is no <c>output.weight</c> and the logits reuse <c>token_embd.weight</c>.</summary>
    public bool TiedEmbeddings { get; init; }

    /// <summary>Qwen2: <c>blk.N.attn_{q,k,v}.bias</c> exist.</summary>
    public bool HasQkvBias { get; init; }

    /// <summary>Qwen3: <c>blk.N.attn_{q,k}_norm.weight</c> (per-head RMSNorm) exist.</summary>
    public bool HasQkNorm { get; init; }
}
