namespace AspireAi.Inference.Backends.Cuda.Driver;

/// <summary>Grid or block dimensions of a launch.</summary>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    public static implicit operator Dim3(int x) => new((uint)x);
}

/// <summary>
/// One kernel argument in an 8-byte slot: device pointers are 8 bytes, int/float 4 (the driver reads as many bytes as the
/// parameter has, from the slot's start; x86-64 and ARM64 are little-endian, so a 4-byte value sits in the low bytes).
/// </summary>
public readonly struct KernelArg
{
    private readonly ulong _bits;

    private KernelArg(ulong bits) => _bits = bits;

    public ulong Bits => _bits;

    public static implicit operator KernelArg(int value) => new((uint)value);

    public static implicit operator KernelArg(uint value) => new(value);

    public static implicit operator KernelArg(long value) => new((ulong)value);

    public static implicit operator KernelArg(float value) => new(BitConverter.SingleToUInt32Bits(value));

    public static implicit operator KernelArg(DevicePointer pointer) => new(pointer.Address);
}

/// <summary>A device address (<c>CUdeviceptr</c>); <see cref="Null"/> passes a null pointer to a kernel.</summary>
public readonly record struct DevicePointer(ulong Address)
{
    public static readonly DevicePointer Null = new(0);

    public DevicePointer Offset(long bytes) => new(Address + (ulong)bytes);
}

/// <summary>A kernel of a loaded module (<c>CUfunction</c>), launched with <c>cuLaunchKernel</c> on a stream.</summary>
public sealed unsafe class CudaKernel
{
    private readonly nint _function;

    internal CudaKernel(nint function, string name, bool waitsForPreviousKernel)
    {
        _function = function;
        Name = name;
        WaitsForPreviousKernel = waitsForPreviousKernel;
    }

    public string Name { get; }

    /// <summary>
    /// Built for programmatic dependent launch (the sm_90 PTX, kernels/common.cuh): the kernel waits for the previous
    /// kernel itself (<c>griddepcontrol.wait</c>), so on a stream with <see cref="CudaStream.DependentLaunch"/> it is
    /// launched to start before that kernel ends.
    /// </summary>
    public bool WaitsForPreviousKernel { get; }

    /// <summary>
    /// Diagnostics only: an omitted kernel is not launched (nor recorded into a graph), so a timed step shows what the
    /// kernel costs on the step's critical path (<c>GpuCheck --shapes ... --omit</c>); the step's results are then wrong.
    /// </summary>
    public bool Omitted { get; set; }

    public int Attribute(CudaFunctionAttribute attribute)
    {
        CudaDriver.Check(CudaDriver.cuFuncGetAttribute(out var value, attribute, _function), $"cuFuncGetAttribute({Name})");
        return value;
    }

    /// <summary>Blocks of <paramref name="blockSize"/> threads that fit an SM at once with that much dynamic shared memory (the driver's occupancy calculator).</summary>
    public int ResidentBlocksPerMultiprocessor(int blockSize, int dynamicSharedBytes)
    {
        CudaDriver.Check(CudaDriver.cuOccupancyMaxActiveBlocksPerMultiprocessor(out var blocks, _function, blockSize, (nuint)dynamicSharedBytes),
            $"cuOccupancyMaxActiveBlocksPerMultiprocessor({Name})");
        return blocks;
    }

    /// <summary>
    /// The share of the SM's L1/shared memory this kernel prefers as shared memory, in percent (−1: the driver's choice).
    /// A hint: the driver rounds it to a supported carveout.
    /// </summary>
    public void SetPreferredSharedCarveout(int percent)
    {
        CudaDriver.Check(CudaDriver.cuFuncSetAttribute(_function, CudaFunctionAttribute.PreferredSharedMemoryCarveout, percent), $"cuFuncSetAttribute({Name})");
        lock (_sharedMemoryGate)
        {
            // The occupancy of a given shared size follows the carveout.
            _naturalBlocks.Clear();
            _holdingBytes.Clear();
        }
    }

    /// <summary>Blocks of <paramref name="blockSize"/> threads an SM as its registers and static shared memory allow (cached per carveout).</summary>
    public int NaturalResidentBlocks(int blockSize)
    {
        lock (_sharedMemoryGate)
        {
            if (!_naturalBlocks.TryGetValue(blockSize, out var blocks))
            {
                blocks = ResidentBlocksPerMultiprocessor(blockSize, 0);
                _naturalBlocks[blockSize] = blocks;
            }

            return blocks;
        }
    }

