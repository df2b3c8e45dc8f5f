using System.Runtime.InteropServices;
using AspireAi.Inference.Models;
using AspireAi.Inference.TensorParallel;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.TensorParallel;

/// <summary>Which rows, columns and blocks each rank owns, and the errors for models that do not split.</summary>
public sealed class ShardPlanTests
{
    private static ModelConfig Config(int heads, int kvHeads, int headDim, int ffn, int vocabulary) => new()
    {
        Architecture = ModelArchitecture.Llama,
        EmbeddingLength = heads * headDim,
        LayerCount = 2,
        HeadCount = heads,
        KvHeadCount = kvHeads,
        HeadDim = headDim,
        FeedForwardLength = ffn,
        VocabularySize = vocabulary,
        ContextLength = 256,
        RmsNormEpsilon = 1e-5f,
        RopeTheta = 10000,
    };

    /// <summary>stories15M's shape: 6 heads of 48, 6 KV heads, FFN 768, 32,000 tokens.</summary>
    private static readonly ModelConfig Stories = Config(6, 6, 48, 768, 32000);

    [Fact]
    public void Stories15M_over_two_ranks_splits_heads_ffn_and_vocabulary_in_halves()
    {
        var plan = new ShardPlan(Stories, 2);
        Assert.Equal(new RankShare(0, new(0, 3), new(0, 3), new(0, 384), new(0, 16000)), plan.Share(0));
        Assert.Equal(new RankShare(1, new(3, 3), new(3, 3), new(384, 384), new(16000, 16000)), plan.Share(1));
        Assert.Equal(Stories with { HeadCount = 3, KvHeadCount = 3, FeedForwardLength = 384, VocabularySize = 16000 }, plan.RankConfig(1));

        long[] square = [288, 288], down = [768, 288], up = [288, 768];
        Assert.Equal(new WeightShard(ShardAxis.Rows, new(144, 144)), plan.Shard("blk.3.attn_q.weight", GgmlType.F32, square, 1));
        Assert.Equal(new WeightShard(ShardAxis.Rows, new(144, 144)), plan.Shard("blk.3.attn_v.weight", GgmlType.F32, square, 1));
        Assert.Equal(new WeightShard(ShardAxis.Columns, new(144, 144)), plan.Shard("blk.0.attn_output.weight", GgmlType.F16, square, 1));
        Assert.Equal(new WeightShard(ShardAxis.Rows, new(384, 384)), plan.Shard("blk.5.ffn_gate.weight", GgmlType.Q8_0, up, 1));
        Assert.Equal(new WeightShard(ShardAxis.Rows, new(0, 384)), plan.Shard("blk.5.ffn_up.weight", GgmlType.Q8_0, up, 0));
        Assert.Equal(new WeightShard(ShardAxis.Columns, new(384, 384)), plan.Shard("blk.5.ffn_down.weight", GgmlType.Q8_0, down, 1));
        Assert.Equal(new WeightShard(ShardAxis.Rows, new(16000, 16000)), plan.Shard("output.weight", GgmlType.Q8_0, [288, 32000], 1));
        foreach (var replicated in new[] { "token_embd.weight", "output_norm.weight", "blk.1.attn_norm.weight", "blk.1.ffn_norm.weight" })
        {
            Assert.Equal(ShardAxis.Replicated, plan.Shard(replicated, GgmlType.F32, [288, 32000], 1).Axis);
        }
    }

