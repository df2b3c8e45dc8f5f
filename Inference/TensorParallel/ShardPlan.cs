using AspireAi.Inference.Models;

namespace AspireAi.Inference.TensorParallel;

/// <summary>Which part of a weight a rank holds, in ggml's [N rows × K columns] terms (K contiguous).</summary>
public enum ShardAxis
{
    /// <summary>The whole tensor on every rank: norms, Qwen3's per-head q/k norms, the token embedding.</summary>
    Replicated,

    /// <summary>
    /// Rows [Start, Start + Count) of N: a column-parallel linear layer in Megatron-LM's terms (its output features split):
    /// q/k/v by whole heads, gate/up by FFN features, the logits projection by vocabulary.
    /// </summary>
    Rows,

    /// <summary>
    /// Columns [Start, Start + Count) of K from every row: a row-parallel linear layer (its input features split; the
    /// partial products are summed by an all-reduce): the attention output and down projections. Also the elements of a
    /// q/k/v bias vector, which follow their projection's rows.
    /// </summary>
    Columns,
}

/// <summary>A contiguous range of indices (heads, features, token ids, rows or columns).</summary>
public readonly record struct IndexRange(int Start, int Count)
{
    public int End => Start + Count;

    public override string ToString() => $"[{Start}, {End})";
}

/// <summary>One rank's part of one weight.</summary>
public readonly record struct WeightShard(ShardAxis Axis, IndexRange Range);

/// <summary>
/// What rank <see cref="Rank"/> owns: its query heads, the KV heads they read, its FFN features and its token ids. Every
/// rank's vocabulary range is <see cref="ShardPlan.VocabularyShard"/> wide; where the size does not divide the vocabulary,
/// the last ranks' ranges run past it, and those rows of their logits projection are zeros whose logits are never gathered.
/// </summary>
public sealed record RankShare(int Rank, IndexRange QueryHeads, IndexRange KvHeads, IndexRange FeedForward, IndexRange Vocabulary);

/// <summary>
/// Megatron-style tensor parallelism for the llama / qwen2 / qwen3 decoder over <see cref="Size"/> ranks, as vLLM lays it out
/// (<c>QKVParallelLinear</c>, <c>MergedColumnParallelLinear</c>, <c>RowParallelLinear</c>, <c>ParallelLMHead</c>): each
/// rank owns <c>heads / size</c> query heads with their KV heads (so its part of the paged KV cache), <c>ffn / size</c>
/// FFN features and <c>⌈vocabulary / size⌉</c> logits. Attention output and down projections are split along K, each followed
/// by one all-reduce; the logits are gathered. Pure: which rows and columns each rank owns, and a clear error for a model
/// that does not split.
/// </summary>
/// <remarks>
/// <para>KV heads: with at least as many KV heads as ranks, they are split (the count must divide). With fewer (Llama-3-70B's
/// 8 KV heads over 16 ranks; a 2-KV-head model over 4), each KV head is replicated on <c>size / kvHeads</c> ranks, as vLLM
/// does, so that every rank still holds whole query heads and the KV head they read; <c>size</c> must then be a multiple
/// of the KV head count. The replicas cost KV-cache memory, not correctness.</para>
/// <para>The token embedding is replicated rather than vocabulary-parallel (vLLM's <c>VocabParallelEmbedding</c>): a step
/// reads only one row per token, so a shard saves memory but not time, and it would cost an all-reduce of every token's
/// hidden state per step (for a 70B prefill chunk of 8,192 tokens, 256 MB) plus a lookup that yields zeros for foreign
/// ids, which neither backend has. The logits projection, which a step reads whole, is split by vocabulary.</para>
/// <para>Quantized weights split along K only at whole blocks (32 values; 256 for the K-quants' super-blocks), since a
/// block's values share a scale. Splitting rows never cuts a block.</para>
/// <para>A vocabulary the size does not divide (32,001 tokens of a Llama-2 fine-tune with a pad token; stories15M's 32,000
/// over 3) is padded, as vLLM's <c>ParallelLMHead</c> pads it: each rank computes <c>⌈vocabulary / size⌉</c> logits, the
/// rows past the vocabulary being zeros, and the gather keeps only the real ones. Heads, KV heads and FFN features must
/// still divide: padding those would change what the model computes.</para>
/// </remarks>
public sealed class ShardPlan
{
    public ShardPlan(ModelConfig config, int size)
    {
        if (size < 1)
        {
            throw new ArgumentException($"The tensor-parallel size must be at least 1, not {size}.");
        }

        Config = config;
        Size = size;
        Require(config.HeadCount, "attention heads", "blk.*.attn_q.weight and blk.*.attn_output.weight");
        if (config.KvHeadCount >= size)
        {
            Require(config.KvHeadCount, "KV heads", "blk.*.attn_k.weight and blk.*.attn_v.weight");
        }
        else if (size % config.KvHeadCount != 0)
        {
            throw new ArgumentException(
                $"Tensor-parallel size {size} cannot be split over the model's {config.KvHeadCount} KV heads (blk.*.attn_k.weight and blk.*.attn_v.weight): with fewer KV heads than ranks, each KV head is replicated on an equal number of ranks, so the size must be a multiple of {config.KvHeadCount}.");
        }

        Require(config.FeedForwardLength, "FFN features", "blk.*.ffn_gate.weight, blk.*.ffn_up.weight and blk.*.ffn_down.weight");
        VocabularyShard = (config.VocabularySize + size - 1) / size;
    }

    public ModelConfig Config { get; }

    public int Size { get; }