    /// <summary>
    /// Dynamic shared memory (which the kernel does not use) that holds it to at most <paramref name="blocks"/> resident
    /// blocks of <paramref name="blockSize"/> threads an SM under its current carveout: of the sizes
    /// <paramref name="bytesAsking"/> gives this kernel for asking <see cref="NaturalResidentBlocks"/> − 1, …, 1 blocks, the first that
    /// the driver's occupancy calculator holds there (the carveout leaves fewer resident than a size asks for, so the count
    /// asked is searched); 0 where the kernel is held there already. Cached per block size, count and carveout.
    /// </summary>
    public int SharedBytesHolding(int blockSize, int blocks, Func<CudaKernel, int, int> bytesAsking)
    {
        var natural = NaturalResidentBlocks(blockSize);
        lock (_sharedMemoryGate)
        {
            if (_holdingBytes.TryGetValue((blockSize, blocks), out var known))
            {
                return known;
            }

            var bytes = 0;
            for (var asked = natural - 1; asked >= 1 && blocks < natural; asked--)
            {
                bytes = bytesAsking(this, asked);
                if (ResidentBlocksPerMultiprocessor(blockSize, bytes) <= blocks)
                {
                    break;
                }
            }

            _holdingBytes[(blockSize, blocks)] = bytes;
            return bytes;
        }
    }

    private readonly Dictionary<int, int> _naturalBlocks = [];
    private readonly Dictionary<(int BlockSize, int Blocks), int> _holdingBytes = [];
    private readonly object _sharedMemoryGate = new();  // re-entered: SharedBytesHolding's bytesAsking raises the limit

    /// <summary>
    /// Allows at least <paramref name="bytes"/> of dynamic shared memory per block (more than the default 48 KB). Only ever
    /// raises the limit: launches asking for a larger amount set earlier stay valid (lowering it made the full check's
    /// narrow GEMVs, held to one block an SM, fail to launch after a wider one was held to two).
    /// </summary>
    public void SetMaxDynamicSharedMemory(int bytes)
    {
        lock (_sharedMemoryGate)
        {
            if (bytes <= _maxDynamicSharedBytes)
            {
                return;
            }

            CudaDriver.Check(CudaDriver.cuFuncSetAttribute(_function, CudaFunctionAttribute.MaxDynamicSharedSizeBytes, bytes), $"cuFuncSetAttribute({Name})");
            _maxDynamicSharedBytes = bytes;
        }
    }

    private int _maxDynamicSharedBytes = CudaLaunchGeometry.DefaultDynamicSharedLimit;

    public void Launch(CudaStream stream, Dim3 grid, Dim3 block, int sharedBytes, params ReadOnlySpan<KernelArg> args) =>
        Launch(stream, grid, block, sharedBytes, [], args);

    /// <summary>
    /// A launch whose kernel takes <paramref name="maps"/> (128-byte <c>__grid_constant__</c> tensor maps) as its first
    /// parameters, then <paramref name="args"/>: the driver copies each parameter from the address given for it.
    /// </summary>
    public void Launch(CudaStream stream, Dim3 grid, Dim3 block, int sharedBytes, ReadOnlySpan<CudaTensorMap> maps, ReadOnlySpan<KernelArg> args)
    {
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0 || Omitted)
        {
            return;
        }

        var mapCopies = stackalloc CudaTensorMap[maps.Length];
        var slots = stackalloc ulong[args.Length];
        var pointers = stackalloc void*[maps.Length + args.Length];
        for (var i = 0; i < maps.Length; i++)
        {
            mapCopies[i] = maps[i];
            pointers[i] = mapCopies + i;
        }

        for (var i = 0; i < args.Length; i++)
        {
            slots[i] = args[i].Bits;
            pointers[maps.Length + i] = slots + i;
        }

        stream.Timer?.Begin(stream, Name);
        if (WaitsForPreviousKernel && stream.DependentLaunch)
        {
            var attribute = new CudaLaunchAttribute { Id = CudaLaunchAttribute.ProgrammaticStreamSerialization, Value = 1 };
            var config = new CudaLaunchConfig
            {
                GridX = grid.X, GridY = grid.Y, GridZ = grid.Z, BlockX = block.X, BlockY = block.Y, BlockZ = block.Z,
                SharedMemoryBytes = (uint)sharedBytes, Stream = stream.Handle, Attributes = &attribute, AttributeCount = 1,
            };
            CudaDriver.Check(CudaDriver.cuLaunchKernelEx(&config, _function, pointers, null), $"cuLaunchKernelEx({Name})");
        }
        else
        {
            CudaDriver.Check(
                CudaDriver.cuLaunchKernel(_function, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, (uint)sharedBytes, stream.Handle, pointers, null),
                $"cuLaunchKernel({Name})");
        }

        stream.Timer?.End(stream);
    }
}
