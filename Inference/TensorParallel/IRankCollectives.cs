using AspireAi.Inference.Backends;

namespace AspireAi.Inference.TensorParallel;

/// <summary>
/// The collective operations one rank of a tensor-parallel group takes part in, on that rank's own tensors. Every rank
/// calls the same operations in the same order with tensors of the same shapes (each runs the same step); a call returns
/// when this rank's result is in place, or, on a device backend, once it is queued on the rank's stream behind the work
/// that produced the input.
/// </summary>
public interface IRankCollectives
{
    int Rank { get; }

    int Size { get; }

    /// <summary>tensor = Σ over ranks of each rank's tensor, for the first <paramref name="rows"/> rows, in place on every rank.</summary>
    void AllReduceSum(DeviceTensor tensor, int rows);

    /// <summary>
    /// residual += Σ over ranks of <paramref name="partial"/>, then output = RMSNorm(residual) · norm, on every rank: what
    /// follows a layer's split projections (attention output, down). By default <see cref="AllReduceSum"/> and the
    /// backend's <see cref="IBackend.AddRmsNorm"/>; a device group may add into the residual in the all-reduce itself and
    /// fold the norm into the matmul that reads <paramref name="output"/> (<see cref="IBackend.MatMulAddRmsNorm"/>), leaving
    /// <paramref name="partial"/> unreduced.
    /// </summary>
    void AllReduceAddRmsNorm(IBackend backend, DeviceTensor partial, DeviceTensor residual, DeviceWeight norm, float epsilon, DeviceTensor output, int rows)
    {
        AllReduceSum(partial, rows);
        backend.AddRmsNorm(residual, partial, norm, epsilon, output, rows);
    }

    /// <summary>
    /// gathered[row, r · shard.Columns + c] = rank r's shard[row, c] for the first <paramref name="rows"/> rows, on every
    /// rank: the vocabulary-parallel logits put side by side into full rows. Where <paramref name="gathered"/> is narrower
    /// than the shards together (a padded vocabulary, <see cref="ShardPlan.VocabularyShard"/>), the columns past its width
    /// are left out (<see cref="GatheredColumns"/>).
    /// </summary>
    void AllGatherColumns(DeviceTensor shard, DeviceTensor gathered, int rows);
}

/// <summary>How equal vocabulary shards fill a gathered row that the padding makes narrower than all of them together.</summary>
internal static class GatheredColumns
{
    /// <summary>
    /// Throws unless <paramref name="gathered"/> columns are what <paramref name="size"/> shards of <paramref name="width"/>
    /// = ⌈gathered / size⌉ cover: all of them, or fewer by the padding, which is under <paramref name="size"/> columns.
    /// </summary>
    public static void Check(int width, int size, int gathered)
    {
        if (gathered > width * size || gathered <= width * size - size)
        {
            throw new ArgumentException(
                $"Gathering {size} shards of {width} columns fills {width * size} columns, or down to {width * size - size + 1} with the vocabulary's padding; not {gathered}.",
                nameof(gathered));
        }
    }

    /// <summary>
    /// The columns of rank <paramref name="rank"/>'s shard that land in the gathered row: all, fewer for a rank whose shard
    /// ends in padding, none for one that is all padding.
    /// </summary>
    public static int Of(int width, int rank, int gathered) => Math.Clamp(gathered - rank * width, 0, width);
}

/// <summary>A tensor-parallel group's collectives: one <see cref="IRankCollectives"/> per rank.</summary>
public interface ICollectiveGroup : IDisposable
{
    int Size { get; }

    IRankCollectives Rank(int rank);

    /// <summary>
    /// Called by a rank that failed mid-step: releases the ranks waiting in a collective for it (their calls throw), so that
    /// the step ends with the failure instead of hanging. The group is unusable afterwards.
    /// </summary>
    void Abort();
}