    [Fact]
    public void Qkv_biases_follow_their_heads_and_qwen3_head_norms_are_replicated()
    {
        var plan = new ShardPlan(Config(8, 4, 16, 256, 64), 4);
        Assert.Equal(new WeightShard(ShardAxis.Columns, new(64, 32)), plan.Shard("blk.0.attn_q.bias", GgmlType.F32, [128], 2));
        Assert.Equal(new WeightShard(ShardAxis.Columns, new(32, 16)), plan.Shard("blk.0.attn_k.bias", GgmlType.F32, [64], 2));
        Assert.Equal(new WeightShard(ShardAxis.Columns, new(48, 16)), plan.Shard("blk.0.attn_v.bias", GgmlType.F32, [64], 3));
        Assert.Equal(ShardAxis.Replicated, plan.Shard("blk.0.attn_q_norm.weight", GgmlType.F32, [16], 3).Axis);
        Assert.Equal(ShardAxis.Replicated, plan.Shard("blk.0.attn_k_norm.weight", GgmlType.F32, [16], 3).Axis);
    }

    /// <summary>
    /// Every layout the plan accepts, checked against what tensor parallelism needs: each rank's query heads read only KV
    /// heads that rank holds (grouped-query attention), the ranks' heads, FFN features and tokens tile the model exactly,
    /// and a KV head lives on as many ranks as the plan says.
    /// </summary>
    [Theory]
    [InlineData(32, 8, 2)]
    [InlineData(32, 8, 4)]
    [InlineData(32, 8, 8)]
    [InlineData(64, 8, 16)]
    [InlineData(8, 2, 4)]
    [InlineData(8, 1, 8)]
    [InlineData(28, 4, 4)]
    [InlineData(12, 12, 3)]
    public void Every_rank_holds_the_kv_heads_its_query_heads_read(int heads, int kvHeads, int size)
    {
        var plan = new ShardPlan(Config(heads, kvHeads, 8, 64 * size, 128 * size), size);
        var group = heads / kvHeads;
        var queryOwner = new int[heads];
        var kvCopies = new int[kvHeads];
        Array.Fill(queryOwner, -1);
        for (var r = 0; r < size; r++)
        {
            var share = plan.Share(r);
            Assert.Equal(heads / size, share.QueryHeads.Count);
            for (var q = share.QueryHeads.Start; q < share.QueryHeads.End; q++)
            {
                Assert.Equal(-1, queryOwner[q]);
                queryOwner[q] = r;
                Assert.InRange(q / group, share.KvHeads.Start, share.KvHeads.End - 1);
                // The backend maps local query head j to local KV head j / (local heads / local KV heads): the same pairing.
                var local = q - share.QueryHeads.Start;
                Assert.Equal(q / group - share.KvHeads.Start, local / (share.QueryHeads.Count / share.KvHeads.Count));
            }

            for (var k = share.KvHeads.Start; k < share.KvHeads.End; k++)
            {
                kvCopies[k]++;
            }

            Assert.Equal(new IndexRange(64 * r, 64), share.FeedForward);
            Assert.Equal(new IndexRange(128 * r, 128), share.Vocabulary);
        }

        Assert.DoesNotContain(-1, queryOwner);
        Assert.All(kvCopies, copies => Assert.Equal(plan.KvHeadReplicas, copies));
        Assert.Equal(kvHeads >= size ? 1 : size / kvHeads, plan.KvHeadReplicas);
    }

