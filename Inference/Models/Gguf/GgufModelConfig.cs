namespace AspireAi.Inference.Models.Gguf;

/// <summary>
/// Builds a <see cref="ModelConfig"/> from a GGUF file's <c>&lt;arch&gt;.*</c> keys (names as llama.cpp's <c>llama-arch.cpp</c>)
/// and checks that every tensor the forward pass reads is present with the shape the hyperparameters imply.
/// </summary>
internal static class GgufModelConfig
{
    private static readonly Dictionary<string, ModelArchitecture> Architectures = new(StringComparer.Ordinal)
    {
        ["llama"] = ModelArchitecture.Llama,
        ["qwen2"] = ModelArchitecture.Qwen2,
        ["qwen3"] = ModelArchitecture.Qwen3,
    };

    public static ModelConfig Build(GgufFile file)
    {
        var archName = file.GetString("general.architecture");
        if (!Architectures.TryGetValue(archName, out var architecture))
        {
            throw file.KeyError("general.architecture",
                $"architecture '{archName}' is not supported; supported: {string.Join(", ", Architectures.Keys)}");
        }

        var embedding = Positive(file, $"{archName}.embedding_length");
        var layers = Positive(file, $"{archName}.block_count");
        var heads = Positive(file, $"{archName}.attention.head_count");
        var kvHeads = file.ContainsKey($"{archName}.attention.head_count_kv") ? Positive(file, $"{archName}.attention.head_count_kv") : heads;
        if (heads % kvHeads != 0)
        {
            throw file.KeyError($"{archName}.attention.head_count_kv", $"{kvHeads} KV heads do not divide {heads} query heads");
        }

        int headDim;
        if (file.ContainsKey($"{archName}.attention.key_length"))
        {
            headDim = Positive(file, $"{archName}.attention.key_length");
        }
        else if (embedding % heads == 0)
        {
            headDim = embedding / heads;
        }
        else
        {
            throw file.KeyError($"{archName}.attention.head_count", $"{heads} heads do not divide the embedding length {embedding} and there is no attention.key_length");
        }

        if ((headDim & 1) != 0)
        {
            throw file.KeyError($"{archName}.attention.key_length", $"head dimension {headDim} is odd; RoPE rotates pairs");
        }

        if (file.ContainsKey($"{archName}.attention.value_length") && Positive(file, $"{archName}.attention.value_length") != headDim)
        {
            throw file.KeyError($"{archName}.attention.value_length", $"differs from the key length {headDim}, which these architectures never do");
        }

        if (file.ContainsKey($"{archName}.rope.dimension_count") && Positive(file, $"{archName}.rope.dimension_count") != headDim)
        {
            throw file.KeyError($"{archName}.rope.dimension_count", $"partial rotary embeddings (rotating fewer than all {headDim} dimensions) are not supported");
        }

        var ropeTheta = file.TryGetFloat32($"{archName}.rope.freq_base", out var theta) ? theta : 10000f;
        if (!(ropeTheta > 1) || float.IsInfinity(ropeTheta))
        {
            throw file.KeyError($"{archName}.rope.freq_base", $"{ropeTheta} is not a usable RoPE base");
        }

        var epsilon = file.GetFloat32($"{archName}.attention.layer_norm_rms_epsilon");
        if (!(epsilon is > 0 and < 1))
        {
            throw file.KeyError($"{archName}.attention.layer_norm_rms_epsilon", $"{epsilon} is not a usable RMSNorm epsilon");
        }

        var feedForward = Positive(file, $"{archName}.feed_forward_length");
        var context = Positive(file, $"{archName}.context_length");

        var tensors = new TensorChecks(file);
        var vocab = tensors.Require("token_embd.weight", embedding, -1);
        if (file.TryGetStringArray("tokenizer.ggml.tokens", out var tokens) && tokens.Length != vocab)
        {
            throw file.KeyError("tokenizer.ggml.tokens", $"has {tokens.Length} tokens but token_embd.weight has {vocab} rows");
        }

        tensors.Require("output_norm.weight", embedding);
        var tied = !tensors.Optional("output.weight", embedding, vocab);
        var qkvBias = file.FindTensor("blk.0.attn_q.bias") is not null;
        var qkNorm = file.FindTensor("blk.0.attn_q_norm.weight") is not null;
        for (var i = 0; i < layers; i++)
        {
            var p = $"blk.{i}.";
            tensors.Require(p + "attn_norm.weight", embedding);
            tensors.Require(p + "attn_q.weight", embedding, heads * headDim);
            tensors.Require(p + "attn_k.weight", embedding, kvHeads * headDim);
            tensors.Require(p + "attn_v.weight", embedding, kvHeads * headDim);
            tensors.Require(p + "attn_output.weight", heads * headDim, embedding);
            tensors.Require(p + "ffn_norm.weight", embedding);
            tensors.Require(p + "ffn_gate.weight", embedding, feedForward);
            tensors.Require(p + "ffn_up.weight", embedding, feedForward);
            tensors.Require(p + "ffn_down.weight", feedForward, embedding);
            if (qkvBias)
            {
                tensors.Require(p + "attn_q.bias", heads * headDim);
                tensors.Require(p + "attn_k.bias", kvHeads * headDim);
                tensors.Require(p + "attn_v.bias", kvHeads * headDim);
            }

            if (qkNorm)
            {
                tensors.Require(p + "attn_q_norm.weight", headDim);
                tensors.Require(p + "attn_k_norm.weight", headDim);
            }
        }

        return new ModelConfig
        {
            Architecture = architecture,
            EmbeddingLength = embedding,
            LayerCount = layers,
            HeadCount = heads,
            KvHeadCount = kvHeads,
            HeadDim = headDim,
            FeedForwardLength = feedForward,
            VocabularySize = vocab,
            ContextLength = context,
            RmsNormEpsilon = epsilon,
            RopeTheta = ropeTheta,
            RopeStyle = architecture == ModelArchitecture.Llama ? RopeStyle.AdjacentPairs : RopeStyle.NeoX,
            RopeScaling = ReadLlama3Scaling(file, archName),
            RopeFrequencyFactors = ReadRopeFactors(file, headDim),
            TiedEmbeddings = tied,
            HasQkvBias = qkvBias,
            HasQkNorm = qkNorm,
        };
    }

