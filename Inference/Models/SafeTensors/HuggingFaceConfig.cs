using System.Text.Json;

namespace AspireAi.Inference.Models.SafeTensors;

/// <summary>
/// Reads a Hugging Face <c>config.json</c> into a <see cref="ModelConfig"/>, with transformers' defaults for the keys a
/// config may leave out (<c>LlamaConfig</c>, <c>Qwen2Config</c>, <c>Qwen3Config</c>). The tensor-dependent flags
/// (<see cref="ModelConfig.HasQkvBias"/>, <see cref="ModelConfig.HasQkNorm"/>) are left false for the caller to set from the
/// weights, as the GGUF reader does.
/// </summary>
internal static class HuggingFaceConfig
{
    /// <summary>model_type → architecture; <c>architectures[0]</c> is the fallback when model_type is missing.</summary>
    private static readonly Dictionary<string, ModelArchitecture> ModelTypes = new(StringComparer.Ordinal)
    {
        ["llama"] = ModelArchitecture.Llama,
        ["mistral"] = ModelArchitecture.Llama,
        ["qwen2"] = ModelArchitecture.Qwen2,
        ["qwen3"] = ModelArchitecture.Qwen3,
    };

    private static readonly Dictionary<string, ModelArchitecture> ArchitectureClasses = new(StringComparer.Ordinal)
    {
        ["LlamaForCausalLM"] = ModelArchitecture.Llama,
        ["MistralForCausalLM"] = ModelArchitecture.Llama,
        ["Qwen2ForCausalLM"] = ModelArchitecture.Qwen2,
        ["Qwen3ForCausalLM"] = ModelArchitecture.Qwen3,
    };

    public static string SupportedList =>
        $"model_type {string.Join(", ", ModelTypes.Keys)} (architectures {string.Join(", ", ArchitectureClasses.Keys)})";

