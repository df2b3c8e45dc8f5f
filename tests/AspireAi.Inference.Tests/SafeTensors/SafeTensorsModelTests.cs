using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Models.Quantization;
using AspireAi.Inference.Models.SafeTensors;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.SafeTensors;

/// <summary>
/// Hugging Face folders read through <see cref="SafeTensorsModel"/>: config.json, the name mapping, the llama q/k
/// permutation (checked against numpy's reshape/swapaxes written out, and by its effect on RoPE attention scores),
/// dtypes, quantize-on-load, shards and the errors for broken folders.
/// </summary>
public sealed class SafeTensorsModelTests : IDisposable
{
    // The mapping as llama.cpp's tensor_mapping.py gives it, written out separately from the engine's table.
    private static readonly (string Hf, string Gguf)[] LayerNames =
    [
        ("input_layernorm.weight", "attn_norm.weight"),
        ("self_attn.q_proj.weight", "attn_q.weight"),
        ("self_attn.k_proj.weight", "attn_k.weight"),
        ("self_attn.v_proj.weight", "attn_v.weight"),
        ("self_attn.o_proj.weight", "attn_output.weight"),
        ("self_attn.q_proj.bias", "attn_q.bias"),
        ("self_attn.k_proj.bias", "attn_k.bias"),
        ("self_attn.v_proj.bias", "attn_v.bias"),
        ("self_attn.q_norm.weight", "attn_q_norm.weight"),
        ("self_attn.k_norm.weight", "attn_k_norm.weight"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"),
        ("mlp.up_proj.weight", "ffn_up.weight"),
        ("mlp.down_proj.weight", "ffn_down.weight"),
    ];

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("F32")]
    [InlineData("F16")]
    [InlineData("BF16")]
    public void Llama_folder_maps_config_and_names_and_permutes_q_and_k(string dtype)
    {
        var tiny = new TinyHfModel { DType = dtype };
        using var model = SafeTensorsModel.Open(tiny.WriteFolder(_temp.File("llama")));

        var c = model.Config;
        Assert.Equal(ModelArchitecture.Llama, c.Architecture);
        Assert.Equal((64, 2, 4, 2, 16, 96, 48, 128), (c.EmbeddingLength, c.LayerCount, c.HeadCount, c.KvHeadCount, c.HeadDim, c.FeedForwardLength, c.VocabularySize, c.ContextLength));
        Assert.Equal((1e-5f, 10000f, RopeStyle.AdjacentPairs), (c.RmsNormEpsilon, c.RopeTheta, c.RopeStyle));
        Assert.True(c.TiedEmbeddings);
        Assert.False(c.HasQkvBias || c.HasQkNorm);
        Assert.Null(c.RopeScaling);
        Assert.Null(c.RopeFrequencyFactors);

        var tensors = tiny.CreateTensors();
        Assert.Equal(tensors.Count, model.TensorNames.Count);
        foreach (var (name, values, shape) in tensors)
        {
            var gguf = GgufName(name);
            Assert.True(model.TryGetTensor(gguf, out var view), gguf);
            Assert.Equal(shape.Reverse(), view.Shape);
            // Matrices keep the checkpoint's dtype; vectors become F32, as llama.cpp's converter writes them.
            Assert.Equal(shape.Length == 1 ? GgmlType.F32 : Ggml(dtype), view.Type);
            var expected = name.EndsWith("q_proj.weight") ? NumpyPermute(values, shape, tiny.Heads)
                : name.EndsWith("k_proj.weight") ? NumpyPermute(values, shape, tiny.KvHeads)
                : values;
            Assert.True(expected.SequenceEqual(Floats(view)), $"{name} → {gguf} differs");
        }

        Assert.False(model.TryGetTensor("output.weight", out _));
    }

