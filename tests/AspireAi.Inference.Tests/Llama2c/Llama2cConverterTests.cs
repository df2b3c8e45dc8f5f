using System.Runtime.InteropServices;
using System.Text;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Models.Llama2c;
using AspireAi.Inference.Tests.Support;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Tests.Llama2c;

/// <summary>
/// The llama2.c → GGUF converter on a tiny synthetic checkpoint and tokenizer.bin written here: tensor order and shapes,
/// the byte-piece trap, the special tokens, the metadata, and refusals of damaged inputs.
/// </summary>
public sealed class Llama2cConverterTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Converts_tensors_in_gguf_order_with_llama2c_data(bool shared)
    {
        var tiny = new TinyLlama2c { SharedClassifier = shared };
        var output = Convert(tiny);

        using var file = GgufFile.Open(output);
        var c = file.Config;
        Assert.Equal((ModelArchitecture.Llama, 16, 2, 4, 2, 4, 24, tiny.Vocabulary, 8), (c.Architecture, c.EmbeddingLength, c.LayerCount, c.HeadCount, c.KvHeadCount, c.HeadDim, c.FeedForwardLength, c.VocabularySize, c.ContextLength));
        Assert.Equal(RopeStyle.AdjacentPairs, c.RopeStyle);
        Assert.Equal(shared, c.TiedEmbeddings);

        string[] perLayer = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"];
        var expectedNames = new List<string> { "token_embd.weight" };
        for (var l = 0; l < 2; l++)
        {
            expectedNames.AddRange(perLayer.Select(n => $"blk.{l}.{n}.weight"));
        }

        expectedNames.Add("output_norm.weight");
        if (!shared)
        {
            expectedNames.Add("output.weight");
        }

        Assert.Equal(expectedNames, file.Tensors.Select(t => t.Name));
        Assert.All(file.Tensors, t => Assert.Equal(GgmlType.F32, t.Type));

        // Each llama2.c tensor kind was filled with (kind · 1000 + layer · 100 + i % 97): every value says where it came from.
        Check("token_embd.weight", 0, null, [16, tiny.Vocabulary]);
        for (var l = 0; l < 2; l++)
        {
            Check($"blk.{l}.attn_norm.weight", 1, l, [16]);
            Check($"blk.{l}.attn_q.weight", 2, l, [16, 16]);
            Check($"blk.{l}.attn_k.weight", 3, l, [16, 8]);
            Check($"blk.{l}.attn_v.weight", 4, l, [16, 8]);
            Check($"blk.{l}.attn_output.weight", 5, l, [16, 16]);
            Check($"blk.{l}.ffn_norm.weight", 6, l, [16]);
            Check($"blk.{l}.ffn_gate.weight", 7, l, [16, 24]);
            Check($"blk.{l}.ffn_down.weight", 8, l, [24, 16]);
            Check($"blk.{l}.ffn_up.weight", 9, l, [16, 24]);
        }

        Check("output_norm.weight", 10, null, [16]);
        if (!shared)
        {
            Check("output.weight", 12, null, [16, tiny.Vocabulary]);
        }

        void Check(string name, int kind, int? layer, long[] shape)
        {
            var info = file.FindTensor(name)!;
            Assert.Equal(shape, info.Shape);
            Assert.True(file.TryGetTensor(name, out var view));
            var values = MemoryMarshal.Cast<byte, float>(view.Bytes).ToArray();
            Assert.Equal(Enumerable.Range(0, values.Length).Select(i => TinyLlama2c.Value(kind, layer ?? 0, i)), values);
        }
    }

    [Fact]
    public void Vocabulary_undoes_llama2c_export_quirks()
    {
        var tiny = new TinyLlama2c();
        using var file = GgufFile.Open(Convert(tiny));

        var tokens = file.GetStringArray("tokenizer.ggml.tokens");
        Assert.True(file.TryGetInt32Array("tokenizer.ggml.token_type", out var types));
        Assert.True(file.TryGetFloat32Array("tokenizer.ggml.scores", out var scores));
        Assert.Equal(tiny.Vocabulary, tokens.Length);

        Assert.Equal(("<unk>", 2), (tokens[0], types[0]));
        Assert.Equal(("<s>", 3), (tokens[1], types[1]));
        Assert.Equal(("</s>", 3), (tokens[2], types[2]));
        // Byte pieces: 'A' (0x41) at id 68 and U+00E9 (0xE9, two bytes in the file) at id 236 are byte tokens,
        // although the same characters are ordinary pieces further on.
        for (var b = 0; b < 256; b++)
        {
            Assert.Equal(($"<0x{b:X2}>", 6), (tokens[3 + b], types[3 + b]));
        }

        Assert.Equal(("A", 1), (tokens[TinyLlama2c.FirstOrdinary], types[TinyLlama2c.FirstOrdinary]));
        Assert.Equal(("▁the", 1), (tokens[TinyLlama2c.FirstOrdinary + 1], types[TinyLlama2c.FirstOrdinary + 1]));
        Assert.Equal(("é", 1), (tokens[TinyLlama2c.FirstOrdinary + 2], types[TinyLlama2c.FirstOrdinary + 2]));
        Assert.Equal(("▁▁", 1), (tokens[TinyLlama2c.FirstOrdinary + 3], types[TinyLlama2c.FirstOrdinary + 3]));
        Assert.Equal(tiny.Scores(), scores);

        Assert.Equal(1u, file.GetUInt32("tokenizer.ggml.bos_token_id"));
        Assert.Equal(2u, file.GetUInt32("tokenizer.ggml.eos_token_id"));
        Assert.Equal(0u, file.GetUInt32("tokenizer.ggml.unknown_token_id"));
        Assert.True(file.TryGetBool("tokenizer.ggml.add_bos_token", out var addBos) && addBos);
        Assert.True(file.TryGetBool("tokenizer.ggml.add_eos_token", out var addEos) && !addEos);
        Assert.Equal("llama", file.GetString("tokenizer.ggml.model"));
        Assert.Equal("tiny", file.GetString("general.name"));

        // The engine's tokenizer reads it: BOS, "▁" and "A" are pieces, "€" is not and falls back to its three UTF-8 bytes.
        var tokenizer = Tokenizers.FromGguf(file);
        Assert.Equal([1, TinyLlama2c.FirstOrdinary + 4, TinyLlama2c.FirstOrdinary, 3 + 0xE2, 3 + 0x82, 3 + 0xAC], tokenizer.Encode("A€"));
        Assert.Equal(" A€", tokenizer.Decode(tokenizer.Encode("A€")));
    }

    [Fact]
    public void Damaged_checkpoints_are_refused_and_leave_no_output()
    {
        var tiny = new TinyLlama2c();
        var good = tiny.Checkpoint();
        var tokenizer = tiny.TokenizerBin();

        Refused(good[..^4], "checkpoint", "file is truncated");
        Refused([.. good, 0, 0, 0, 0], "checkpoint", "4 bytes more than a version 0 checkpoint");
        Refused(good[..20], "checkpoint", "starts with a 28-byte header");
        Refused([.. BitConverter.GetBytes(0x616b3432u), .. good[4..]], "checkpoint", "versioned llama2.c export"); // export.py's "ak42" magic
        var badHeads = (byte[])good.Clone();
        BitConverter.GetBytes(3).CopyTo(badHeads, 16); // 3 KV heads for 4 heads
        Refused(badHeads, "checkpoint", "3 KV heads do not divide 4 heads");
        var zero = (byte[])good.Clone();
        BitConverter.GetBytes(0).CopyTo(zero, 8);
        Refused(zero, "checkpoint", "header field 'n_layers': 0 is not a plausible size");

        Refused(tokenizer[..^3], "tokenizer", "file is truncated");
        Refused([.. tokenizer, 1], "tokenizer", "1 bytes after its");
        var longPiece = (byte[])tokenizer.Clone();
        BitConverter.GetBytes(1).CopyTo(longPiece, 0); // max length 1, but "<unk>" is 5 bytes
        Refused(longPiece, "tokenizer", "piece 0: length 5 is outside 0..1");

        void Refused(byte[] bytes, string which, string problem)
        {
            var checkpoint = _temp.File("c.bin");
            var tokenizerPath = _temp.File("t.bin");
            File.WriteAllBytes(checkpoint, which == "checkpoint" ? bytes : good);
            File.WriteAllBytes(tokenizerPath, which == "tokenizer" ? bytes : tokenizer);
            var output = _temp.File("out.gguf");
            File.WriteAllText(output, "the previous model");

            var e = Assert.Throws<ModelFormatException>(() => Llama2cConverter.Convert(checkpoint, tokenizerPath, output, "tiny"));
            Assert.Equal(which == "checkpoint" ? checkpoint : tokenizerPath, e.FilePath);
            Assert.Contains(problem, e.Message);
            Assert.Equal("the previous model", File.ReadAllText(output));
            Assert.False(File.Exists(output + ".tmp"));
        }
    }

    [Fact]
    public void Reports_progress_per_tensor()
    {
        var reports = new List<(int Done, int Total)>();
        var tiny = new TinyLlama2c();
        File.WriteAllBytes(_temp.File("c.bin"), tiny.Checkpoint());
        File.WriteAllBytes(_temp.File("t.bin"), tiny.TokenizerBin());
        Llama2cConverter.Convert(_temp.File("c.bin"), _temp.File("t.bin"), _temp.File("p.gguf"), "tiny", new SynchronousProgress(reports.Add));
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (i, 20)), reports);
    }

    private string Convert(TinyLlama2c tiny)
    {
        var checkpoint = _temp.File($"{Guid.NewGuid():N}.bin");
        var tokenizer = _temp.File($"{Guid.NewGuid():N}.tok");
        File.WriteAllBytes(checkpoint, tiny.Checkpoint());
        File.WriteAllBytes(tokenizer, tiny.TokenizerBin());
        var output = _temp.File($"{Guid.NewGuid():N}.gguf");
        Llama2cConverter.Convert(checkpoint, tokenizer, output, "tiny");
        Assert.False(File.Exists(output + ".tmp"));
        return output;
    }

    private sealed class SynchronousProgress(Action<(int, int)> report) : IProgress<(int Done, int Total)>
    {
        public void Report((int Done, int Total) value) => report(value);
    }
}

