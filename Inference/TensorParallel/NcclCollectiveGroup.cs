using AspireAi.Inference.Backends;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Backends.Cuda.Nccl;

namespace AspireAi.Inference.TensorParallel;

/// <summary>
/// Collectives between the CUDA backends of one process, one NCCL communicator per device (<c>ncclCommInitAll</c>). Every
/// operation is queued on the rank's own stream, behind the kernels that produced its input and ahead of those that read
/// the result, so a step never waits on the host for a collective. NVLink multicast is switched off before the
/// library is loaded (<see cref="NcclLibrary.DisableNvLinkMulticast"/>).
/// </summary>
public sealed class NcclCollectiveGroup : ICollectiveGroup
{
    private readonly nint[] _communicators;
    private readonly RankCollectives[] _ranks;
    private bool _aborted;

    private readonly PeerAllReduce? _peer;

    private NcclCollectiveGroup(nint[] communicators, IReadOnlyList<CudaBackend> backends)
    {
        _communicators = communicators;
        _ranks = backends.Select((b, r) => new RankCollectives(this, r, b)).ToArray();
        // ASPIREAI_TP_ALLREDUCE=nccl keeps every all-reduce on NCCL (to compare the two).
        if (Environment.GetEnvironmentVariable("ASPIREAI_TP_ALLREDUCE") == "nccl")
        {
            AllReduce = "NCCL (ASPIREAI_TP_ALLREDUCE=nccl)";
        }
        else
        {
            _peer = PeerAllReduce.TryCreate(backends, out var reason);
            AllReduce = _peer is null ? $"NCCL (no peer all-reduce: {reason})" : reason;
            CudaContext.ForgetCurrent();
        }
    }

    public int Size => _communicators.Length;

    /// <summary>Which all-reduce serves which messages (for logs and benchmarks).</summary>
    public string AllReduce { get; }

    /// <summary>Joins <paramref name="backends"/> (rank i = backends[i], each on its own device) with NCCL.</summary>
    public static unsafe NcclCollectiveGroup Create(IReadOnlyList<CudaBackend> backends)
    {
        // Loads the library (which first sets NCCL_NVLS_ENABLE=0), or fails saying where it looked.
        _ = NcclLibrary.LoadedFrom;
        var devices = backends.Select(b => b.Context.Ordinal).ToArray();
        if (devices.Distinct().Count() != devices.Length)
        {
            throw new ArgumentException($"Each tensor-parallel rank needs a device of its own, not devices {string.Join(", ", devices)}.", nameof(backends));
        }

        var communicators = new nint[devices.Length];
        try
        {
            fixed (nint* comms = communicators)
            fixed (int* list = devices)
            {
                NcclLibrary.Check(NcclLibrary.ncclCommInitAll(comms, devices.Length, list), "ncclCommInitAll");
            }
        }
        finally
        {
            // NCCL's runtime switched this thread through every device while setting up.
            CudaContext.ForgetCurrent();
        }

        return new NcclCollectiveGroup(communicators, backends);
    }

    public IRankCollectives Rank(int rank) => _ranks[rank];

    /// <summary><c>ncclCommAbort</c> on every communicator: kernels waiting for a failed rank's data stop, and the group is done.</summary>
    public void Abort()
    {
        lock (_communicators)
        {
            if (_aborted)
            {
                return;
            }

            _aborted = true;
            foreach (var communicator in _communicators)
            {
                _ = NcclLibrary.ncclCommAbort(communicator);
            }

            CudaContext.ForgetCurrent();
        }
    }

    public void Dispose()
    {
        lock (_communicators)
        {
            if (!_aborted)
            {
                foreach (var communicator in _communicators)
                {
                    NcclLibrary.Check(NcclLibrary.ncclCommDestroy(communicator), "ncclCommDestroy");
                }

                _aborted = true;
            }

            foreach (var rank in _ranks)
            {
                rank.Dispose();
            }

            _peer?.Dispose();

            CudaContext.ForgetCurrent();
        }
    }

    private sealed class RankCollectives(NcclCollectiveGroup group, int rank, CudaBackend backend) : IRankCollectives, IDisposable
    {
        private readonly nint _communicator = group._communicators[rank];
        private CudaDeviceBuffer<float>? _staging;