    private static int Positive(GgufFile file, string key)
    {
        var value = file.GetUInt32(key);
        return value is > 0 and <= int.MaxValue ? (int)value : throw file.KeyError(key, $"{value} is not a positive int32");
    }

    // llama.cpp writes Llama 3.1 scaling as the rope_freqs.weight tensor; the scaling keys (when a writer adds them) are
    // informational only, and the low/high frequency factors have no GGUF key: their Hugging Face defaults are assumed.
    private static Llama3RopeScaling? ReadLlama3Scaling(GgufFile file, string arch)
    {
        if (!file.TryGetString($"{arch}.rope.scaling.type", out var type) || type != "llama3")
        {
            return null;
        }

        var factor = file.TryGetFloat32($"{arch}.rope.scaling.factor", out var f) ? f : 8f;
        var original = file.TryGetInt32($"{arch}.rope.scaling.original_context_length", out var o) ? o : 8192;
        return new Llama3RopeScaling(factor, 1f, 4f, original);
    }

    private static float[]? ReadRopeFactors(GgufFile file, int headDim)
    {
        if (!file.TryGetTensor("rope_freqs.weight", out var tensor))
        {
            return null;
        }

        if (tensor.Type != GgmlType.F32 || tensor.Shape.Length != 1 || tensor.Shape[0] != headDim / 2)
        {
            throw new ModelFormatException(file.Path, "tensor 'rope_freqs.weight'",
                $"expected F32 [{headDim / 2}] (one factor per rotated pair), found {tensor.Type} [{string.Join(", ", tensor.Shape)}]");
        }

        var factors = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(tensor.Bytes).ToArray();
        foreach (var factor in factors)
        {
            if (!(factor > 0) || float.IsInfinity(factor))
            {
                throw new ModelFormatException(file.Path, "tensor 'rope_freqs.weight'", $"factor {factor} is not a positive finite number");
            }
        }

        return factors;
    }

    /// <summary>Checks tensor presence and shape (ggml order: row length first) with errors naming the tensor.</summary>
    private readonly struct TensorChecks(GgufFile file)
    {
        /// <summary>Requires the tensor; a dimension given as -1 is free and its value is returned (else the row count).</summary>
        public int Require(string name, params int[] shape)
        {
            var info = file.FindTensor(name)
                ?? throw new ModelFormatException(file.Path, $"tensor '{name}'", $"is required by the {file.Architecture} architecture but missing from the file");
            return Check(info, shape);
        }

        public bool Optional(string name, params int[] shape)
        {
            if (file.FindTensor(name) is not { } info)
            {
                return false;
            }

            Check(info, shape);
            return true;
        }

        private int Check(GgufTensorInfo info, int[] expected)
        {
            var free = 0L;
            var ok = info.Shape.Length == expected.Length;
            for (var d = 0; ok && d < expected.Length; d++)
            {
                if (expected[d] == -1)
                {
                    free = info.Shape[d];
                }
                else
                {
                    ok = info.Shape[d] == expected[d];
                }
            }

            if (!ok || free > int.MaxValue)
            {
                var want = string.Join(", ", expected.Select(e => e == -1 ? "n" : e.ToString()));
                throw new ModelFormatException(file.Path, $"tensor '{info.Name}'",
                    $"has shape [{string.Join(", ", info.Shape)}], expected [{want}] from the model's hyperparameters");
            }

            return (int)(expected.Length > 1 && expected[^1] == -1 ? free : info.Shape[^1]);
        }
    }
}