    public static ModelConfig Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new ModelFormatException(path, null, "is missing: a Hugging Face model folder needs config.json beside its *.safetensors");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, null, $"is not valid JSON: {e.Message}", e);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ModelFormatException(path, null, $"must be a JSON object, found {document.RootElement.ValueKind}");
            }

            try
            {
                return Build(new Json(path, document.RootElement));
            }
            catch (InvalidOperationException e)
            {
                // A \uD800-style escape that is not valid Unicode: System.Text.Json refuses to transcode it.
                throw new ModelFormatException(path, null, $"has a string that is not valid Unicode: {e.Message}", e);
            }
        }
    }

    private static ModelConfig Build(Json json)
    {
        var architecture = ReadArchitecture(json);
        var activation = json.String("hidden_act") ?? "silu";
        if (activation != "silu")
        {
            throw json.Error("hidden_act", $"activation '{activation}' is not supported; these architectures use silu (SwiGLU)");
        }

        var embedding = json.PositiveInt("hidden_size");
        var layers = json.PositiveInt("num_hidden_layers");
        var heads = json.PositiveInt("num_attention_heads");
        var kvHeads = json.Has("num_key_value_heads") ? json.PositiveInt("num_key_value_heads") : heads;
        if (heads % kvHeads != 0)
        {
            throw json.Error("num_key_value_heads", $"{kvHeads} KV heads do not divide {heads} attention heads");
        }

        int headDim;
        if (json.Has("head_dim"))
        {
            headDim = json.PositiveInt("head_dim");
        }
        else if (embedding % heads == 0)
        {
            headDim = embedding / heads;
        }
        else
        {
            throw json.Error("num_attention_heads", $"{heads} heads do not divide hidden_size {embedding} and there is no head_dim");
        }

        if ((headDim & 1) != 0)
        {
            throw json.Error("head_dim", $"head dimension {headDim} is odd; RoPE rotates pairs");
        }

        if (json.Bool("attention_bias") == true && architecture == ModelArchitecture.Llama)
        {
            throw json.Error("attention_bias", "a bias on the attention output projection (o_proj) is not supported");
        }

        if (json.Bool("mlp_bias") == true)
        {
            throw json.Error("mlp_bias", "biases on the feed-forward projections are not supported");
        }

        // transformers 5 groups the RoPE settings under rope_parameters; 4.x writes rope_theta and rope_scaling at the top.
        var rope = json.Object("rope_parameters");
        var thetaKey = rope is not null && rope.Value.Has("rope_theta") ? "rope_parameters.rope_theta" : "rope_theta";
        var ropeTheta = json.Has(thetaKey) ? json.Float(thetaKey) : 10000f;
        if (!(ropeTheta > 1) || float.IsInfinity(ropeTheta))
        {
            throw json.Error(thetaKey, $"{ropeTheta} is not a usable RoPE base");
        }

        var scaling = ReadRopeScaling(json, rope is not null ? "rope_parameters" : "rope_scaling");
        // Transformers' defaults: 1e-6 (LlamaConfig, Qwen2Config, Qwen3Config); 2048 / 32768 / 32768 positions.
        var epsilon = json.Has("rms_norm_eps") ? json.Float("rms_norm_eps") : 1e-6f;
        if (!(epsilon is > 0 and < 1))
        {
            throw json.Error("rms_norm_eps", $"{epsilon} is not a usable RMSNorm epsilon");
        }

        var context = json.Has("max_position_embeddings") ? json.PositiveInt("max_position_embeddings")
            : architecture == ModelArchitecture.Llama ? 2048 : 32768;

        return new ModelConfig
        {
            Architecture = architecture,
            EmbeddingLength = embedding,
            LayerCount = layers,
            HeadCount = heads,
            KvHeadCount = kvHeads,
            HeadDim = headDim,
            FeedForwardLength = json.PositiveInt("intermediate_size"),
            VocabularySize = json.PositiveInt("vocab_size"),
            ContextLength = context,
            RmsNormEpsilon = epsilon,
            RopeTheta = ropeTheta,
            // Llama's q/k rows are permuted on load into GGUF llama's adjacent-pair layout; Qwen keeps Hugging Face's halves.
            RopeStyle = architecture == ModelArchitecture.Llama ? RopeStyle.AdjacentPairs : RopeStyle.NeoX,
            RopeScaling = scaling,
            RopeFrequencyFactors = scaling?.FrequencyFactors(headDim, ropeTheta),
            TiedEmbeddings = json.Bool("tie_word_embeddings") ?? false,
        };
    }

    private static ModelArchitecture ReadArchitecture(Json json)
    {
        var modelType = json.String("model_type");
        if (modelType is not null)
        {
            return ModelTypes.TryGetValue(modelType, out var a) ? a
                : throw json.Error("model_type", $"'{modelType}' is not supported; supported: {SupportedList}");
        }

        var classes = json.StringArray("architectures");
        if (classes is null || classes.Length == 0)
        {
            throw json.Error("model_type", $"is missing and there is no 'architectures' list; supported: {SupportedList}");
        }

        return ArchitectureClasses.TryGetValue(classes[0], out var b) ? b
            : throw json.Error("architectures", $"'{classes[0]}' is not supported; supported: {SupportedList}");
    }

    private static Llama3RopeScaling? ReadRopeScaling(Json json, string key)
    {
        var scaling = json.Object(key);
        if (scaling is null)
        {
            return null;
        }

        var s = scaling.Value;
        var type = s.String("rope_type") ?? s.String("type") ?? "default";
        switch (type)
        {
            case "default":
                return null;
            case "llama3":
                var factor = s.Float("factor");
                var low = s.Float("low_freq_factor");
                var high = s.Float("high_freq_factor");
                var original = s.PositiveInt("original_max_position_embeddings");
                if (!(factor >= 1) || !(low > 0) || !(high > low))
                {
                    throw json.Error(key, $"llama3 scaling needs factor >= 1 and 0 < low_freq_factor < high_freq_factor; found {factor}, {low}, {high}");
                }

                return new Llama3RopeScaling(factor, low, high, original);
            default:
                throw json.Error(key, $"RoPE scaling type '{type}' is not supported; supported: llama3 (and none)");
        }
    }

    /// <summary>Typed reads of one JSON object, with errors naming the file and the dotted key.</summary>
    private readonly struct Json(string path, JsonElement element, string prefix = "")
    {
        public ModelFormatException Error(string key, string problem) =>
            new(path, $"key '{(key.Contains('.') ? key : prefix + key)}'", problem);

        public bool Has(string key) => TryGet(key, out var v) && v.ValueKind != JsonValueKind.Null;

        public Json? Object(string key) => TryGet(key, out var v) && v.ValueKind != JsonValueKind.Null
            ? v.ValueKind == JsonValueKind.Object ? new Json(path, v, prefix + key + ".") : throw Error(key, $"must be an object, found {v.ValueKind}")
            : null;

        public string? String(string key) => TryGet(key, out var v) && v.ValueKind != JsonValueKind.Null
            ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw Error(key, $"must be a string, found {v.GetRawText()}")
            : null;

        public string[]? StringArray(string key) => TryGet(key, out var v) && v.ValueKind != JsonValueKind.Null
            ? v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String)
                ? v.EnumerateArray().Select(e => e.GetString()!).ToArray()
                : throw Error(key, $"must be an array of strings, found {v.GetRawText()}")
            : null;

        public bool? Bool(string key) => TryGet(key, out var v) && v.ValueKind != JsonValueKind.Null
            ? v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Error(key, $"must be true or false, found {v.GetRawText()}")
            : null;

        public int PositiveInt(string key) => TryGet(key, out var v)
            ? v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && n > 0 ? n : throw Error(key, $"must be a positive integer, found {v.GetRawText()}")
            : throw Error(key, "is required but missing");

        public float Float(string key) => TryGet(key, out var v)
            ? v.ValueKind == JsonValueKind.Number ? (float)v.GetDouble() : throw Error(key, $"must be a number, found {v.GetRawText()}")
            : throw Error(key, "is required but missing");

        // A dotted key reads a nested field ("rope_parameters.rope_theta").
        private bool TryGet(string key, out JsonElement value)
        {
            value = element;
            foreach (var part in key.Split('.'))
            {
                if (value.ValueKind != JsonValueKind.Object || !value.TryGetProperty(part, out value))
                {
                    return false;
                }
            }

            return true;
        }
    }
}
