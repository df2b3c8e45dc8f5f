using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Backends.Cuda.Driver;

namespace AspireAi.Inference.TensorParallel;

/// <summary>
/// A one-shot all-reduce through peer access (collectives.cu's <c>peer_all_reduce</c>) for the messages of decode steps —
/// two per layer of a few KB to 1 MB — where a NCCL call's fixed latency is most of its time (vLLM's custom all-reduce is
/// the anchor, TensorRT-LLM's Lamport all-reduce the protocol). Each rank launches the kernel on its partial sums, in
/// place: block by block it writes its share into every peer's staging, waits until every peer's share has landed in its
/// own (an empty element reads as −0.0, so the data is its own arrival flag), sums them in rank order and empties what it
/// read. The call counters live in device memory, so a decode step captured as a CUDA graph (collectives included) replays
/// correctly. Larger messages (prefill) go to NCCL.
/// </summary>
/// <remarks>Written here because NCCL has no such latency-bound path for in-process ranks and the registry offers nothing.</remarks>
internal sealed class PeerAllReduce : IDisposable
{
    /// <summary>Most ranks: the length of the staging-pointer table each rank's kernel reads.</summary>
    public const int MaxRanks = 8;

    /// <summary>Floats per rank's row of a staging slot: 32 decode rows × 8192 (Llama-3-70B's width), 1 MB.</summary>
    public const long Capacity = 32 * 8192;

    /// <summary>What an empty staging element holds (−0.0f; the kernel sends a −0.0 as +0.0).</summary>
    private const uint Empty = 0x80000000;

    /// <summary>The kernel's grid, fixed: block b of every rank handles the same elements and keeps its own call counter.</summary>
    public const int Blocks = 32;

    private readonly CudaBackend[] _backends;
    private readonly CudaDeviceBuffer<float>[] _staging;
    private readonly CudaDeviceBuffer<ulong>[] _tables;
    private readonly CudaDeviceBuffer<uint>[] _epochs;

    private PeerAllReduce(CudaBackend[] backends)
    {
        _backends = backends;
        var size = backends.Length;
        _staging = new CudaDeviceBuffer<float>[size];
        _tables = new CudaDeviceBuffer<ulong>[size];
        _epochs = new CudaDeviceBuffer<uint>[size];
        for (var r = 0; r < size; r++)
        {
            var b = backends[r];
            b.Context.MakeCurrent();
            _staging[r] = new CudaDeviceBuffer<float>(b.Context, 2 * size * Capacity);  // [2 slots][size ranks][Capacity]
            _staging[r].Fill(b.Stream, Empty);
            _epochs[r] = new CudaDeviceBuffer<uint>(b.Context, Blocks);
            _epochs[r].Fill(b.Stream, 0);
        }

        Span<ulong> table = stackalloc ulong[MaxRanks];
        for (var r = 0; r < size; r++)
        {
            table[r] = _staging[r].Pointer.Address;
        }

        for (var r = 0; r < size; r++)
        {
            var b = backends[r];
            b.Context.MakeCurrent();
            _tables[r] = new CudaDeviceBuffer<ulong>(b.Context, MaxRanks);
            _tables[r].CopyFrom(b.Stream, table);
            b.Stream.Synchronize();
        }
    }

    /// <summary>
    /// The peer all-reduce for these ranks, or null (with the reason) where it cannot run: more ranks than its table holds,
    /// or a pair of devices without peer access.
    /// </summary>
    public static PeerAllReduce? TryCreate(IReadOnlyList<CudaBackend> backends, out string reason)
    {
        if (backends.Count > MaxRanks)
        {
            reason = $"more than {MaxRanks} ranks";
            return null;
        }

        foreach (var a in backends)
        {
            foreach (var b in backends)
            {
                if (a != b && !a.Context.EnablePeerAccess(b.Context))
                {
                    reason = $"device {a.Context.Ordinal} cannot access device {b.Context.Ordinal}'s memory";
                    return null;
                }
            }
        }

        reason = $"peer all-reduce up to {Capacity * sizeof(float) >> 10} KB, NCCL above";
        return new PeerAllReduce([.. backends]);
    }

    /// <summary>
    /// Queues the all-reduce of <paramref name="x"/>'s first rows on <paramref name="rank"/>'s stream, or returns false when
    /// the message is larger than a rank's row of a staging slot or not whole float4s (the caller uses NCCL). Every rank
    /// calls it for the same tensors in the same order, from its own thread, so the per-block call counts on the devices
    /// agree.
    /// </summary>
    public bool TryAllReduce(int rank, CudaTensor x, int rows)
    {
        var n = (long)rows * x.Columns;
        if (n > Capacity || n % 4 != 0)
        {
            return false;
        }

        _backends[rank].Context.MakeCurrent();
        Launch(rank, n, x, default);
        return true;
    }

    /// <summary>
    /// The all-reduce of one row of partial sums <paramref name="x"/>, added into <paramref name="residual"/> with the next
    /// norm folded into the GEMV that reads <paramref name="output"/> (<see cref="CudaBackend.FoldNorm"/>; collectives.cu);
    /// false where it cannot (a message too large, a width that does not give each of the <see cref="Blocks"/> blocks whole
    /// 32-value blocks of the norm — a multiple of 1,024 — or a norm that cannot be folded), and nothing is queued then.
    /// </summary>
    public bool TryAllReduceAddNorm(int rank, CudaTensor x, CudaTensor residual, DeviceWeight norm, float epsilon, CudaTensor output)
    {
        var n = (long)x.Columns;
        var b = _backends[rank];
        if (n > Capacity || n % (8 * 4 * Blocks) != 0 || residual.Columns != x.Columns)
        {
            return false;
        }

        b.Context.MakeCurrent();
        if (b.FoldNorm(residual, norm, epsilon, output, 1) is not { } fold)
        {
            return false;
        }

        Launch(rank, n, x, fold);
        return true;
    }

    /// <summary>peer_all_reduce on rank's stream, with the producer's outputs of a folded norm (all null: a plain all-reduce).</summary>
    private void Launch(int rank, long n, CudaTensor x, FoldedNormOutputs fold)
    {
        var b = _backends[rank];
        b.Kernels.PeerAllReduce.Launch(b.Stream, Blocks, 1024, 0, _tables[rank], _epochs[rank], rank, _backends.Length, Capacity, n, x.Data,
            fold.Residual, fold.NormWeight, fold.Values, fold.Codes, fold.ScaleSums, fold.Sums);
    }

    public void Dispose()
    {
        for (var r = 0; r < _backends.Length; r++)
        {
            _backends[r].Context.MakeCurrent();
            _staging[r].Dispose();
            _tables[r].Dispose();
            _epochs[r].Dispose();
        }
    }
}