    [Fact]
    public void Unconverted_matrices_are_read_in_place_from_the_mapped_file()
    {
        var tiny = new TinyHfModel { DType = "BF16" };
        using var model = SafeTensorsModel.Open(tiny.WriteFolder(_temp.File("inplace")));
        Assert.True(model.TryGetTensor("blk.0.attn_v.weight", out var first));
        Assert.True(model.TryGetTensor("blk.0.attn_v.weight", out var again));
        Assert.True(model.TryGetTensor("blk.1.ffn_up.weight", out var other));
        Assert.Equal(first.Data, again.Data);
        // Both lie in the same mapping, at the distance the header gives (no copies were made).
        using var file = SafeTensorsFile.Open(Path.Combine(model.Path, "model.safetensors"));
        var distance = file.FindTensor("model.layers.1.mlp.up_proj.weight")!.FileOffset - file.FindTensor("model.layers.0.self_attn.v_proj.weight")!.FileOffset;
        Assert.Equal(distance, other.Data - first.Data);
    }

    [Fact]
    public void Qwen2_keeps_rope_halves_and_maps_qkv_biases()
    {
        var tiny = new TinyHfModel { ModelType = "qwen2", Tied = false };
        using var model = SafeTensorsModel.Open(tiny.WriteFolder(_temp.File("qwen2")));

        Assert.Equal(ModelArchitecture.Qwen2, model.Config.Architecture);
        Assert.Equal(RopeStyle.NeoX, model.Config.RopeStyle);
        Assert.True(model.Config.HasQkvBias);
        Assert.False(model.Config.TiedEmbeddings);
        foreach (var (name, values, _) in tiny.CreateTensors())
        {
            Assert.True(model.TryGetTensor(GgufName(name), out var view));
            Assert.True(values.SequenceEqual(Floats(view)), $"{name} must be copied unpermuted");
        }
    }

    [Fact]
    public void Qwen3_reads_head_dim_and_per_head_norms()
    {
        // head_dim 32 with 4 heads over a 64-wide model: q projects to 128, as Qwen3 does.
        var tiny = new TinyHfModel { ModelType = "qwen3", ExplicitHeadDim = 32, Tied = false };
        using var model = SafeTensorsModel.Open(tiny.WriteFolder(_temp.File("qwen3")));

        var c = model.Config;
        Assert.Equal((ModelArchitecture.Qwen3, 32, RopeStyle.NeoX), (c.Architecture, c.HeadDim, c.RopeStyle));
        Assert.True(c.HasQkNorm);
        Assert.False(c.HasQkvBias);
        Assert.True(model.TryGetTensor("blk.1.attn_q.weight", out var q));
        Assert.Equal([64L, 128L], q.Shape);
        Assert.True(model.TryGetTensor("blk.1.attn_k_norm.weight", out var kNorm));
        Assert.Equal([32L], kNorm.Shape);
        Assert.True(model.TryGetTensor("output.weight", out _));
    }

    [Fact]
    public void Mistral_is_read_as_llama()
    {
        using var model = SafeTensorsModel.Open(new TinyHfModel { ModelType = "mistral" }.WriteFolder(_temp.File("mistral")));
        Assert.Equal(ModelArchitecture.Llama, model.Config.Architecture);
        Assert.Equal(RopeStyle.AdjacentPairs, model.Config.RopeStyle);
    }

