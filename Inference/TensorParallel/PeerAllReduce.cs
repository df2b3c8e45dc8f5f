using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Backends.Cuda.Driver;

namespace AspireAi.Inference.TensorParallel;

/// <summary>
/// A one-shot all-reduce through peer access (collectives.cu's <c>peer_all_reduce</c>) for the messages of decode steps —
/// two per layer of a few KB to 1 MB — where a NCCL call's fixed latency is most of its time (vLLM's custom all-reduce is
/// the anchor). Each rank launches the kernel on its partial sums, in place: block by block it stages its share, signals
/// the peers, waits for theirs, and sums every rank's share in rank order. The call counters live in device memory, so a
/// decode step captured as a CUDA graph (collectives included) replays correctly. Larger messages (prefill) go to NCCL.
/// </summary>
/// <remarks>Written here because NCCL has no such latency-bound path for in-process ranks and the registry offers nothing.</remarks>
internal sealed class PeerAllReduce : IDisposable
{
    /// <summary>Ranks the kernel's pointer table holds (PEER_MAX_RANKS).</summary>
    public const int MaxRanks = 8;

    /// <summary>Floats per staging slot: 32 decode rows × 8192 (Llama-3-70B's width), 1 MB.</summary>
    public const long Capacity = 32 * 8192;

    /// <summary>The kernel's grid, fixed: block b of every rank handles the same elements and keeps its own call counter.</summary>
    public const int Blocks = 32;

    private readonly CudaBackend[] _backends;
    private readonly CudaDeviceBuffer<float>[] _staging;
    private readonly CudaDeviceBuffer<uint>[] _flags;
    private readonly CudaDeviceBuffer<ulong>[] _tables;
    private readonly CudaDeviceBuffer<uint>[] _epochs;

    private PeerAllReduce(CudaBackend[] backends)
    {
        _backends = backends;
        var size = backends.Length;
        _staging = new CudaDeviceBuffer<float>[size];
        _flags = new CudaDeviceBuffer<uint>[size];
        _tables = new CudaDeviceBuffer<ulong>[size];
        _epochs = new CudaDeviceBuffer<uint>[size];
        for (var r = 0; r < size; r++)
        {
            var b = backends[r];
            b.Context.MakeCurrent();
            _staging[r] = new CudaDeviceBuffer<float>(b.Context, 2 * Capacity);
            _flags[r] = new CudaDeviceBuffer<uint>(b.Context, Blocks * MaxRanks);
            _flags[r].Fill(b.Stream, 0);
            _epochs[r] = new CudaDeviceBuffer<uint>(b.Context, Blocks);
            _epochs[r].Fill(b.Stream, 0);
        }

        Span<ulong> table = stackalloc ulong[2 * MaxRanks];
        for (var r = 0; r < size; r++)
        {
            table[r] = _staging[r].Pointer.Address;
            table[MaxRanks + r] = _flags[r].Pointer.Address;
        }

        for (var r = 0; r < size; r++)
        {
            var b = backends[r];
            b.Context.MakeCurrent();
            _tables[r] = new CudaDeviceBuffer<ulong>(b.Context, 2 * MaxRanks);
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
    /// the message is larger than a staging slot (the caller uses NCCL). Every rank calls it for the same tensors in the
    /// same order, from its own thread, so the per-block call counts on the devices agree.
    /// </summary>
    public bool TryAllReduce(int rank, CudaTensor x, int rows)
    {
        var n = (long)rows * x.Columns;
        if (n > Capacity)
        {
            return false;
        }

        var b = _backends[rank];
        b.Context.MakeCurrent();
        b.Kernels.PeerAllReduce.Launch(b.Stream, Blocks, 1024, 0, _tables[rank], _epochs[rank], rank, _backends.Length, Capacity, n, x.Data);
        return true;
    }

    public void Dispose()
    {
        for (var r = 0; r < _backends.Length; r++)
        {
            _backends[r].Context.MakeCurrent();
            _staging[r].Dispose();
            _flags[r].Dispose();
            _tables[r].Dispose();
            _epochs[r].Dispose();
        }
    }
}
