using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;
using AspireAi.Inference.TensorParallel;

namespace AspireAi.Inference.Tests.TensorParallel;

/// <summary>
/// A rank that fails mid-step while the others wait for it in a collective: the step must end with that rank's error, not
/// hang, and the in-process collectives must sum in rank order.
/// </summary>
public sealed class RankFailureTests
{
    [Fact]
    public void A_failing_rank_releases_the_ranks_waiting_in_a_collective_and_its_error_surfaces()
    {
        using var group = new InProcessCollectiveGroup(3);
        using var threads = new RankThreads(3, group.Abort);
        using var backend = new CpuBackend(threads: 1);
        var tensors = Enumerable.Range(0, 3).Select(_ => backend.CreateTensor(2, 8)).ToArray();
        try
        {
            var error = Assert.Throws<InvalidDataException>(() => threads.Run(rank =>
            {
                if (rank == 1)
                {
                    throw new InvalidDataException("rank 1 broke");
                }

                group.Rank(rank).AllReduceSum(tensors[rank], 2);
            }));
            Assert.Equal("rank 1 broke", error.Message);
        }
        finally
        {
            foreach (var tensor in tensors)
            {
                tensor.Dispose();
            }
        }
    }

    [Fact]
    public void All_reduce_sums_every_rank_and_all_gather_puts_shards_side_by_side()
    {
        const int size = 3, rows = 2, width = 5;
        using var group = new InProcessCollectiveGroup(size);
        using var threads = new RankThreads(size, group.Abort);
        using var backend = new CpuBackend(threads: 1);
        var sums = Enumerable.Range(0, size).Select(_ => backend.CreateTensor(rows + 1, width)).ToArray();
        var shards = Enumerable.Range(0, size).Select(_ => backend.CreateTensor(rows + 1, width)).ToArray();
        var gathered = Enumerable.Range(0, size).Select(_ => backend.CreateTensor(rows + 1, width * size)).ToArray();
        static float Value(int rank, int row, int column) => rank * 100 + row * 10 + column;
        try
        {
            for (var r = 0; r < size; r++)
            {
                var values = Enumerable.Range(0, (rows + 1) * width).Select(i => Value(r, i / width, i % width)).ToArray();
                backend.WriteRows(sums[r], values);
                backend.WriteRows(shards[r], values);
            }

            threads.Run(rank =>
            {
                group.Rank(rank).AllReduceSum(sums[rank], rows);
                group.Rank(rank).AllGatherColumns(shards[rank], gathered[rank], rows);
            });

            for (var r = 0; r < size; r++)
            {
                var sum = new float[(rows + 1) * width];
                backend.ReadRows(sums[r], rows + 1, sum);
                for (var i = 0; i < rows * width; i++)
                {
                    Assert.Equal(Enumerable.Range(0, size).Sum(rank => Value(rank, i / width, i % width)), sum[i]);
                }

                // Rows beyond the count are left alone.
                Assert.Equal(Value(r, rows, 0), sum[rows * width]);
                var all = new float[rows * width * size];
                backend.ReadRows(gathered[r], rows, all);
                for (var row = 0; row < rows; row++)
                {
                    for (var column = 0; column < width * size; column++)
                    {
                        Assert.Equal(Value(column / width, row, column % width), all[row * width * size + column]);
                    }
                }
            }
        }
        finally
        {
            foreach (var tensor in sums.Concat(shards).Concat(gathered))
            {
                tensor.Dispose();
            }
        }
    }
}
