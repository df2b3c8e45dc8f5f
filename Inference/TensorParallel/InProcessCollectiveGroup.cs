using System.Numerics.Tensors;
using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cpu;

namespace AspireAi.Inference.TensorParallel;

/// <summary>
/// Collectives between CPU-backend ranks that run as threads of one process: each rank publishes a pointer to its tensor,
/// every rank reads all of them, and a barrier on either side keeps the buffers still while they are read. The sum runs
/// in rank order 0, 1, …, N − 1 for every element on every rank, so the result is deterministic and identical on all
/// ranks (as the residual stream, which every rank keeps a copy of, must be). Written here rather than taken from a
/// library because no .NET package does collectives between threads over native buffers; it is what the tests drive the
/// whole tensor-parallel structure with on machines without GPUs.
/// </summary>
public sealed unsafe class InProcessCollectiveGroup : ICollectiveGroup
{
    private readonly Barrier _barrier;
    private readonly CancellationTokenSource _abort = new();
    private readonly float*[] _published;
    private readonly RankCollectives[] _ranks;

    public InProcessCollectiveGroup(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        Size = size;
        _barrier = new Barrier(size);
        _published = new float*[size];
        _ranks = Enumerable.Range(0, size).Select(r => new RankCollectives(this, r)).ToArray();
    }

    public int Size { get; }

    public IRankCollectives Rank(int rank) => _ranks[rank];

    public void Abort() => _abort.Cancel();

    private void Wait()
    {
        try
        {
            _barrier.SignalAndWait(_abort.Token);
        }
        catch (OperationCanceledException e)
        {
            throw new OperationCanceledException("Another tensor-parallel rank failed during this step.", e, _abort.Token);
        }
    }

    public void Dispose()
    {
        _barrier.Dispose();
        _abort.Dispose();
    }

    private sealed class RankCollectives(InProcessCollectiveGroup group, int rank) : IRankCollectives
    {
        private float[] _sum = [];

        public int Rank => rank;

        public int Size => group.Size;

        public void AllReduceSum(DeviceTensor tensor, int rows)
        {
            var x = (CpuTensor)tensor;
            var n = rows * x.Columns;
            if (_sum.Length < n)
            {
                _sum = new float[n];
            }

            var sum = _sum.AsSpan(0, n);
            group._published[rank] = x.Data;
            group.Wait();
            new ReadOnlySpan<float>(group._published[0], n).CopyTo(sum);
            for (var r = 1; r < group.Size; r++)
            {
                TensorPrimitives.Add(sum, new ReadOnlySpan<float>(group._published[r], n), sum);
            }

            // Every rank has read every tensor before any rank overwrites its own.
            group.Wait();
            sum.CopyTo(new Span<float>(x.Data, n));
            x.MarkWritten();
        }

        public void AllGatherColumns(DeviceTensor shard, DeviceTensor gathered, int rows)
        {
            var s = (CpuTensor)shard;
            var g = (CpuTensor)gathered;
            var width = s.Columns;
            GatheredColumns.Check(width, group.Size, g.Columns);
            group._published[rank] = s.Data;
            group.Wait();
            for (var r = 0; r < group.Size; r++)
            {
                var count = GatheredColumns.Of(width, r, g.Columns);
                for (var row = 0; row < rows; row++)
                {
                    new ReadOnlySpan<float>(group._published[r] + (long)row * width, count).CopyTo(new Span<float>(g.Row(row) + r * width, count));
                }
            }

            group.Wait();
            g.MarkWritten();
        }
    }
}
