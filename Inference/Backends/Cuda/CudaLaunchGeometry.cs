namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// Launch shapes of the kernels, as pure functions of the problem (unit-tested on the CPU). The constants mirror the
/// kernel sources' <c>#define</c>s; each kernel's header comment gives its grid and block.
/// </summary>
public static class CudaLaunchGeometry
{
    /// <summary>Activation rows up to which matmuls take the GEMV path (GEMV_MAX_ROWS in matmul.cu).</summary>
    public const int GemvMaxRows = 8;

    /// <summary>Weight rows per GEMV block: one warp each, 4 warps.</summary>
    public const int GemvRowsPerBlock = 4;

    /// <summary>GEMM tiles are 64 weight rows × 64 activation rows.</summary>
    public const int GemmTile = 64;

    /// <summary>Positions scored per attention tile (ATT_TILE) and threads per attention block (ATT_THREADS).</summary>
    public const int AttentionTile = 128;

    /// <summary>Most outputs (query heads of a group × head dimension) one attention block accumulates: 128 threads × 16.</summary>
    public const int AttentionMaxGroupWidth = 128 * 16;

    public static bool UseGemv(int rows) => rows <= GemvMaxRows;

    public static (int X, int Y) MatMulGrid(int rows, int outputs, bool gemv) => gemv
        ? (Ceiling(outputs, GemvRowsPerBlock), 1)
        : (Ceiling(outputs, GemmTile), Ceiling(rows, GemmTile));

    /// <summary>
    /// How to split each token's context across attention blocks: a partition length (a multiple of the 128-position tile)
    /// and the number of partitions of the longest context. One partition when tokens × KV heads already gives every
    /// multiprocessor two blocks; otherwise halve the partition (flash-decoding) until it does, down to one tile.
    /// </summary>
    public static (int Partition, int Splits) AttentionSplit(int tokens, int kvHeads, int maxContext, int multiprocessors)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxContext);
        var partition = Ceiling(maxContext, AttentionTile) * AttentionTile;
        var target = 2 * multiprocessors;
        while (partition > AttentionTile && (long)tokens * kvHeads * Ceiling(maxContext, partition) < target)
        {
            partition = Math.Max(AttentionTile, Ceiling(partition / 2, AttentionTile) * AttentionTile);
        }

        return (partition, Ceiling(maxContext, partition));
    }

    /// <summary>Dynamic shared memory of attention_partition: queries, scores, per-head statistics and the tile's slots.</summary>
    public static int AttentionSharedBytes(int group, int headDim) =>
        (group * headDim + group * AttentionTile + 3 * group + AttentionTile) * sizeof(float);

    public static int Ceiling(int value, int divisor) => (value + divisor - 1) / divisor;

    public static long Ceiling(long value, long divisor) => (value + divisor - 1) / divisor;
}
