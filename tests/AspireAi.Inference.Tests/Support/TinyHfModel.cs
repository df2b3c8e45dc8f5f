using System.Text.Json;
using System.Text.Json.Nodes;

namespace AspireAi.Inference.Tests.Support;

/// <summary>
/// A tiny random-weight Hugging Face checkpoint (llama, mistral, qwen2 or qwen3): <c>config.json</c> and safetensors in one
/// file or several shards with <c>model.safetensors.index.json</c>, tensors under Hugging Face names in PyTorch layout
/// ([out, in], row-major), values already rounded to <see cref="DType"/> so they read back exactly.
/// </summary>
public sealed record TinyHfModel
{
    public string ModelType { get; init; } = "llama";
    public string DType { get; init; } = "F32";
    public int Embedding { get; init; } = 64;
    public int Layers { get; init; } = 2;
    public int Heads { get; init; } = 4;
    public int KvHeads { get; init; } = 2;
    /// <summary>Written as head_dim when set (Qwen3 style); otherwise Embedding / Heads.</summary>
    public int? ExplicitHeadDim { get; init; }
    public int FeedForward { get; init; } = 96;
    public int Vocabulary { get; init; } = 48;
    public int Context { get; init; } = 128;
    public bool Tied { get; init; } = true;
    /// <summary>Also write lm_head.weight when <see cref="Tied"/> (some exporters do).</summary>
    public bool SaveTiedHead { get; init; }
    public int Seed { get; init; } = 1;
    /// <summary>Extra or replaced config.json fields.</summary>
    public Dictionary<string, JsonNode?> ConfigOverrides { get; init; } = [];

    public int HeadDim => ExplicitHeadDim ?? Embedding / Heads;

    public bool HasBias => ModelType == "qwen2";

    public bool HasQkNorm => ModelType == "qwen3";

    /// <summary>Every tensor by Hugging Face name, in the order a checkpoint lists them.</summary>
    public List<(string Name, float[] Values, long[] Shape)> CreateTensors()
    {
        var random = new Random(Seed);
        var tensors = new List<(string, float[], long[])>();
        void Add(string name, params long[] shape)
        {
            var n = shape.Aggregate(1L, (a, b) => a * b);
            var values = Enumerable.Range(0, (int)n).Select(_ => (float)(random.NextDouble() * 2 - 1) * 0.5f).ToArray();
            tensors.Add((name, FloatCodec.RoundTo(DType, values), shape));
        }

        long e = Embedding, q = Heads * HeadDim, kv = KvHeads * HeadDim, ff = FeedForward, v = Vocabulary;
        Add("model.embed_tokens.weight", v, e);
        for (var i = 0; i < Layers; i++)
        {
            var p = $"model.layers.{i}.";
            Add(p + "input_layernorm.weight", e);
            Add(p + "self_attn.q_proj.weight", q, e);
            Add(p + "self_attn.k_proj.weight", kv, e);
            Add(p + "self_attn.v_proj.weight", kv, e);
            if (HasBias)
            {
                Add(p + "self_attn.q_proj.bias", q);
                Add(p + "self_attn.k_proj.bias", kv);
                Add(p + "self_attn.v_proj.bias", kv);
            }

            if (HasQkNorm)
            {
                Add(p + "self_attn.q_norm.weight", HeadDim);
                Add(p + "self_attn.k_norm.weight", HeadDim);
            }

            Add(p + "self_attn.o_proj.weight", e, q);
            Add(p + "post_attention_layernorm.weight", e);
            Add(p + "mlp.gate_proj.weight", ff, e);
            Add(p + "mlp.up_proj.weight", ff, e);
            Add(p + "mlp.down_proj.weight", e, ff);
        }

        Add("model.norm.weight", e);
        if (!Tied || SaveTiedHead)
        {
            Add("lm_head.weight", v, e);
        }

        return tensors;
    }

    public JsonObject Config()
    {
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(ModelType switch
            {
                "llama" => "LlamaForCausalLM",
                "mistral" => "MistralForCausalLM",
                "qwen2" => "Qwen2ForCausalLM",
                _ => "Qwen3ForCausalLM",
            }),
            ["model_type"] = ModelType,
            ["hidden_size"] = Embedding,
            ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KvHeads,
            ["intermediate_size"] = FeedForward,
            ["vocab_size"] = Vocabulary,
            ["max_position_embeddings"] = Context,
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10000.0,
            ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = Tied,
            ["torch_dtype"] = DType switch { "F32" => "float32", "F16" => "float16", _ => "bfloat16" },
        };
        if (ExplicitHeadDim is { } headDim)
        {
            config["head_dim"] = headDim;
        }

        foreach (var (key, value) in ConfigOverrides)
        {
            config[key] = value?.DeepClone();
        }

        return config;
    }

    /// <summary>Writes config.json and the weights into <paramref name="folder"/> (created), split over <paramref name="shards"/> files.</summary>
    public string WriteFolder(string folder, int shards = 1)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), Config().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var tensors = CreateTensors();
        if (shards == 1)
        {
            var writer = new SafeTensorsWriter();
            tensors.ForEach(t => writer.Add(t.Name, DType, t.Values, t.Shape));
            writer.WriteTo(Path.Combine(folder, "model.safetensors"));
            return folder;
        }

        var weightMap = new JsonObject();
        var perShard = (tensors.Count + shards - 1) / shards;
        for (var s = 0; s < shards; s++)
        {
            var name = $"model-{s + 1:D5}-of-{shards:D5}.safetensors";
            var writer = new SafeTensorsWriter();
            foreach (var t in tensors.Skip(s * perShard).Take(perShard))
            {
                writer.Add(t.Name, DType, t.Values, t.Shape);
                weightMap[t.Name] = name;
            }

            writer.WriteTo(Path.Combine(folder, name));
        }

        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = 0 }, ["weight_map"] = weightMap };
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"), index.ToJsonString());
        return folder;
    }
}