    /// <summary>
    /// Logits each rank computes: <c>⌈vocabulary / size⌉</c>, so that every rank's shard has the same width (the all-gather
    /// moves equal parts); <c>size × VocabularyShard − vocabulary</c> of them, at the end of the last ranks', are padding.
    /// </summary>
    public int VocabularyShard { get; }

    /// <summary>Ranks that hold each KV head: 1 when the KV heads are split, <c>size / kvHeads</c> when they are replicated.</summary>
    public int KvHeadReplicas => Config.KvHeadCount >= Size ? 1 : Size / Config.KvHeadCount;

    public RankShare Share(int rank)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, Size);
        var c = Config;
        var kvHeads = Math.Max(1, c.KvHeadCount / Size);
        return new RankShare(
            rank,
            Part(c.HeadCount, rank),
            new IndexRange(rank / KvHeadReplicas * kvHeads, kvHeads),
            Part(c.FeedForwardLength, rank),
            new IndexRange(rank * VocabularyShard, VocabularyShard));
    }

    /// <summary>
    /// The configuration one rank computes with: its own head, KV head, FFN and vocabulary counts (the shapes of its
    /// activations, its weights and its KV cache); everything else as the model's.
    /// </summary>
    public ModelConfig RankConfig(int rank)
    {
        var share = Share(rank);
        return Config with
        {
            HeadCount = share.QueryHeads.Count,
            KvHeadCount = share.KvHeads.Count,
            FeedForwardLength = share.FeedForward.Count,
            VocabularySize = share.Vocabulary.Count,
        };
    }

    /// <summary>
    /// Rank <paramref name="rank"/>'s part of the weight <paramref name="name"/> (GGUF naming) of <paramref name="type"/>
    /// and ggml <paramref name="shape"/> (<c>[K]</c> or <c>[K, N]</c>).
    /// </summary>
    /// <exception cref="ArgumentException">The tensor is not one of the forward pass's, or its part would cut a quantized block.</exception>
    public WeightShard Shard(string name, GgmlType type, long[] shape, int rank)
    {
        var share = Share(rank);
        var headDim = Config.HeadDim;
        var suffix = name.StartsWith("blk.", StringComparison.Ordinal) ? name[(name.IndexOf('.', 4) + 1)..] : name;
        var shard = suffix switch
        {
            "token_embd.weight" or "output_norm.weight" or "attn_norm.weight" or "ffn_norm.weight" or "attn_q_norm.weight" or "attn_k_norm.weight"
                => new WeightShard(ShardAxis.Replicated, default),
            "output.weight" => new WeightShard(ShardAxis.Rows, share.Vocabulary),
            "attn_q.weight" => new WeightShard(ShardAxis.Rows, Scale(share.QueryHeads, headDim)),
            "attn_k.weight" or "attn_v.weight" => new WeightShard(ShardAxis.Rows, Scale(share.KvHeads, headDim)),
            "attn_q.bias" => new WeightShard(ShardAxis.Columns, Scale(share.QueryHeads, headDim)),
            "attn_k.bias" or "attn_v.bias" => new WeightShard(ShardAxis.Columns, Scale(share.KvHeads, headDim)),
            "attn_output.weight" => new WeightShard(ShardAxis.Columns, Scale(share.QueryHeads, headDim)),
            "ffn_gate.weight" or "ffn_up.weight" => new WeightShard(ShardAxis.Rows, share.FeedForward),
            "ffn_down.weight" => new WeightShard(ShardAxis.Columns, share.FeedForward),
            _ => throw new ArgumentException($"Tensor '{name}' has no tensor-parallel layout (it is not a weight of the llama forward pass)."),
        };
        Check(name, type, shape, shard);
        return shard;
    }

    private void Check(string name, GgmlType type, long[] shape, WeightShard shard)
    {
        if (shard.Axis == ShardAxis.Replicated)
        {
            return;
        }

        var columns = shape.Length > 0 ? shape[0] : 0;
        var rows = shape.Length > 1 ? shape[1] : 1;
        var (extent, what) = shard.Axis == ShardAxis.Rows ? (rows, "rows") : (columns, "columns");
        // The logits projection's last shards may run past the vocabulary: WeightSlice pads those rows with zeros.
        var padded = shard.Axis == ShardAxis.Rows && name == "output.weight" && extent == Config.VocabularySize;
        if (shard.Range.End > extent && !padded)
        {
            throw new ArgumentException(
                $"Tensor '{name}' of shape [{string.Join(", ", shape)}] has {extent} {what}, but its tensor-parallel part is {what} {shard.Range}.");
        }

        var block = GgmlTypeInfo.BlockSize(type);
        if (shard.Axis == ShardAxis.Columns && (shard.Range.Start % block != 0 || shard.Range.Count % block != 0))
        {
            throw new ArgumentException(
                $"Tensor '{name}' ({type}, shape [{string.Join(", ", shape)}]) cannot be split over tensor-parallel size {Size}: each rank would hold {shard.Range.Count} of its {columns} columns, which is not a whole number of {type}'s {block}-value blocks. Use a tensor-parallel size that keeps {columns} / size a multiple of {block}, or a file of another type.");
        }
    }

    private IndexRange Part(int total, int rank) => new(total / Size * rank, total / Size);

    private static IndexRange Scale(IndexRange heads, int headDim) => new(heads.Start * headDim, heads.Count * headDim);

    private void Require(int count, string what, string tensors)
    {
        if (count % Size != 0)
        {
            throw new ArgumentException(
                $"The model's {count} {what} ({tensors}) cannot be split evenly over tensor-parallel size {Size}: the size must divide {count}.");
        }
    }
}
