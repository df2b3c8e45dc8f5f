using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// Paged causal attention, a tile's query heads per work item (a tile: up to <see cref="TileTokens"/> consecutive tokens of
/// one sequence, or one decode token): scores against the keys of positions 0…position of each token's sequence found
/// through its block table, a max-subtracted softmax, and the weighted sum of values, over a float32 or bf16 cache.
/// </summary>
/// <remarks>
/// Positions are walked block by block, all heads of a token together, so the keys and values stream through memory in
/// order (a slot holds every KV head of a position, contiguously), and the softmax runs vectorised over whole rows. Before,
/// one head per work item read 48 floats of every 288-float slot, with a division and a modulo per position: with
/// stories15M's 48-wide heads that made attention as costly as every matrix product of a 32-sequence decode step (perf:
/// 39 % vs 42 % of the samples).
/// </remarks>
internal sealed unsafe class AttentionJob : IParallelWork
{
    public CpuTensor Query = null!;
    public CpuTensor Output = null!;
    public CpuKvCache Cache = null!;
    public int Layer;
    public ForwardBatch Batch = null!;
    public float[][] Scores = [];

    /// <summary>
    /// Most consecutive query tokens of one sequence that share each pass over the keys and values: the weighted sum of
    /// values then loads each value row once for all of them (<see cref="VectorMath.WeightedRowSum4"/>).
    /// </summary>
    private const int TileTokens = 8;

    private int[] _tileStarts = [];
    private int _tileCount;

    /// <summary>Splits the batch into tiles: runs of up to <see cref="TileTokens"/> tokens of one sequence at consecutive positions.</summary>
    public void Prepare()
    {
        if (_tileStarts.Length < Batch.TokenCount + 1)
        {
            _tileStarts = new int[Batch.TokenCount + 1];
        }

        _tileCount = 0;
        for (var t = 0; t < Batch.TokenCount; t++)
        {
            var start = _tileCount > 0 ? _tileStarts[_tileCount - 1] : -1;
            var extends = start >= 0 && t - start < TileTokens && Batch.SequenceIndices[t] == Batch.SequenceIndices[t - 1]
                && Batch.Positions[t] == Batch.Positions[t - 1] + 1;
            if (!extends)
            {
                _tileStarts[_tileCount++] = t;
            }
        }

        _tileStarts[_tileCount] = Batch.TokenCount;
    }

    public void Execute(int worker, int workerCount)
    {
        switch (Cache.Shape.Dtype)
        {
            case KvCacheDtype.BFloat16:
                Attend<BFloat16Row>(worker, workerCount);
                break;
            case KvCacheDtype.Float8E4M3:
                Attend<Float8E4M3Row>(worker, workerCount);
                break;
            default:
                Attend<Float32Row>(worker, workerCount);
                break;
        }
    }

    /// <summary>The work of one worker over a cache whose keys and values <typeparamref name="TKv"/> reads.</summary>
    private void Attend<TKv>(int worker, int workerCount)
        where TKv : IFloatRow
    {
        var shape = Cache.Shape;
        var headDim = shape.HeadDim;
        var heads = Query.Columns / headDim;
        var group = heads / shape.KvHeads;
        var scale = 1f / MathF.Sqrt(headDim);
        var eightAtOnce = Vector256.IsHardwareAccelerated && Avx.IsSupported && headDim % 8 == 0;
        var blockSize = shape.BlockSize;
        var headBytes = headDim * TKv.ElementBytes;
        // A work item is a tile's heads (or a share of them when there are fewer tiles than workers), so each position's
        // keys and values of all those heads are read in one contiguous run.
        var parts = _tileCount >= workerCount ? 1 : Math.Min(heads, workerCount);
        var items = _tileCount * parts;
        var longest = TileTokens * Batch.MaxContextLength * heads;
        if (Scores[worker].Length < longest)
        {
            Scores[worker] = new float[longest];
        }

        fixed (float* scores = Scores[worker])
        {
            // Items are dealt out in turn rather than in contiguous ranges: a prompt's later tokens attend to more positions,
            // and with contiguous halves the second worker of a 128-token prefill had three times the first one's work.
            for (var item = worker; item < items; item += workerCount)
            {
                var tile = item / parts;
                var part = item % parts;
                var (firstHead, lastHead) = (part * heads / parts, (part + 1) * heads / parts);
                var headCount = lastHead - firstHead;
                var (first, count) = (_tileStarts[tile], _tileStarts[tile + 1] - _tileStarts[tile]);
                var table = Batch.BlockTable(Batch.SequenceIndices[first]);
                // Scores of query i, head h at row (i · headCount + h − firstHead) · span; each query's row is zero past its
                // own context, so the tile's value pass can weight every row of the span.
                var span = Batch.Positions[first] + count;
                for (var i = 0; i < count; i++)
                {
                    var token = first + i;
                    var length = Batch.Positions[token] + 1;
                    var queries = Query.Row(token);
                    var rows = scores + i * headCount * span;
                    for (int b = 0, p = 0; p < length; b++)
                    {
                        var slot = (long)table[b] * blockSize;
                        var blockEnd = Math.Min(length, p + blockSize);
                        if (eightAtOnce)
                        {
                            // Eight positions of a head at once: one query load per chunk, one shuffle tree for the sums.
                            for (; p + 8 <= blockEnd; p += 8, slot += 8)
                            {
                                var keys = Cache.Keys(Layer, slot);
                                for (var h = firstHead; h < lastHead; h++)
                                {
                                    VectorMath.Dot8<TKv>(queries + h * headDim, keys + h / group * headBytes, Cache.SlotBytes, headDim, scale, rows + (h - firstHead) * span + p);
                                }
                            }
                        }

                        for (; p < blockEnd; p++, slot++)
                        {
                            var keys = Cache.Keys(Layer, slot);
                            for (var h = firstHead; h < lastHead; h++)
                            {
                                rows[(h - firstHead) * span + p] = VectorMath.Dot<TKv>(queries + h * headDim, keys + h / group * headBytes, headDim) * scale;
                            }
                        }
                    }

                    for (var h = firstHead; h < lastHead; h++)
                    {
                        var row = new Span<float>(rows + (h - firstHead) * span, length);
                        TensorPrimitives.Subtract(row, TensorPrimitives.Max(row), row);
                        TensorPrimitives.Exp(row, row);
                        TensorPrimitives.Multiply(row, 1f / TensorPrimitives.Sum(row), row);
                        new Span<float>(rows + (h - firstHead) * span + length, span - length).Clear();
                    }

                    new Span<float>(Output.Row(token) + firstHead * headDim, headCount * headDim).Clear();
                }

                var weightStride = headCount * span;
                for (int b = 0, p = 0; p < span; b++)
                {
                    var values = Cache.Values(Layer, (long)table[b] * blockSize);
                    var blockRows = Math.Min(span - p, blockSize);
                    for (var h = firstHead; h < lastHead; h++)
                    {
                        var weights = scores + (h - firstHead) * span + p;
                        var v = values + h / group * headBytes;
                        var i = 0;
                        for (; i + 4 <= count; i += 4)
                        {
                            VectorMath.WeightedRowSum4<TKv>(weights + i * weightStride, weightStride, v, Cache.SlotBytes, blockRows,
                                Output.Row(first + i) + h * headDim, Output.Columns, headDim);
                        }

                        for (; i < count; i++)
                        {
                            VectorMath.WeightedRowSum<TKv>(weights + i * weightStride, v, Cache.SlotBytes, blockRows, Output.Row(first + i) + h * headDim, headDim);
                        }
                    }

                    p += blockRows;
                }
            }
        }
    }
}
