using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;

namespace AspireAi.Inference.Tests.Backends;

/// <summary>
/// The CPU backend's paged attention against float64 softmax attention, and a prompt's tokens attended together (tiles of
/// consecutive tokens sharing each pass over the values) against the same tokens one step each: the same sums bit for bit.
/// </summary>
public sealed unsafe class CpuAttentionTests
{
    [Theory]
    [InlineData(64, 4, 2, 13, KvCacheDtype.Float32)]  // 512-bit chunks; tiles of 8 and 5 tokens (groups of four and single ones)
    [InlineData(48, 6, 6, 21, KvCacheDtype.Float32)]  // stories15M's heads: 48 wide, no grouping
    [InlineData(100, 2, 1, 7, KvCacheDtype.Float32)]  // a width that is no multiple of 8: the scalar paths
    [InlineData(64, 4, 2, 13, KvCacheDtype.BFloat16)] // the same over a bf16 cache (against the reference on the bf16 values)
    [InlineData(48, 6, 6, 21, KvCacheDtype.BFloat16)]
    [InlineData(100, 2, 1, 7, KvCacheDtype.BFloat16)]
    [InlineData(64, 4, 2, 13, KvCacheDtype.Float8E4M3)] // and over an fp8 cache (the reference on the E4M3 values)
    [InlineData(48, 6, 6, 21, KvCacheDtype.Float8E4M3)]
    [InlineData(100, 2, 1, 7, KvCacheDtype.Float8E4M3)]
    public void Prompt_tokens_together_equal_tokens_one_by_one_and_the_float64_reference(int headDim, int heads, int kvHeads, int tokens, KvCacheDtype dtype)
    {
        const int blockSize = 16;
        var random = new Random(headDim * 31 + tokens);
        using var backend = new CpuBackend(2);
        var shape = new KvCacheShape(1, kvHeads, headDim, blockSize, 4, dtype);
        using var cache = (CpuKvCache)backend.CreateKvCache(shape);
        int[] table = [2, 0, 3, 1]; // blocks out of order: positions go through the table
        var slots = Enumerable.Range(0, tokens).Select(p => table[p / blockSize] * blockSize + p % blockSize).ToArray();
        var width = kvHeads * headDim;
        var keys = Enumerable.Range(0, tokens * width).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var values = Enumerable.Range(0, tokens * width).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        for (var p = 0; p < tokens; p++)
        {
            fixed (float* k = &keys[p * width], v = &values[p * width])
            {
                cache.Store(k, cache.Keys(0, slots[p]));
                cache.Store(v, cache.Values(0, slots[p]));
            }
        }

        // The reference attends over what the cache holds: every key and value rounded to its type.
        Func<float, float>? rounded = dtype switch
        {
            KvCacheDtype.BFloat16 => x => BitConverter.Int32BitsToSingle(BFloat16Row.Round(x) << 16),
            KvCacheDtype.Float8E4M3 => x => Float8E4M3Row.Decode(Float8E4M3Row.Round(x)),
            _ => null,
        };
        if (rounded is not null)
        {
            keys = keys.Select(rounded).ToArray();
            values = values.Select(rounded).ToArray();
        }

        var queries = Enumerable.Range(0, tokens * heads * headDim).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        var together = Attend(backend, cache, table, slots, queries, Enumerable.Range(0, tokens).ToArray(), heads * headDim);
        for (var p = 0; p < tokens; p++)
        {
            var alone = Attend(backend, cache, table, slots, queries.AsSpan(p * heads * headDim, heads * headDim).ToArray(), [p], heads * headDim);
            Assert.Equal(alone, together.AsSpan(p * heads * headDim, heads * headDim).ToArray());
        }

        var group = heads / kvHeads;
        for (var p = 0; p < tokens; p++)
        {
            for (var h = 0; h < heads; h++)
            {
                var kv = h / group;
                var scores = Enumerable.Range(0, p + 1).Select(j =>
                    Enumerable.Range(0, headDim).Sum(d => (double)queries[(p * heads + h) * headDim + d] * keys[j * width + kv * headDim + d]) / Math.Sqrt(headDim)).ToArray();
                var max = scores.Max();
                var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                var total = weights.Sum();
                for (var d = 0; d < headDim; d++)
                {
                    var expected = Enumerable.Range(0, p + 1).Sum(j => weights[j] / total * values[j * width + kv * headDim + d]);
                    var actual = together[(p * heads + h) * headDim + d];
                    Assert.True(Math.Abs(actual - expected) < 1e-5, $"token {p} head {h} [{d}]: {actual} vs {expected}");
                }
            }
        }
    }

    /// <summary>Attention of the given positions of one sequence (its queries in order) in one step.</summary>
    private static float[] Attend(CpuBackend backend, CpuKvCache cache, int[] table, int[] slots, float[] queries, int[] positions, int width)
    {
        var batch = new ForwardBatch(positions.Length, 1, table.Length);
        var sequence = batch.AddSequence(table);
        foreach (var p in positions)
        {
            batch.AddToken(1, p, sequence, slots[p], needsLogits: false);
        }

        using var query = backend.CreateTensor(positions.Length, width);
        using var output = backend.CreateTensor(positions.Length, width);
        backend.WriteRows(query, queries);
        backend.BeginBatch(batch);
        backend.PagedAttention(query, cache, 0, output);
        var result = new float[positions.Length * width];
        backend.ReadRows(output, positions.Length, result);
        return result;
    }
}