    [Fact]
    public void Permuted_weights_with_adjacent_pair_rope_give_the_attention_scores_of_hugging_face_rope()
    {
        // Hugging Face: q = Wq·x, rotate (i, i + d/2). GGUF llama: q' = permuted(Wq)·x, rotate (2i, 2i + 1).
        // The scores q·k at two positions must agree: that is what the permutation is for.
        var tiny = new TinyHfModel { Heads = 4, KvHeads = 4, Layers = 1 };
        using var model = SafeTensorsModel.Open(tiny.WriteFolder(_temp.File("rope")));
        var hf = tiny.CreateTensors().ToDictionary(t => t.Name, t => t.Values);
        Assert.True(model.TryGetTensor("blk.0.attn_q.weight", out var q));
        Assert.True(model.TryGetTensor("blk.0.attn_k.weight", out var k));

        var random = new Random(9);
        var x = Enumerable.Range(0, tiny.Embedding).Select(_ => random.NextDouble() - 0.5).ToArray();
        var y = Enumerable.Range(0, tiny.Embedding).Select(_ => random.NextDouble() - 0.5).ToArray();
        int d = tiny.HeadDim, rows = tiny.Heads * d;
        double[] Project(float[] w, double[] v) => Enumerable.Range(0, rows).Select(r => Enumerable.Range(0, tiny.Embedding).Sum(c => w[r * tiny.Embedding + c] * v[c])).ToArray();
        double Theta(int pair) => Math.Pow(10000, -2.0 * pair / d);

        double[] RopeHalves(double[] v, int pos) => Rotate(v, pos, (h, i) => (h * d + i, h * d + i + d / 2));
        double[] RopePairs(double[] v, int pos) => Rotate(v, pos, (h, i) => (h * d + 2 * i, h * d + 2 * i + 1));
        double[] Rotate(double[] v, int pos, Func<int, int, (int, int)> pair)
        {
            var o = (double[])v.Clone();
            for (var h = 0; h < tiny.Heads; h++)
            {
                for (var i = 0; i < d / 2; i++)
                {
                    var (a, b) = pair(h, i);
                    var (cos, sin) = (Math.Cos(pos * Theta(i)), Math.Sin(pos * Theta(i)));
                    (o[a], o[b]) = (v[a] * cos - v[b] * sin, v[a] * sin + v[b] * cos);
                }
            }

            return o;
        }

        double Score(double[] qv, double[] kv, int head) => Enumerable.Range(head * d, d).Sum(i => qv[i] * kv[i]);

        var qHf = RopeHalves(Project(hf["model.layers.0.self_attn.q_proj.weight"], x), 7);
        var kHf = RopeHalves(Project(hf["model.layers.0.self_attn.k_proj.weight"], y), 3);
        var qGguf = RopePairs(Project(Floats(q), x), 7);
        var kGguf = RopePairs(Project(Floats(k), y), 3);
        for (var h = 0; h < tiny.Heads; h++)
        {
            Assert.Equal(Score(qHf, kHf, h), Score(qGguf, kGguf, h), 1e-9);
        }

        // Without the permutation, adjacent-pair RoPE would give different scores (the test can fail).
        var unpermuted = RopePairs(Project(hf["model.layers.0.self_attn.q_proj.weight"], x), 7);
        var kUnpermuted = RopePairs(Project(hf["model.layers.0.self_attn.k_proj.weight"], y), 3);
        Assert.NotEqual(Score(qHf, kHf, 0), Score(unpermuted, kUnpermuted, 0), 1e-6);
    }

    [Fact]
    public void Llama3_rope_scaling_gives_the_frequency_factors()
    {
        var scaling = new JsonObject
        {
            ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192,
        };
        // Llama 3.1 8B's head dimension (128) and base (500000) on a tiny model: 2 heads of 128 over 256.
        var tiny = new TinyHfModel
        {
            Embedding = 256, Heads = 2, KvHeads = 1, FeedForward = 64, Layers = 1, Vocabulary = 16,
            ConfigOverrides = { ["rope_scaling"] = scaling, ["rope_theta"] = 500000.0 },
        };
        using var model = SafeTensorsModel.Open(tiny.WriteFolder(_temp.File("llama3")));

        var c = model.Config;
        Assert.Equal(new Llama3RopeScaling(8, 1, 4, 8192), c.RopeScaling);
        Assert.Equal(500000f, c.RopeTheta);
        var factors = c.RopeFrequencyFactors!;
        Assert.Equal(64, factors.Length);
        // llama.cpp's converter, in float64: wavelength 2π·θ^(2i/d); < 8192/4 → 1, > 8192/1 → 8, else the smooth blend.
        for (var i = 0; i < factors.Length; i++)
        {
            var wavelength = 2 * Math.PI * Math.Pow(500000, 2.0 * i / 128);
            var expected = wavelength < 2048 ? 1 : wavelength > 8192 ? 8 : 1 / ((1 - (8192 / wavelength - 1) / 3) / 8 + (8192 / wavelength - 1) / 3);
            Assert.Equal(expected, factors[i], expected * 1e-5);
        }

        Assert.Equal(1f, factors[0]);
        Assert.Equal(8f, factors[^1]);
        Assert.Contains(factors, f => f is > 1 and < 8);
    }

