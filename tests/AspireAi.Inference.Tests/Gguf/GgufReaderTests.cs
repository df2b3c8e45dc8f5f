using System.Runtime.InteropServices;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Gguf;

public sealed class GgufReaderTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData(2u)]
    [InlineData(3u)]
    public void Metadata_of_every_type_round_trips(uint version)
    {
        var w = new GgufWriter { Version = version }
            .Add("u8", (byte)200).Add("i8", (sbyte)-100).Add("u16", (ushort)60000).Add("i16", (short)-30000)
            .Add("u32", 4_000_000_000u).Add("i32", -2_000_000_000).Add("f32", 1.5f).Add("bool", true)
            .Add("str", "héllo ▁wörld 🙂").Add("u64", ulong.MaxValue).Add("i64", long.MinValue).Add("f64", Math.PI)
            .AddArray("a.str", ["a", "", "<0x0A>", "日本"]).AddArray("a.f32", [0.5f, -2f]).AddArray("a.i32", [1, -2, 3])
            .AddArray("a.u8", new byte[] { 1, 2 }).AddArray("a.bool", [true, false]).AddArray("a.f64", [1.0, 2.0])
            .AddArray("a.u32", [7u, 8u]).AddArray("a.i64", [-1L]);
        using var file = GgufFile.Open(w.WriteTo(_temp.File("m.gguf")), metadataOnly: true);

        Assert.Equal(version, file.Version);
        Assert.Equal((byte)200, file.Metadata["u8"].Value);
        Assert.Equal((sbyte)-100, file.Metadata["i8"].Value);
        Assert.Equal((ushort)60000, file.Metadata["u16"].Value);
        Assert.Equal((short)-30000, file.Metadata["i16"].Value);
        Assert.Equal(4_000_000_000u, file.GetUInt32("u32"));
        Assert.Equal(-2_000_000_000, file.GetInt32("i32"));
        Assert.Equal(1.5f, file.GetFloat32("f32"));
        Assert.True(file.TryGetBool("bool", out var b) && b);
        Assert.Equal("héllo ▁wörld 🙂", file.GetString("str"));
        Assert.Equal(ulong.MaxValue, file.Metadata["u64"].Value);
        Assert.Equal(long.MinValue, file.Metadata["i64"].Value);
        Assert.Equal(Math.PI, file.Metadata["f64"].Value);
        Assert.Equal(["a", "", "<0x0A>", "日本"], file.GetStringArray("a.str"));
        Assert.True(file.TryGetFloat32Array("a.f32", out var floats));
        Assert.Equal([0.5f, -2f], floats);
        Assert.True(file.TryGetInt32Array("a.i32", out var ints));
        Assert.Equal([1, -2, 3], ints);
        Assert.True(file.TryGetInt32Array("a.u32", out var uints));
        Assert.Equal([7, 8], uints);
        Assert.Equal(new[] { true, false }, file.Metadata["a.bool"].Value);
        Assert.Equal(GgufValueType.Float64, file.Metadata["a.f64"].ElementType);
        Assert.Equal(new[] { -1L }, file.Metadata["a.i64"].Value);
        Assert.Equal(GgufValueType.UInt8, file.Metadata["a.u8"].ElementType);

        // Small integer types widen where they fit; a value that does not fit is an error naming the key.
        Assert.Equal(200, file.GetInt32("u8"));
        var error = Assert.Throws<ModelFormatException>(() => file.GetInt32("u32"));
        Assert.Contains("key 'u32'", error.Message);
        var missing = Assert.Throws<ModelFormatException>(() => file.GetString("nope"));
        Assert.Contains("key 'nope'", missing.Message);
        Assert.Throws<ModelFormatException>(() => file.GetString("u32"));
    }

    [Theory]
    [InlineData(32u)]
    [InlineData(64u)]
    [InlineData(4096u)]
    public void Tensors_are_read_in_place_at_their_aligned_offsets(uint alignment)
    {
        var f32 = new[] { 1f, 2f, 3f, 4f, 5f, 6f };
        var q8 = Enumerable.Range(0, 2 * 34).Select(i => (byte)i).ToArray();
        var q4k = Enumerable.Range(0, 144 * 3).Select(i => (byte)(i * 7)).ToArray();
        var w = new GgufWriter { Alignment = alignment }
            .AddF32("a", f32, 3, 2)
            .AddTensor("q8", GgmlType.Q8_0, [64], q8)
            .AddTensor("q4k", GgmlType.Q4_K, [256, 3], q4k)
            .AddTensor("bf16", GgmlType.BF16, [3, 1, 1, 1], [1, 2, 3, 4, 5, 6]);
        using var file = GgufFile.Open(w.WriteTo(_temp.File("t.gguf")), metadataOnly: true);

        Assert.Equal(alignment, file.Alignment);
        Assert.Equal(0, file.DataOffset % alignment);
        Assert.Equal(["a", "q8", "q4k", "bf16"], file.Tensors.Select(t => t.Name));
        Assert.All(file.Tensors, t => Assert.Equal(0, t.FileOffset % alignment));

        Assert.True(file.TryGetTensor("a", out var a));
        Assert.Equal(GgmlType.F32, a.Type);
        Assert.Equal([3L, 2L], a.Shape);
        Assert.Equal(f32, MemoryMarshal.Cast<byte, float>(a.Bytes).ToArray());
        Assert.True(file.TryGetTensor("q8", out var q));
        Assert.Equal(q8, q.Bytes.ToArray());
        Assert.True(file.TryGetTensor("q4k", out var k));
        Assert.Equal(q4k, k.Bytes.ToArray());
        Assert.Equal(768, k.ElementCount);
        Assert.True(file.TryGetTensor("bf16", out var h));
        Assert.Equal([3L, 1L, 1L, 1L], h.Shape);
        Assert.False(file.TryGetTensor("missing", out _));
    }

    [Fact]
    public void Llama_config_comes_from_metadata_and_tensors()
    {
        var model = new TinyGgufModel();
        using var file = GgufFile.Open(model.CreateWriter().WriteTo(_temp.File("llama.gguf")));

        var c = file.Config;
        Assert.Equal(ModelArchitecture.Llama, c.Architecture);
        Assert.Equal((64, 2, 4, 2, 16, 96, 48, 128), (c.EmbeddingLength, c.LayerCount, c.HeadCount, c.KvHeadCount, c.HeadDim, c.FeedForwardLength, c.VocabularySize, c.ContextLength));
        Assert.Equal(1e-5f, c.RmsNormEpsilon);
        Assert.Equal(10000f, c.RopeTheta);
        Assert.Equal(RopeStyle.AdjacentPairs, c.RopeStyle);
        Assert.True(c.TiedEmbeddings);
        Assert.False(c.HasQkvBias);
        Assert.False(c.HasQkNorm);
        Assert.Null(c.RopeFrequencyFactors);
    }

    [Fact]
    public void Qwen2_has_qkv_bias_neox_rope_and_untied_output()
    {
        var model = new TinyGgufModel { Architecture = "qwen2", QkvBias = true, Tied = false };
        var w = model.CreateWriter().Add("qwen2.rope.freq_base", 1_000_000f);
        using var file = GgufFile.Open(w.WriteTo(_temp.File("qwen2.gguf")));

        Assert.Equal(ModelArchitecture.Qwen2, file.Config.Architecture);
        Assert.Equal(RopeStyle.NeoX, file.Config.RopeStyle);
        Assert.True(file.Config.HasQkvBias);
        Assert.False(file.Config.TiedEmbeddings);
    }

    [Fact]
    public void Qwen3_takes_head_dim_from_key_length_and_detects_qk_norm()
    {
        // Qwen3 heads are wider than embedding / heads: 4 heads × 32 = 128 ≠ 64.
        var model = new TinyGgufModel { Architecture = "qwen3", QkNorm = true, Embedding = 64, Heads = 4, KvHeads = 2 };
        var w = new TinyGgufModel { Architecture = "qwen3", QkNorm = true, Embedding = 128, Heads = 4, KvHeads = 2 }
            .CreateWriter();
        using (var file = GgufFile.Open(w.WriteTo(_temp.File("qwen3a.gguf"))))
        {
            Assert.Equal(32, file.Config.HeadDim);
            Assert.True(file.Config.HasQkNorm);
        }

        var wide = WideHeads(model, headDim: 32);
        using var wideFile = GgufFile.Open(wide.WriteTo(_temp.File("qwen3b.gguf")));
        Assert.Equal(32, wideFile.Config.HeadDim);
        Assert.Equal(RopeStyle.NeoX, wideFile.Config.RopeStyle);
    }

    [Fact]
    public void Llama3_rope_factors_are_read_from_rope_freqs()
    {
        var model = new TinyGgufModel();
        var scaling = new Llama3RopeScaling(8, 1, 4, 64);
        var factors = scaling.FrequencyFactors(model.HeadDim, 10000);
        var w = model.CreateWriter().AddF32("rope_freqs.weight", factors, model.HeadDim / 2);
        using var file = GgufFile.Open(w.WriteTo(_temp.File("l3.gguf")));

        Assert.Equal(factors, file.Config.RopeFrequencyFactors);
        // Short wavelengths keep their frequency, the longest are divided by the full factor.
        Assert.Equal(1f, factors[0]);
        Assert.Equal(8f, factors[^1]);
    }

    [Fact]
    public void Vocabulary_only_files_open_without_model_checks()
    {
        var w = new GgufWriter().Add("general.architecture", "llama").AddArray("tokenizer.ggml.tokens", ["a", "b"]);
        var path = w.WriteTo(_temp.File("vocab.gguf"));
        using var file = GgufFile.Open(path, metadataOnly: true);
        Assert.Empty(file.Tensors);
        var error = Assert.Throws<ModelFormatException>(() => GgufFile.Open(path));
        Assert.Contains("llama.embedding_length", error.Message);
    }

    public static TheoryData<string, Func<GgufWriter, GgufWriter>, string> ModelErrors => new()
    {
        { "unknown architecture", w => w.Add("general.architecture", "gpt-j"), "'gpt-j' is not supported; supported: llama, qwen2, qwen3" },
        { "missing tensor", w => Without(w, "blk.1.ffn_up.weight"), "tensor 'blk.1.ffn_up.weight': is required by the llama architecture but missing" },
        { "wrong shape", w => Replace(w, "blk.0.attn_k.weight", GgmlType.F32, [64, 16]), "tensor 'blk.0.attn_k.weight': has shape [64, 16], expected [64, 32]" },
        { "missing key", w => WithoutKey(w, "llama.block_count"), "key 'llama.block_count': is required but missing" },
        { "kv heads", w => w.Add("llama.attention.head_count_kv", 3u), "3 KV heads do not divide 4 query heads" },
        { "vocab mismatch", w => w.AddArray("tokenizer.ggml.tokens", ["a"]), "has 1 tokens but token_embd.weight has 48 rows" },
    };

    [Theory]
    [MemberData(nameof(ModelErrors))]
    public void Model_errors_name_the_file_and_the_culprit(string because, Func<GgufWriter, GgufWriter> damage, string expected)
    {
        var path = damage(new TinyGgufModel().CreateWriter()).WriteTo(_temp.File("bad.gguf"));
        var error = Assert.Throws<ModelFormatException>(() => GgufFile.Open(path));
        Assert.StartsWith(path + ": ", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.False(string.IsNullOrEmpty(because));
    }

    public static TheoryData<string, Func<GgufWriter>, string> FileErrors => new()
    {
        { "unsupported type", () => new GgufWriter().AddTensor("w", 3u, [32], new byte[20]), "tensor 'w': has type 3 (Q4_1), which this engine does not read; supported: F32, F16, Q4_0, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K, BF16" },
        { "not a type", () => new GgufWriter().AddTensor("w", 999u, [32], new byte[20]), "type 999 (not a ggml type)" },
        { "row not whole blocks", () => new GgufWriter().AddTensor("w", GgmlType.Q8_0, [48, 2], new byte[34 * 3]), "tensor 'w': row length 48 is not a multiple of Q8_0's block size 32" },
        { "zero dim", () => new GgufWriter().AddTensor("w", GgmlType.F32, [4, 0], []), "tensor 'w': dimension 1 is 0" },
        { "negative dim", () => new GgufWriter().AddTensor("w", GgmlType.F32, [-4], []), "tensor 'w': dimension 0 is -4" },
        { "overflowing dims", () => new GgufWriter().AddTensor("w", GgmlType.F32, [1L << 40, 1L << 40], []), "more elements than fit in 64 bits" },
        { "five dims", () => new GgufWriter().AddTensor("w", GgmlType.F32, [1, 1, 1, 1, 1], new byte[4]), "tensor 'w': has 5 dimensions; must be 1..4" },
        { "duplicate tensor", () => new GgufWriter().AddF32("w", [1f], 1).AddF32("w", [1f], 1), "tensor 'w': appears twice" },
        { "duplicate key", () => new GgufWriter().Add("k", 1u).AddDuplicate("k", 2u), "key 'k': appears twice" },
        { "version 1", () => new GgufWriter { Version = 1 }, "GGUF version 1 is not supported" },
        { "version 4", () => new GgufWriter { Version = 4 }, "GGUF version 4 is not supported (only 2 and 3)" },
        { "bad alignment", () => new GgufWriter().Add("general.alignment", 24u), "key 'general.alignment': must be a uint32 power of two" },
        { "alignment of wrong type", () => new GgufWriter().Add("general.alignment", 32UL), "key 'general.alignment': must be a uint32" },
        { "long name", () => new GgufWriter().AddF32(new string('n', 64), [1f], 1), "name is longer than ggml's 63 bytes" },
    };

    [Theory]
    [MemberData(nameof(FileErrors))]
    public void File_errors_name_the_file_and_the_culprit(string because, Func<GgufWriter> make, string expected)
    {
        var path = make().WriteTo(_temp.File("bad.gguf"));
        var error = Assert.Throws<ModelFormatException>(() => GgufFile.Open(path, metadataOnly: true));
        Assert.StartsWith(path + ": ", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.False(string.IsNullOrEmpty(because));
    }

    [Fact]
    public void Bad_magic_truncation_and_data_past_the_end_are_clear_errors()
    {
        var good = new GgufWriter().AddF32("w", new float[64], 64).ToArray();

        var notGguf = _temp.File("magic.gguf");
        File.WriteAllBytes(notGguf, [.. "PK\u0003\u0004"u8, .. good[4..]]);
        Assert.Contains("not a GGUF file", Assert.Throws<ModelFormatException>(() => GgufFile.Open(notGguf, true)).Message);

        var empty = _temp.File("empty.gguf");
        File.WriteAllBytes(empty, []);
        Assert.Contains("truncated", Assert.Throws<ModelFormatException>(() => GgufFile.Open(empty, true)).Message);

        var cut = _temp.File("cut.gguf");
        File.WriteAllBytes(cut, good[..^8]);
        var error = Assert.Throws<ModelFormatException>(() => GgufFile.Open(cut, true));
        Assert.Contains("tensor 'w': data (256 bytes at data offset 0", error.Message);
        Assert.Contains("runs past the end of the file", error.Message);

        var misaligned = new GgufWriter().AddF32("w", new float[64], 64).ToArray();
        // The offset is the last 8 bytes of the tensor info, just before the data section's padding.
        var offsetAt = System.Text.Encoding.ASCII.GetString(misaligned).IndexOf('w') + 1 + 4 + 8 + 4;
        BitConverter.GetBytes(8UL).CopyTo(misaligned, offsetAt);
        var mis = _temp.File("mis.gguf");
        File.WriteAllBytes(mis, misaligned);
        Assert.Contains("tensor 'w': data offset 8 is not a multiple of the file's alignment 32", Assert.Throws<ModelFormatException>(() => GgufFile.Open(mis, true)).Message);
    }

    [Fact]
    public void A_missing_file_is_FileNotFound()
    {
        Assert.Throws<FileNotFoundException>(() => GgufFile.Open(_temp.File("nothing.gguf")));
    }

    private static GgufWriter WideHeads(TinyGgufModel m, int headDim)
    {
        // Rebuild the attention tensors for a head dimension other than embedding / heads, plus attention.key_length.
        var w = m.CreateWriter();
        w.Add($"{m.Architecture}.attention.key_length", (uint)headDim).Add($"{m.Architecture}.attention.value_length", (uint)headDim);
        for (var i = 0; i < m.Layers; i++)
        {
            var p = $"blk.{i}.";
            Replace(w, p + "attn_q.weight", GgmlType.F32, [m.Embedding, m.Heads * headDim]);
            Replace(w, p + "attn_k.weight", GgmlType.F32, [m.Embedding, m.KvHeads * headDim]);
            Replace(w, p + "attn_v.weight", GgmlType.F32, [m.Embedding, m.KvHeads * headDim]);
            Replace(w, p + "attn_output.weight", GgmlType.F32, [m.Heads * headDim, m.Embedding]);
            Replace(w, p + "attn_q_norm.weight", GgmlType.F32, [headDim]);
            Replace(w, p + "attn_k_norm.weight", GgmlType.F32, [headDim]);
        }

        return w;
    }

    private static GgufWriter Without(GgufWriter w, string tensor) => w.RemoveTensor(tensor);

    private static GgufWriter WithoutKey(GgufWriter w, string key) => w.RemoveKey(key);

    private static GgufWriter Replace(GgufWriter w, string tensor, GgmlType type, long[] shape)
    {
        var bytes = GgmlTypeInfo.RowBytes(type, shape[0]) * shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        return w.ReplaceTensor(tensor, type, shape, new byte[bytes]);
    }
}