/// <summary>
/// A llama2.c version 0 checkpoint (dim 16, hidden 24, 2 layers, 4 heads, 2 KV heads, seq 8) and tokenizer.bin, written as
/// llama2.c's export wrote them, including its quirks: byte pieces as the character U+00bb, BOS/EOS wrapped in newlines,
/// plain spaces for U+2581.
/// </summary>
internal sealed record TinyLlama2c
{
    public const int FirstOrdinary = 259;
    private static readonly string[] Ordinary = ["A", " the", "é", "  ", " ", "th", "e"];

    public bool SharedClassifier { get; init; } = true;

    public int Vocabulary => FirstOrdinary + Ordinary.Length;

    /// <summary>The value at index <paramref name="i"/> of tensor kind <paramref name="kind"/>'s slice for <paramref name="layer"/>.</summary>
    public static float Value(int kind, int layer, int i) => kind * 1000 + layer * 100 + i % 97;

    public byte[] Checkpoint()
    {
        const int dim = 16, hidden = 24, layers = 2, heads = 4, kvHeads = 2, seq = 8, kvDim = dim / heads * kvHeads;
        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream);
        foreach (var field in new[] { dim, hidden, layers, heads, kvHeads, SharedClassifier ? Vocabulary : -Vocabulary, seq })
        {
            w.Write(field);
        }