    [Fact]
    public void Transformers_5_rope_parameters_are_read()
    {
        var tiny = new TinyHfModel
        {
            ConfigOverrides =
            {
                ["rope_theta"] = null,
                ["rope_parameters"] = new JsonObject { ["rope_type"] = "default", ["rope_theta"] = 1000000.0 },
            },
        };
        using var model = SafeTensorsModel.Open(tiny.WriteFolder(_temp.File("v5")));
        Assert.Equal(1000000f, model.Config.RopeTheta);
        Assert.Null(model.Config.RopeScaling);
    }

    public static TheoryData<string, string, string> BadConfigs => new()
    {
        // field, JSON value, words the error must contain
        { "model_type", "\"gemma2\"", "'gemma2' is not supported; supported: model_type llama, mistral, qwen2, qwen3 (architectures LlamaForCausalLM" },
        { "rope_scaling", """{"rope_type":"yarn","factor":4.0}""", "RoPE scaling type 'yarn' is not supported; supported: llama3" },
        { "hidden_act", "\"gelu\"", "activation 'gelu' is not supported" },
        { "num_key_value_heads", "3", "3 KV heads do not divide 4 attention heads" },
        { "hidden_size", "-64", "must be a positive integer, found -64" },
        { "attention_bias", "true", "o_proj" },
        { "rms_norm_eps", "\"small\"", "must be a number" },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public void Bad_configs_are_refused_naming_config_json_and_the_key(string key, string json, string problem)
    {
        var tiny = new TinyHfModel { ConfigOverrides = { [key] = JsonNode.Parse(json) } };
        var folder = tiny.WriteFolder(_temp.File("bad-" + key));
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorsModel.Open(folder));
        Assert.Equal(Path.Combine(folder, "config.json"), e.FilePath);
        Assert.Equal($"key '{key}'", e.Item);
        Assert.Contains(problem, e.Problem);
    }

    [Fact]
    public void An_unknown_architecture_without_model_type_lists_the_supported_ones()
    {
        var tiny = new TinyHfModel { ConfigOverrides = { ["model_type"] = null, ["architectures"] = new JsonArray("Phi3ForCausalLM") } };
        var folder = tiny.WriteFolder(_temp.File("phi"));
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorsModel.Open(folder));
        Assert.Contains("'Phi3ForCausalLM' is not supported", e.Message);
        Assert.Contains("Qwen3ForCausalLM", e.Message);
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    public void Quantize_on_load_quantizes_matrices_with_the_reference_quantizer_and_keeps_vectors_f32(GgmlType type)
    {
        // FeedForward 80: ffn_down's rows (80 values) are not whole blocks and keep the checkpoint's F16.
        var tiny = new TinyHfModel { DType = "F16", FeedForward = 80 };
        using var model = SafeTensorsModel.Open(tiny.WriteFolder(_temp.File("quant-" + type)), type);
        Assert.Equal(type, model.Quantization);

        foreach (var (name, values, shape) in tiny.CreateTensors())
        {
            Assert.True(model.TryGetTensor(GgufName(name), out var view));
            var floats = name.EndsWith("q_proj.weight") ? NumpyPermute(values, shape, tiny.Heads)
                : name.EndsWith("k_proj.weight") ? NumpyPermute(values, shape, tiny.KvHeads)
                : values;
            if (shape.Length == 1)
            {
                Assert.Equal(GgmlType.F32, view.Type);
                Assert.Equal(floats, Floats(view));
                continue;
            }

            if (shape[1] % 32 != 0)
            {
                Assert.Equal(GgmlType.F16, view.Type);
                Assert.Equal(floats, Floats(view));
                continue;
            }

            // The logits matrix (the tied embedding here) stays Q8_0 under Q4_0, as llama-quantize keeps it finer.
            var expectedType = type == GgmlType.Q4_0 && name == "model.embed_tokens.weight" ? GgmlType.Q8_0 : type;
            Assert.Equal(expectedType, view.Type);
            var rowBytes = (int)GgmlTypeInfo.RowBytes(expectedType, shape[1]);
            var expected = new byte[rowBytes * shape[0]];
            for (var r = 0; r < shape[0]; r++)
            {
                ReferenceQuantizer.QuantizeRow(expectedType, floats.AsSpan((int)(r * shape[1]), (int)shape[1]), expected.AsSpan(r * rowBytes, rowBytes));
            }

            Assert.True(expected.AsSpan().SequenceEqual(view.Bytes), $"{name} quantized differently");
            Assert.Equal(0L, (long)view.Data % 64);
        }
    }