    [Theory]
    [InlineData(6, 6, 768, 32000, 4, "6 attention heads")]
    [InlineData(12, 4, 768, 32000, 6, "4 KV heads")]
    [InlineData(8, 8, 768, 32000, 16, "attention heads")]
    [InlineData(12, 3, 768, 32000, 2, "3 KV heads")]
    [InlineData(12, 2, 768, 32000, 3, "2 KV heads")]
    [InlineData(8, 8, 100, 32000, 8, "100 FFN features")]
    public void A_model_that_does_not_split_evenly_is_refused_naming_what_and_the_size(int heads, int kvHeads, int ffn, int vocabulary, int size, string what)
    {
        var error = Assert.Throws<ArgumentException>(() => new ShardPlan(Config(heads, kvHeads, 16, ffn, vocabulary), size));
        Assert.Contains(what, error.Message);
        Assert.Contains($"tensor-parallel size {size}", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// A vocabulary the size does not divide is padded, as vLLM's ParallelLMHead does: every rank computes ⌈V / size⌉
    /// logits, the last ranks' ranges run past the vocabulary (one of them can be all padding), and only the logits
    /// projection may run past its rows.
    /// </summary>
    [Theory]
    [InlineData(32001, 2, 16001)]  // a Llama-2 fine-tune with a pad token
    [InlineData(32000, 3, 10667)]  // stories15M over three ranks
    [InlineData(61, 4, 16)]
    [InlineData(5, 4, 2)]          // rank 3 holds padding only
    public void A_vocabulary_the_size_does_not_divide_is_padded_to_equal_shards(int vocabulary, int size, int shard)
    {
        var plan = new ShardPlan(Config(12, 12, 16, 64 * size, vocabulary), size);
        Assert.Equal(shard, plan.VocabularyShard);
        Assert.InRange(shard * size - vocabulary, 0, size - 1);  // the padding: under one logit a rank
        var covered = new bool[vocabulary];
        for (var r = 0; r < size; r++)
        {
            var share = plan.Share(r);
            Assert.Equal(new IndexRange(r * shard, shard), share.Vocabulary);
            Assert.Equal(shard, plan.RankConfig(r).VocabularySize);
            Assert.Equal(new WeightShard(ShardAxis.Rows, share.Vocabulary), plan.Shard("output.weight", GgmlType.Q8_0, [128, vocabulary], r));
            for (var token = share.Vocabulary.Start; token < Math.Min(share.Vocabulary.End, vocabulary); token++)
            {
                Assert.False(covered[token]);
                covered[token] = true;
            }
        }

        Assert.All(covered, Assert.True);
        // Only the logits projection is padded: any other row split past its tensor is still an error.
        var error = Assert.Throws<ArgumentException>(() => plan.Shard("blk.0.ffn_gate.weight", GgmlType.F32, [128, 64], size - 1));
        Assert.Contains("blk.0.ffn_gate.weight", error.Message);
    }

    [Fact]
    public void A_column_split_through_a_quantized_block_is_refused_naming_tensor_shape_size_and_block()
    {
        var plan = new ShardPlan(Stories, 2);
        // 3 heads × 48 = 144 columns of attn_output per rank: not a whole number of Q8_0's 32-value blocks.
        var error = Assert.Throws<ArgumentException>(() => plan.Shard("blk.0.attn_output.weight", GgmlType.Q8_0, [288, 288], 0));
        Assert.Contains("'blk.0.attn_output.weight'", error.Message);
        Assert.Contains("[288, 288]", error.Message);
        Assert.Contains("tensor-parallel size 2", error.Message);
        Assert.Contains("32-value blocks", error.Message);
        // 384 FFN columns per rank are 12 blocks of 32 but 1.5 K-quant super-blocks of 256.
        Assert.Equal(new WeightShard(ShardAxis.Columns, new(384, 384)), plan.Shard("blk.0.ffn_down.weight", GgmlType.Q8_0, [768, 288], 1));
        var kQuant = Assert.Throws<ArgumentException>(() => plan.Shard("blk.0.ffn_down.weight", GgmlType.Q4_K, [768, 288], 1));
        Assert.Contains("'blk.0.ffn_down.weight'", kQuant.Message);
        Assert.Contains("256-value blocks", kQuant.Message);
        // Rows never cut a block: q/k/v and gate/up split by rows whatever the type.
        Assert.Equal(ShardAxis.Rows, plan.Shard("blk.0.ffn_gate.weight", GgmlType.Q4_K, [288, 768], 1).Axis);
        // Float types have blocks of one value: any column split is fine.
        Assert.Equal(new WeightShard(ShardAxis.Columns, new(0, 144)), plan.Shard("blk.0.attn_output.weight", GgmlType.BF16, [288, 288], 0));
    }

    [Fact]
    public void Tensors_outside_the_forward_pass_and_wrong_shapes_are_refused()
    {
        var plan = new ShardPlan(Stories, 2);
        Assert.Contains("'rope_freqs.weight' has no tensor-parallel layout", Assert.Throws<ArgumentException>(() => plan.Shard("rope_freqs.weight", GgmlType.F32, [24], 0)).Message);
        Assert.Contains("'blk.0.attn_q.weight'", Assert.Throws<ArgumentException>(() => plan.Shard("blk.0.attn_q.weight", GgmlType.F32, [288, 200], 1)).Message);
    }

    /// <summary>
    /// The bytes each rank loads, checked by value: a rank's rows or columns of a quantized tensor dequantize (by the test's
    /// own ggml reference) to exactly the same rows or columns of the whole tensor.
    /// </summary>
    [Theory]
    [InlineData(GgmlType.Q8_0, 64, 128, 4)]
    [InlineData(GgmlType.Q4_0, 32, 192, 3)]
    [InlineData(GgmlType.Q4_K, 16, 512, 2)]
    [InlineData(GgmlType.Q6_K, 8, 1024, 4)]
    [InlineData(GgmlType.F16, 12, 40, 4)]
    public unsafe void Slices_hold_exactly_the_ranks_rows_and_whole_blocks_of_columns(GgmlType type, int rows, int columns, int size)
    {
        var bytes = GgmlReference.RandomTensor(type, rows, columns, new Random(5));
        var whole = GgmlReference.Dequantize(type, bytes, rows, columns);
        var handle = GCHandle.Alloc(bytes, GCHandleType.Pinned);
        try
        {
            var tensor = new TensorView("t", type, [columns, rows], handle.AddrOfPinnedObject(), bytes.Length);
            for (var r = 0; r < size; r++)
            {
                var rowRange = new IndexRange(rows / size * r, rows / size);
                using (var slice = WeightSlice.Of(tensor, new WeightShard(ShardAxis.Rows, rowRange)))
                {
                    Assert.Equal([columns, rowRange.Count], slice.View.Shape);
                    var part = GgmlReference.Dequantize(type, slice.View.Bytes.ToArray(), rowRange.Count, columns);
                    Assert.Equal(whole.AsSpan(rowRange.Start * columns, rowRange.Count * columns).ToArray(), part);
                }

                // The padded vocabulary's slices: ⌈rows / size⌉ rows from rank r's first, zeros past the tensor's last row.
                var padded = new IndexRange((rows + size) / size * r, (rows + size) / size);
                using (var slice = WeightSlice.Of(tensor, new WeightShard(ShardAxis.Rows, padded)))
                {
                    Assert.Equal([columns, padded.Count], slice.View.Shape);
                    var part = GgmlReference.Dequantize(type, slice.View.Bytes.ToArray(), padded.Count, columns);
                    var real = Math.Clamp(rows - padded.Start, 0, padded.Count) * columns;
                    Assert.Equal(whole.AsSpan(Math.Min(padded.Start * columns, whole.Length), real).ToArray(), part[..real]);
                    Assert.All(part[real..], value => Assert.Equal(0f, value));
                }

                var columnRange = new IndexRange(columns / size * r, columns / size);
                using (var slice = WeightSlice.Of(tensor, new WeightShard(ShardAxis.Columns, columnRange)))
                {
                    Assert.Equal([columnRange.Count, rows], slice.View.Shape);
                    var part = GgmlReference.Dequantize(type, slice.View.Bytes.ToArray(), rows, columnRange.Count);
                    for (var row = 0; row < rows; row++)
                    {
                        Assert.Equal(whole.AsSpan(row * columns + columnRange.Start, columnRange.Count).ToArray(), part.AsSpan(row * columnRange.Count, columnRange.Count).ToArray());
                    }
                }
            }
        }
        finally
        {
            handle.Free();
        }
    }
}