        public int Rank => rank;

        public int Size => group.Size;

        public void AllReduceSum(DeviceTensor tensor, int rows)
        {
            var x = (CudaTensor)tensor;
            backend.Context.MakeCurrent();
            x.MarkWritten();
            if (group._peer?.TryAllReduce(rank, x, rows) == true)
            {
                return;
            }

            var data = x.Data.Pointer.Address;
            NcclLibrary.Check(NcclLibrary.ncclAllReduce(data, data, (nuint)((long)rows * x.Columns), NcclDataType.Float32, NcclReduction.Sum, _communicator, backend.Stream.Handle),
                "ncclAllReduce");
        }

        /// <summary>
        /// At one row, through the peer all-reduce with the residual add and the next norm folded in
        /// (<see cref="PeerAllReduce.TryAllReduceAddNorm"/>: no norm launch); otherwise as <see cref="IRankCollectives"/> does.
        /// </summary>
        public void AllReduceAddRmsNorm(IBackend b, DeviceTensor partial, DeviceTensor residual, DeviceWeight norm, float epsilon, DeviceTensor output, int rows)
        {
            var x = (CudaTensor)partial;
            if (rows == 1 && ReferenceEquals(b, backend) && group._peer is { } peer)
            {
                backend.Context.MakeCurrent();
                if (peer.TryAllReduceAddNorm(rank, x, (CudaTensor)residual, norm, epsilon, (CudaTensor)output))
                {
                    x.MarkWritten();  // left unreduced
                    return;
                }
            }

            AllReduceSum(partial, rows);
            b.AddRmsNorm(residual, partial, norm, epsilon, output, rows);
        }

        /// <summary>
        /// NCCL gathers whole buffers rank after rank ([rank][rows][width]); the logits want each row's shards side by side
        /// ([rows][rank · width]). One row (a decode step of one sequence) is both, unless the vocabulary is padded; otherwise
        /// the shards are gathered into a staging buffer and laid out with one strided device copy per rank, of the columns
        /// that are not padding (<see cref="GatheredColumns"/>).
        /// </summary>
        public unsafe void AllGatherColumns(DeviceTensor shard, DeviceTensor gathered, int rows)
        {
            var s = (CudaTensor)shard;
            var g = (CudaTensor)gathered;
            var width = s.Columns;
            GatheredColumns.Check(width, Size, g.Columns);
            backend.Context.MakeCurrent();
            g.MarkWritten();
            var count = (long)rows * width;
            var stream = backend.Stream.Handle;
            if (rows == 1 && g.Columns == width * Size)
            {
                NcclLibrary.Check(NcclLibrary.ncclAllGather(s.Data.Pointer.Address, g.Data.Pointer.Address, (nuint)count, NcclDataType.Float32, _communicator, stream), "ncclAllGather");
                return;
            }

            if (_staging is null || _staging.Length < count * Size)
            {
                _staging?.Dispose();
                _staging = new CudaDeviceBuffer<float>(backend.Context, (long)g.Rows * width * Size);
            }

            NcclLibrary.Check(NcclLibrary.ncclAllGather(s.Data.Pointer.Address, _staging.Pointer.Address, (nuint)count, NcclDataType.Float32, _communicator, stream), "ncclAllGather");
            for (var r = 0; r < Size; r++)
            {
                var columns = GatheredColumns.Of(width, r, g.Columns);
                if (columns == 0)
                {
                    continue;
                }

                var copy = new CudaMemcpy2D
                {
                    SrcMemoryType = CudaMemoryType.Device,
                    SrcDevice = _staging.At(r * count).Address,
                    SrcPitch = (nuint)(width * sizeof(float)),
                    DstMemoryType = CudaMemoryType.Device,
                    DstDevice = g.Data.At((long)r * width).Address,
                    DstPitch = (nuint)(g.Columns * sizeof(float)),
                    WidthInBytes = (nuint)(columns * sizeof(float)),
                    Height = (nuint)rows,
                };
                CudaDriver.Check(CudaDriver.cuMemcpy2DAsync(&copy, stream), "cuMemcpy2DAsync");
            }
        }

        public void Dispose() => _staging?.Dispose();
    }
}