    [Fact]
    public void Quantize_to_an_unsupported_type_is_an_argument_error()
    {
        var folder = new TinyHfModel().WriteFolder(_temp.File("q6"));
        Assert.Throws<ArgumentException>(() => SafeTensorsModel.Open(folder, GgmlType.Q6_K));
    }

    [Fact]
    public void A_sharded_folder_reads_the_same_as_a_single_file()
    {
        var tiny = new TinyHfModel { DType = "BF16", Tied = false };
        using var single = SafeTensorsModel.Open(tiny.WriteFolder(_temp.File("single")));
        var shardedFolder = tiny.WriteFolder(_temp.File("sharded"), shards: 3);
        Assert.Equal(3, Directory.GetFiles(shardedFolder, "*.safetensors").Length);
        using var sharded = SafeTensorsModel.Open(shardedFolder);

        Assert.Equal(single.Config, sharded.Config);
        Assert.Equal(single.TensorNames.Order(), sharded.TensorNames.Order());
        foreach (var name in single.TensorNames)
        {
            Assert.True(single.TryGetTensor(name, out var a));
            Assert.True(sharded.TryGetTensor(name, out var b));
            Assert.Equal(a.Type, b.Type);
            Assert.True(a.Bytes.SequenceEqual(b.Bytes), name);
        }
    }

    [Fact]
    public void Index_problems_name_the_index_or_shard_and_the_tensor()
    {
        var tiny = new TinyHfModel { Layers = 1 };

        // A shard the index names is missing.
        var missing = tiny.WriteFolder(_temp.File("missing-shard"), shards: 2);
        File.Delete(Path.Combine(missing, "model-00002-of-00002.safetensors"));
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorsModel.Open(missing));
        Assert.Equal(Path.Combine(missing, "model.safetensors.index.json"), e.FilePath);
        Assert.Contains("is in shard 'model-00002-of-00002.safetensors', which is missing from the folder", e.Message);
        Assert.StartsWith("tensor '", e.Item);

        // The index lists a tensor the shard does not have.
        var extra = tiny.WriteFolder(_temp.File("extra-entry"), shards: 2);
        EditIndex(extra, map => map["model.layers.0.mlp.extra.weight"] = "model-00001-of-00002.safetensors");
        e = Assert.Throws<ModelFormatException>(() => SafeTensorsModel.Open(extra));
        Assert.Equal(Path.Combine(extra, "model-00001-of-00002.safetensors"), e.FilePath);
        Assert.Equal("tensor 'model.layers.0.mlp.extra.weight'", e.Item);
        Assert.Contains("listed in model.safetensors.index.json but missing from this shard", e.Problem);

        // A shard holds a tensor the index puts elsewhere.
        var moved = tiny.WriteFolder(_temp.File("moved"), shards: 2);
        EditIndex(moved, map => map["model.embed_tokens.weight"] = "model-00002-of-00002.safetensors");
        e = Assert.Throws<ModelFormatException>(() => SafeTensorsModel.Open(moved));
        Assert.Equal("tensor 'model.embed_tokens.weight'", e.Item);
        Assert.Contains("listed in model.safetensors.index.json as being in 'model-00002-of-00002.safetensors'", e.Problem);

