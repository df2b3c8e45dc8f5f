using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Models.SafeTensors;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.SafeTensors;

/// <summary>
/// The real stories15M written out as a Hugging Face checkpoint (names mapped back, q/k rows put back into Hugging Face's
/// rotate-halves order as transformers' conversion of a llama2.c model does), then read through <see cref="SafeTensorsModel"/>:
/// it must give back the shared GGUF files exactly, including the quantized ones that llama.cpp's llama-quantize made.
/// </summary>
public sealed class SharedStoriesSafeTensorsTests(SharedStoriesSafeTensorsTests.Folder folder) : IClassFixture<SharedStoriesSafeTensorsTests.Folder>
{
    private readonly string _folder = folder.Path;

    [Theory]
    [InlineData("stories15M-f32.gguf", null)]
    [InlineData("stories15M-q8_0.gguf", GgmlType.Q8_0)]
    [InlineData("stories15M-q4_0.gguf", GgmlType.Q4_0)]
    public void Reading_the_folder_gives_the_shared_gguf_tensors_exactly(string sharedFile, GgmlType? quantize)
    {
        using var expected = GgufFile.Open(TestPaths.SharedModel(sharedFile));
        using var model = SafeTensorsModel.Open(_folder, quantize);

        Assert.Equal(expected.Config with { RopeFrequencyFactors = null }, model.Config);
        Assert.Equal(expected.Tensors.Select(t => t.Name).Order(), model.TensorNames.Order());
        foreach (var info in expected.Tensors)
        {
            Assert.True(expected.TryGetTensor(info.Name, out var e));
            Assert.True(model.TryGetTensor(info.Name, out var a));
            Assert.Equal((info.Name, e.Type, string.Join(",", e.Shape)), (a.Name, a.Type, string.Join(",", a.Shape)));
            Assert.True(e.Bytes.SequenceEqual(a.Bytes), $"{sharedFile}: tensor '{info.Name}' differs");
        }
    }

    /// <summary>The folder, written once for the class.</summary>
    public sealed class Folder : IDisposable
    {
        private readonly TempDirectory _temp = new();

        public Folder()
        {
            Path = Directory.CreateDirectory(_temp.File("stories15M-hf")).FullName;
            Write(Path);
        }

        public string Path { get; }

        public void Dispose() => _temp.Dispose();
    }

    private static void Write(string folder)
    {
        using var gguf = GgufFile.Open(TestPaths.SharedModel("stories15M-f32.gguf"));
        var c = gguf.Config;
        var writer = new SafeTensorsWriter();
        foreach (var info in gguf.Tensors)
        {
            Assert.True(gguf.TryGetTensor(info.Name, out var view));
            var values = MemoryMarshal.Cast<byte, float>(view.Bytes).ToArray();
            var shape = info.Shape.Reverse().ToArray();
            if (info.Name.EndsWith("attn_q.weight") || info.Name.EndsWith("attn_k.weight"))
            {
                values = NumpyUnpermute(values, shape, info.Name.EndsWith("attn_q.weight") ? c.HeadCount : c.KvHeadCount);
            }

            writer.AddF32(HuggingFaceName(info.Name), values, shape);
        }

        writer.WriteTo(System.IO.Path.Combine(folder, "model.safetensors"));
        File.WriteAllText(System.IO.Path.Combine(folder, "config.json"), new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["hidden_size"] = c.EmbeddingLength,
            ["intermediate_size"] = c.FeedForwardLength,
            ["num_hidden_layers"] = c.LayerCount,
            ["num_attention_heads"] = c.HeadCount,
            ["num_key_value_heads"] = c.KvHeadCount,
            ["vocab_size"] = c.VocabularySize,
            ["max_position_embeddings"] = c.ContextLength,
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10000.0,
            ["tie_word_embeddings"] = true,
            ["hidden_act"] = "silu",
        }.ToJsonString());
    }

    /// <summary>The inverse of llama.cpp's permute: numpy <c>w.reshape(n_head, d/2, 2, cols).swapaxes(1, 2).reshape(rows, cols)</c>.</summary>
    private static float[] NumpyUnpermute(float[] w, long[] shape, int heads)
    {
        int rows = (int)shape[0], cols = (int)shape[1], half = rows / heads / 2;
        int s0 = 2 * half * cols, s1 = 2 * cols, s2 = cols;
        var result = new float[w.Length];
        var k = 0;
        for (var a = 0; a < heads; a++)
        {
            for (var b = 0; b < 2; b++)
            {
                for (var c = 0; c < half; c++)
                {
                    for (var d = 0; d < cols; d++)
                    {
                        result[k++] = w[a * s0 + c * s1 + b * s2 + d];
                    }
                }
            }
        }

        return result;
    }

    private static string HuggingFaceName(string gguf) => gguf switch
    {
        "token_embd.weight" => "model.embed_tokens.weight",
        "output_norm.weight" => "model.norm.weight",
        _ => gguf.Split('.') is [_, var layer, var kind, _]
            ? $"model.layers.{layer}." + kind switch
            {
                "attn_norm" => "input_layernorm.weight",
                "attn_q" => "self_attn.q_proj.weight",
                "attn_k" => "self_attn.k_proj.weight",
                "attn_v" => "self_attn.v_proj.weight",
                "attn_output" => "self_attn.o_proj.weight",
                "ffn_norm" => "post_attention_layernorm.weight",
                "ffn_gate" => "mlp.gate_proj.weight",
                "ffn_up" => "mlp.up_proj.weight",
                "ffn_down" => "mlp.down_proj.weight",
                _ => throw new ArgumentException(gguf),
            }
            : throw new ArgumentException(gguf),
    };
}
