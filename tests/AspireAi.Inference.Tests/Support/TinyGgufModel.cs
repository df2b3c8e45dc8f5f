using AspireAi.Inference.Models;

namespace AspireAi.Inference.Tests.Support;

/// <summary>
/// Hyperparameters of a tiny random-weight decoder, and a GGUF writer pre-filled with its metadata and F32 tensors
/// (GGUF names and ggml shapes: row length first). Tests add to or change the writer before writing it.
/// </summary>
public sealed record TinyGgufModel
{
    public string Architecture { get; init; } = "llama";
    public int Embedding { get; init; } = 64;
    public int Layers { get; init; } = 2;
    public int Heads { get; init; } = 4;
    public int KvHeads { get; init; } = 2;
    public int FeedForward { get; init; } = 96;
    public int Vocabulary { get; init; } = 48;
    public int Context { get; init; } = 128;
    public bool Tied { get; init; } = true;
    public bool QkvBias { get; init; }
    public bool QkNorm { get; init; }
    public int Seed { get; init; } = 1;

    public int HeadDim => Embedding / Heads;

    public GgufWriter CreateWriter()
    {
        var random = new Random(Seed);
        float[] Random(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)(random.NextDouble() * 2 - 1) * 0.1f).ToArray();
        var a = Architecture;
        var w = new GgufWriter()
            .Add("general.architecture", a)
            .Add("general.name", "tiny-test")
            .Add($"{a}.context_length", (uint)Context)
            .Add($"{a}.embedding_length", (uint)Embedding)
            .Add($"{a}.block_count", (uint)Layers)
            .Add($"{a}.feed_forward_length", (uint)FeedForward)
            .Add($"{a}.attention.head_count", (uint)Heads)
            .Add($"{a}.attention.head_count_kv", (uint)KvHeads)
            .Add($"{a}.attention.layer_norm_rms_epsilon", 1e-5f)
            .Add($"{a}.rope.freq_base", 10000f)
            .Add("tokenizer.ggml.model", "llama")
            .AddArray("tokenizer.ggml.tokens", Enumerable.Range(0, Vocabulary).Select(i => i switch { 0 => "<unk>", 1 => "<s>", 2 => "</s>", _ => $"t{i}" }).ToArray())
            .AddArray("tokenizer.ggml.scores", Enumerable.Range(0, Vocabulary).Select(i => -(float)i).ToArray())
            .AddArray("tokenizer.ggml.token_type", Enumerable.Range(0, Vocabulary).Select(i => i < 3 ? 3 : 1).ToArray())
            .Add("tokenizer.ggml.bos_token_id", 1u)
            .Add("tokenizer.ggml.eos_token_id", 2u);

        long e = Embedding, q = Heads * HeadDim, kv = KvHeads * HeadDim, ff = FeedForward, v = Vocabulary;
        w.AddF32("token_embd.weight", Random(e * v), e, v);
        for (var i = 0; i < Layers; i++)
        {
            var p = $"blk.{i}.";
            w.AddF32(p + "attn_norm.weight", Random(e), e);
            w.AddF32(p + "attn_q.weight", Random(e * q), e, q);
            w.AddF32(p + "attn_k.weight", Random(e * kv), e, kv);
            w.AddF32(p + "attn_v.weight", Random(e * kv), e, kv);
            if (QkvBias)
            {
                w.AddF32(p + "attn_q.bias", Random(q), q);
                w.AddF32(p + "attn_k.bias", Random(kv), kv);
                w.AddF32(p + "attn_v.bias", Random(kv), kv);
            }

            if (QkNorm)
            {
                w.AddF32(p + "attn_q_norm.weight", Random(HeadDim), HeadDim);
                w.AddF32(p + "attn_k_norm.weight", Random(HeadDim), HeadDim);
            }

            w.AddF32(p + "attn_output.weight", Random(q * e), q, e);
            w.AddF32(p + "ffn_norm.weight", Random(e), e);
            w.AddF32(p + "ffn_gate.weight", Random(e * ff), e, ff);
            w.AddF32(p + "ffn_up.weight", Random(e * ff), e, ff);
            w.AddF32(p + "ffn_down.weight", Random(ff * e), ff, e);
        }

        w.AddF32("output_norm.weight", Random(e), e);
        if (!Tied)
        {
            w.AddF32("output.weight", Random(e * v), e, v);
        }

        return w;
    }
}