        void Kind(int kind, int perLayer, int layerCount = layers)
        {
            for (var l = 0; l < layerCount; l++)
            {
                for (var i = 0; i < perLayer; i++)
                {
                    w.Write(Value(kind, l, i));
                }
            }
        }

        Kind(0, Vocabulary * dim, 1);
        Kind(1, dim);
        Kind(2, dim * dim);
        Kind(3, dim * kvDim);
        Kind(4, dim * kvDim);
        Kind(5, dim * dim);
        Kind(6, dim);
        Kind(7, dim * hidden);
        Kind(8, hidden * dim);
        Kind(9, dim * hidden);
        Kind(10, dim, 1);
        Kind(11, seq * (dim / heads / 2) * 2, 1); // the legacy RoPE tables, which the converter skips
        if (!SharedClassifier)
        {
            Kind(12, Vocabulary * dim, 1);
        }

        w.Flush();
        return stream.ToArray();
    }

    public float[] Scores() => Enumerable.Range(0, Vocabulary).Select(i => i < FirstOrdinary ? 0f : -(i - FirstOrdinary) - 0.5f).ToArray();

    public byte[] TokenizerBin()
    {
        var pieces = new List<byte[]> { "<unk>"u8.ToArray(), "\n<s>\n"u8.ToArray(), "\n</s>\n"u8.ToArray() };
        pieces.AddRange(Enumerable.Range(0, 256).Select(b => Encoding.UTF8.GetBytes(((char)b).ToString())));
        pieces.AddRange(Ordinary.Select(Encoding.UTF8.GetBytes));
        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream);
        w.Write(pieces.Max(p => p.Length));
        var scores = Scores();
        for (var i = 0; i < pieces.Count; i++)
        {
            w.Write(scores[i]);
            w.Write(pieces[i].Length);
            w.Write(pieces[i]);
        }

        w.Flush();
        return stream.ToArray();
    }
}