        // A shard path that leaves the folder.
        var escape = tiny.WriteFolder(_temp.File("escape"), shards: 2);
        EditIndex(escape, map => map["model.norm.weight"] = "../model-00001-of-00002.safetensors");
        e = Assert.Throws<ModelFormatException>(() => SafeTensorsModel.Open(escape));
        Assert.Contains("is not the name of a .safetensors file inside the model folder", e.Message);

        static void EditIndex(string folder, Action<JsonObject> edit)
        {
            var path = Path.Combine(folder, "model.safetensors.index.json");
            var index = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            edit(index["weight_map"]!.AsObject());
            File.WriteAllText(path, index.ToJsonString());
        }
    }

    [Fact]
    public void Missing_stray_and_misshapen_tensors_name_the_file_and_tensor()
    {
        var tiny = new TinyHfModel();
        var tensors = tiny.CreateTensors();

        var e = OpenWith("missing", tensors.Where(t => t.Name != "model.layers.1.mlp.up_proj.weight"));
        Assert.Equal("tensor 'model.layers.1.mlp.up_proj.weight'", e.Item);
        Assert.Contains("is required by the llama architecture but missing", e.Problem);

        e = OpenWith("stray", tensors.Append(("model.layers.0.self_attn.o_proj.bias", new float[64], [64L])));
        Assert.Equal("tensor 'model.layers.0.self_attn.o_proj.bias'", e.Item);
        Assert.Contains("has no counterpart in the llama architecture", e.Problem);

        e = OpenWith("beyond", tensors.Append(("model.layers.2.input_layernorm.weight", new float[64], [64L])));
        Assert.Equal("tensor 'model.layers.2.input_layernorm.weight'", e.Item);

        e = OpenWith("shape", tensors.Select(t => t.Name == "model.layers.0.mlp.down_proj.weight" ? (t.Name, t.Values, [96L, 64L]) : t));
        Assert.Equal("tensor 'model.layers.0.mlp.down_proj.weight'", e.Item);
        Assert.Contains("has shape [96, 64], expected [64, 96] from config.json", e.Problem);

        e = OpenWith("only-layer-1-bias", tensors.Append(("model.layers.1.self_attn.q_proj.bias", new float[64], [64L])));
        Assert.Contains("not in every layer", e.Problem);

        var untied = new TinyHfModel { Tied = false };
        e = OpenWith("untied", untied.CreateTensors().Where(t => t.Name != "lm_head.weight"), untied);
        Assert.Equal("tensor 'lm_head.weight'", e.Item);
        Assert.Contains("tie_word_embeddings is false", e.Problem);

        ModelFormatException OpenWith(string name, IEnumerable<(string Name, float[] Values, long[] Shape)> list, TinyHfModel? model = null)
        {
            var folder = (model ?? tiny).WriteFolder(_temp.File(name));
            var writer = new SafeTensorsWriter();
            foreach (var t in list)
            {
                writer.Add(t.Name, "F32", t.Values, t.Shape);
            }

            var path = writer.WriteTo(Path.Combine(folder, "model.safetensors"));
            var error = Assert.Throws<ModelFormatException>(() => SafeTensorsModel.Open(folder));
            Assert.Equal(path, error.FilePath);
            return error;
        }
    }

    [Fact]
    public void A_tied_checkpoint_that_saves_lm_head_reads_the_embedding_once()
    {
        using var model = SafeTensorsModel.Open(new TinyHfModel { SaveTiedHead = true }.WriteFolder(_temp.File("tied-head")));
        Assert.True(model.Config.TiedEmbeddings);
        Assert.False(model.TryGetTensor("output.weight", out _));
    }

    [Fact]
    public void A_folder_without_weights_or_config_is_a_clear_error()
    {
        var empty = Directory.CreateDirectory(_temp.File("empty")).FullName;
        var e = Assert.Throws<ModelFormatException>(() => SafeTensorsModel.Open(empty));
        Assert.Equal(Path.Combine(empty, "config.json"), e.FilePath);

        File.WriteAllText(Path.Combine(empty, "config.json"), new TinyHfModel().Config().ToJsonString());
        e = Assert.Throws<ModelFormatException>(() => SafeTensorsModel.Open(empty));
        Assert.Equal(empty, e.FilePath);
        Assert.Contains("has no model.safetensors", e.Problem);

        Assert.Throws<DirectoryNotFoundException>(() => SafeTensorsModel.Open(_temp.File("nowhere")));
    }

    [Fact]
    public void Dispose_frees_converted_tensors_and_refuses_later_reads()
    {
        var model = SafeTensorsModel.Open(new TinyHfModel().WriteFolder(_temp.File("dispose")), GgmlType.Q8_0);
        Assert.True(model.TryGetTensor("blk.0.attn_q.weight", out _));
        model.Dispose();
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => model.TryGetTensor("blk.0.attn_q.weight", out _));
    }

    [Fact]
    public void ModelLoader_opens_files_as_gguf_and_folders_as_safetensors()
    {
        var folder = new TinyHfModel().WriteFolder(_temp.File("loader"));
        using (var source = ModelLoader.Open(folder, GgmlType.Q4_0))
        {
            Assert.IsType<SafeTensorsModel>(source);
        }

        using (var viaFile = ModelLoader.Open(Path.Combine(folder, "model.safetensors")))
        {
            Assert.IsType<SafeTensorsModel>(viaFile);
        }

        var gguf = new TinyGgufModel().CreateWriter().WriteTo(_temp.File("tiny.gguf"));
        using (var source = ModelLoader.Open(gguf))
        {
            Assert.IsType<GgufFile>(source);
        }

        var e = Assert.Throws<ArgumentException>(() => ModelLoader.Open(gguf, GgmlType.Q8_0));
        Assert.Contains("quantize-on-load applies to Hugging Face safetensors folders", e.Message);
        var missing = Assert.Throws<FileNotFoundException>(() => ModelLoader.Open(_temp.File("nope.gguf")));
        Assert.Contains("nope.gguf", missing.Message);
    }

    /// <summary>numpy's <c>w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(rows, cols)</c>, by strides.</summary>
    internal static float[] NumpyPermute(float[] w, long[] shape, int heads)
    {
        var rows = (int)shape[0];
        var cols = shape.Length > 1 ? (int)shape[1] : 1;
        var half = rows / heads / 2;
        // C-order strides of the (heads, 2, half, cols) view.
        int s0 = 2 * half * cols, s1 = half * cols, s2 = cols;
        var result = new float[w.Length];
        var k = 0;
        // Walk the swapped view (heads, half, 2, cols) in C order: axis 1 and 2 exchanged.
        for (var a = 0; a < heads; a++)
        {
            for (var b = 0; b < half; b++)
            {
                for (var c = 0; c < 2; c++)
                {
                    for (var d = 0; d < cols; d++)
                    {
                        result[k++] = w[a * s0 + b * s2 + c * s1 + d];
                    }
                }
            }
        }

        return result;
    }

    internal static string GgufName(string hf)
    {
        switch (hf)
        {
            case "model.embed_tokens.weight":
                return "token_embd.weight";
            case "model.norm.weight":
                return "output_norm.weight";
            case "lm_head.weight":
                return "output.weight";
        }

        var parts = hf.Split('.', 4);
        return $"blk.{parts[2]}.{LayerNames.Single(n => n.Hf == parts[3]).Gguf}";
    }

    internal static GgmlType Ggml(string dtype) => dtype switch { "F32" => GgmlType.F32, "F16" => GgmlType.F16, _ => GgmlType.BF16 };

    internal static float[] Floats(TensorView view) => view.Type switch
    {
        GgmlType.F32 => MemoryMarshal.Cast<byte, float>(view.Bytes).ToArray(),
        GgmlType.F16 => FloatCodec.Decode("F16", view.Bytes),
        GgmlType.BF16 => FloatCodec.Decode("BF16", view.Bytes),
        _ => throw new ArgumentException($"{view.Name} is {view.Type}"),
    };
}
