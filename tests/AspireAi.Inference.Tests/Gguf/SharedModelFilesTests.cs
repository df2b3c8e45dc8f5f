using System.Runtime.InteropServices;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Gguf;

/// <summary>The six stories15M files in ../shared/models, read as the README describes them.</summary>
public sealed class SharedModelFilesTests
{
    public static TheoryData<string, string> Files => new()
    {
        // file, tensor type counts as the README's table gives them
        { "stories15M-f32.gguf", "F32:56" },
        { "stories15M-f16.gguf", "F16:43 F32:13" },
        { "stories15M-q8_0.gguf", "Q8_0:43 F32:13" },
        { "stories15M-q6_k.gguf", "Q6_K:6 Q8_0:37 F32:13" },
        { "stories15M-q4_k_m.gguf", "Q4_K:4 Q6_K:2 Q5_0:34 Q8_0:3 F32:13" },
        { "stories15M-q4_0.gguf", "Q4_0:42 Q8_0:1 F32:13" },
    };

    [Theory]
    [MemberData(nameof(Files))]
    public void Each_file_loads_with_the_readme_layout(string fileName, string typeCounts)
    {
        using var file = GgufFile.Open(TestPaths.SharedModel(fileName));

        var c = file.Config;
        Assert.Equal(ModelArchitecture.Llama, c.Architecture);
        Assert.Equal((288, 6, 6, 6, 48, 768, 32000, 256), (c.EmbeddingLength, c.LayerCount, c.HeadCount, c.KvHeadCount, c.HeadDim, c.FeedForwardLength, c.VocabularySize, c.ContextLength));
        Assert.Equal(1e-5f, c.RmsNormEpsilon);
        Assert.Equal(10000f, c.RopeTheta);
        Assert.Equal(RopeStyle.AdjacentPairs, c.RopeStyle);
        Assert.True(c.TiedEmbeddings);

        var counts = file.Tensors.GroupBy(t => t.Type).OrderByDescending(g => g.Count()).ThenBy(g => g.Key)
            .ToDictionary(g => g.Key.ToString(), g => g.Count());
        var expected = typeCounts.Split(' ').Select(s => s.Split(':')).ToDictionary(p => p[0], p => int.Parse(p[1]));
        Assert.Equal(expected.OrderBy(p => p.Key), counts.OrderBy(p => p.Key));

        // Norms stay F32 in every file; each tensor's bytes are exactly its type's size for its shape.
        Assert.All(file.Tensors.Where(t => t.Name.EndsWith("norm.weight")), t => Assert.Equal(GgmlType.F32, t.Type));
        Assert.All(file.Tensors, t => Assert.Equal(GgmlTypeInfo.RowBytes(t.Type, t.Shape[0]) * (t.ElementCount / t.Shape[0]), t.ByteLength));

        var tokens = file.GetStringArray("tokenizer.ggml.tokens");
        Assert.Equal(["<unk>", "<s>", "</s>", "<0x00>"], tokens[..4]);
        Assert.Equal("<0xFF>", tokens[258]);
        Assert.Equal("llama", file.GetString("tokenizer.ggml.model"));
        Assert.Equal(1u, file.GetUInt32("tokenizer.ggml.bos_token_id"));
        Assert.Equal(2u, file.GetUInt32("tokenizer.ggml.eos_token_id"));
    }

    [Fact]
    public void F16_weights_are_the_f32_weights_rounded()
    {
        using var f32 = GgufFile.Open(TestPaths.SharedModel("stories15M-f32.gguf"));
        using var f16 = GgufFile.Open(TestPaths.SharedModel("stories15M-f16.gguf"));
        Assert.True(f32.TryGetTensor("blk.3.attn_q.weight", out var a));
        Assert.True(f16.TryGetTensor("blk.3.attn_q.weight", out var h));
        Assert.Equal(GgmlType.F16, h.Type);
        Assert.Equal(a.Shape, h.Shape);

        var floats = MemoryMarshal.Cast<byte, float>(a.Bytes);
        var halves = MemoryMarshal.Cast<byte, Half>(h.Bytes);
        Assert.Equal(288 * 288, floats.Length);
        for (var i = 0; i < floats.Length; i++)
        {
            Assert.Equal((Half)floats[i], halves[i]);
        }
    }
}
