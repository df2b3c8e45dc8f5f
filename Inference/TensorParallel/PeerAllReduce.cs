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
/// correctly. Larger messages (prefill) go to NCCL. Before a norm, the all-reduce and the residual add and RMSNorm after it
/// run as one kernel (<see cref="TryAllReduceAddRmsNorm"/>: a row over a thread-block cluster, the norm's sum through its
/// distributed shared memory), with staging and counters of their own.
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

    /// <summary>
    /// Rows up to which the all-reduce fused with the norm after it (<see cref="TryAllReduceAddRmsNorm"/>) runs: a decode
    /// batch of up to 32 sequences. Each row's cluster keeps a call counter a block.
    /// </summary>
    public const int NormMaxRows = 32;

    private readonly CudaBackend[] _backends;
    private readonly Channel _plain;
    private readonly Channel _norm;

    private PeerAllReduce(CudaBackend[] backends)
    {
        _backends = backends;
        _plain = new Channel(backends, Blocks);
        _norm = new Channel(backends, NormMaxRows * CudaLaunchGeometry.AllReduceNormCluster);
    }

    /// <summary>
    /// Whether <see cref="TryAllReduceAddRmsNorm"/> fuses (the default; <c>ASPIREAI_TP_ALLREDUCE=unfused</c> turns it off at
    /// start): GpuCheck times both side by side with it.
    /// </summary>
    public bool FuseNorm { get; set; } = Environment.GetEnvironmentVariable("ASPIREAI_TP_ALLREDUCE") != "unfused";

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

        var b = _backends[rank];
        b.Context.MakeCurrent();
        b.Kernels.PeerAllReduce.Launch(b.Stream, Blocks, 1024, 0, _plain.Tables[rank], _plain.Epochs[rank], rank, _backends.Length, Capacity, n, x.Data);
        return true;
    }

    /// <summary>
    /// Queues the all-reduce of <paramref name="delta"/>'s first rows fused with the residual add and RMSNorm after it
    /// (collectives.cu's peer_all_reduce_rms_norm, on staging of its own) on <paramref name="rank"/>'s stream, or returns
    /// false with nothing queued where it does not run: <see cref="FuseNorm"/> off, more than <see cref="NormMaxRows"/> rows,
    /// a message larger than the staging, no sm_90 kernels, or a row width the kernel does not take. Every rank calls it for
    /// the same tensors in the same order, so all take the same path.
    /// </summary>
    public bool TryAllReduceAddRmsNorm(int rank, CudaTensor delta, CudaTensor residual, DeviceWeight weight, float epsilon, CudaTensor output, int rows)
    {
        if (!FuseNorm || rows > NormMaxRows || (long)rows * delta.Columns > Capacity)
        {
            return false;
        }

        var b = _backends[rank];
        b.Context.MakeCurrent();
        return b.PeerAllReduceAddRmsNorm(_norm.Tables[rank].Pointer, _norm.Epochs[rank].Pointer, rank, _backends.Length, Capacity,
            delta, residual, weight, epsilon, output, rows);
    }

    public void Dispose()
    {
        _plain.Dispose(_backends);
        _norm.Dispose(_backends);
    }

    /// <summary>
    /// One kernel's buffers on every rank: its staging ([2 slots][size ranks][<see cref="Capacity"/>] floats, all empty), the
    /// table of every rank's staging pointer that the rank's kernel reads, and its blocks' call counters.
    /// </summary>
    private sealed class Channel
    {
        public readonly CudaDeviceBuffer<float>[] Staging;
        public readonly CudaDeviceBuffer<ulong>[] Tables;
        public readonly CudaDeviceBuffer<uint>[] Epochs;

        public Channel(CudaBackend[] backends, int counters)
        {
            var size = backends.Length;
            Staging = new CudaDeviceBuffer<float>[size];
            Tables = new CudaDeviceBuffer<ulong>[size];
            Epochs = new CudaDeviceBuffer<uint>[size];
            for (var r = 0; r < size; r++)
            {
                var b = backends[r];
                b.Context.MakeCurrent();
                Staging[r] = new CudaDeviceBuffer<float>(b.Context, 2 * size * Capacity);
                Staging[r].Fill(b.Stream, Empty);
                Epochs[r] = new CudaDeviceBuffer<uint>(b.Context, counters);
                Epochs[r].Fill(b.Stream, 0);
            }

            Span<ulong> table = stackalloc ulong[MaxRanks];
            for (var r = 0; r < size; r++)
            {
                table[r] = Staging[r].Pointer.Address;
            }

            for (var r = 0; r < size; r++)
            {
                var b = backends[r];
                b.Context.MakeCurrent();
                Tables[r] = new CudaDeviceBuffer<ulong>(b.Context, MaxRanks);
                Tables[r].CopyFrom(b.Stream, table);
                b.Stream.Synchronize();
            }
        }

        public void Dispose(CudaBackend[] backends)
        {
            for (var r = 0; r < backends.Length; r++)
            {
                backends[r].Context.MakeCurrent();
                Staging[r].Dispose();
                Tables[r].Dispose();
                Epochs[r].Dispose();
            }
        }
    }
}
