namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// The launch of decode_persistent.cu (every block of a one-token step in one persistent kernel; see its header): rows per
/// tile of each projection, ring stages, the shared work area and the attention partitions. A pure function of the model's
/// shape and the device, unit-tested on the CPU; the constants mirror the kernel's <c>#define</c>s.
/// </summary>
/// <param name="QkvTileRows">Rows of q/k/v a tile holds (even: whole RoPE pairs).</param>
/// <param name="OutputTileRows">Rows of the attention output projection a tile holds.</param>
/// <param name="GateUpTileRows">Rows of gate, and the same rows of up, a tile holds.</param>
/// <param name="DownTileRows">Rows of down a tile holds.</param>
/// <param name="Stages">Ring stages of <see cref="StageBytes"/> each.</param>
/// <param name="WorkBytes">The work area after the ring: the widest activation's int8 codes and block scales, or attention's merge scratch.</param>
/// <param name="Partitions">Attention partitions of each KV head's positions (one item a block).</param>
public readonly record struct PersistentDecodeGeometry(int QkvTileRows, int OutputTileRows, int GateUpTileRows, int DownTileRows, int Stages,
    int WorkBytes, int Partitions)
{
    /// <summary>One ring stage (PD_STAGE_BYTES): 14 rows of a 4,096-wide nibble matrix with their scales, or 4 of a 14,336-wide one.</summary>
    public const int StageBytes = 32768;

    /// <summary>Consumer warps a block (PD_CONSUMER_WARPS); one producer warp more: 8 warps, so a thread may have 255 registers.</summary>
    public const int ConsumerWarps = 7;

    /// <summary>PD_MERGE_SLOTS: attention's tree merge over the consumer warps, the largest power of two below their count.</summary>
    public const int MergeSlots = 4;

    public const int Threads = (ConsumerWarps + 1) * 32;

    /// <summary>PD_MAX_STAGES: the mbarriers the kernel declares.</summary>
    public const int MaxStages = 8;

    /// <summary>Partitions at most (the merge reads them all for each value of a head).</summary>
    public const int MaxPartitions = 32;

    /// <summary>
    /// Query-head values of a KV head's group (G · headDim) at most: an attention lane holds G · headDim / 32 of the queries
    /// and as many of the output (8 heads of 128 would spill).
    /// </summary>
    public const int MaxGroupValues = 512;

    /// <summary>The widest normed input: a consumer thread holds one 32-value block of it from its sum of squares to its quantization.</summary>
    public const int MaxNormedWidth = 32 * ConsumerWarps * 32;

    /// <summary>PD_TRACE_PER_LAYER: a traced step's stamps a layer, 5 stages × (start, prologue done, work done, barrier passed).</summary>
    public const int TraceStampsPerLayer = 20;

    /// <summary>PD_TRACE_PER_BLOCK: a traced step's values a block, its nanoseconds from each grid barrier to its arrival at the next, summed by stage (q/k/v, attention, output, gate/up, down), then its SM.</summary>
    public const int TraceValuesPerBlock = 6;

    /// <summary>
    /// Values of a traced step of <paramref name="layers"/> layers over <paramref name="blocks"/> blocks:
    /// <see cref="TraceStampsPerLayer"/> global-timer stamps a layer of block 0's consumers, then each layer's nanoseconds
    /// its producer waited for a free stage, then <see cref="TraceValuesPerBlock"/> values a block.
    /// </summary>
    public static int TraceLength(int layers, int blocks) => (TraceStampsPerLayer + 1) * layers + TraceValuesPerBlock * blocks;

    /// <summary>Dynamic shared memory of the launch.</summary>
    public int SharedBytes => Stages * StageBytes + WorkBytes;

    /// <summary>
    /// The launch for a model of this shape, or null where the kernel does not serve it: widths (hidden, feed-forward,
    /// q rows) not multiples of 1,024 (a lane takes every 32nd 32-value block), a hidden width above 7,168 (a consumer
    /// thread normalises one 32-value block of it), more 32-row groups of the hidden rows a block than consumer warps (a
    /// residual stage's block stages its rows, and a warp a group quantizes the next norm's input), more feed-forward rows a
    /// block than consumer threads (gate/up's output waits in shared memory for its quantization), a head dimension other
    /// than 64 or 128, more than 8 query heads a KV head (or 8 of 128), or shared memory for fewer than 2 stages.
    /// </summary>
    /// <param name="sharedBytesPerBlock">Dynamic shared memory a block may have (the device's opt-in limit less the kernel's static shared memory).</param>
    public static PersistentDecodeGeometry? For(int dim, int feedForward, int heads, int kvHeads, int headDim, int multiprocessors, int sharedBytesPerBlock)
    {
        var qRows = heads * headDim;
        if (dim % 1024 != 0 || feedForward % 1024 != 0 || qRows % 1024 != 0 || headDim is not (64 or 128) || kvHeads < 1 || heads % kvHeads != 0
            || heads / kvHeads is not (1 or 2 or 4 or 8) || heads / kvHeads * headDim > MaxGroupValues || dim > MaxNormedWidth
            || (dim / 32 + multiprocessors - 1) / multiprocessors > ConsumerWarps
            || (feedForward + multiprocessors - 1) / multiprocessors > ConsumerWarps * 32)
        {
            return null;
        }

        var widest = Math.Max(Math.Max(dim, feedForward), qRows);
        var activationBytes = Align16(widest) + widest / 32 * 8;
        var mergeBytes = MergeSlots * (heads / kvHeads) * (2 + headDim) * sizeof(float);
        var work = Align16(Math.Max(activationBytes, mergeBytes));
        var stages = Math.Min(MaxStages, (sharedBytesPerBlock - work) / StageBytes);
        var qkv = TileRows(dim, 1) & ~1;
        var output = TileRows(qRows, 1);
        var gateUp = TileRows(dim, 2);
        var down = TileRows(feedForward, 1);
        if (stages < 2 || qkv < 2 || output < 1 || gateUp < 1 || down < 1)
        {
            return null;
        }

        return new PersistentDecodeGeometry(qkv, output, gateUp, down, stages, work, Math.Clamp(multiprocessors / kvHeads, 1, MaxPartitions));
    }

    /// <summary>Rows of a K-wide nibble matrix (codes K / 2 bytes a row, f16 scales K / 16) that fit a stage, for 1 or 2 matrices.</summary>
    private static int TileRows(int k, int matrices) => StageBytes / (matrices * (k / 2 + k / 16));

    private static int Align16(int bytes) => (bytes + 15) & ~15;
}
