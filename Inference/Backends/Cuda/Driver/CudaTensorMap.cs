using System.Runtime.CompilerServices;

namespace AspireAi.Inference.Backends.Cuda.Driver;

/// <summary>
/// A tensor map (<c>CUtensorMap</c>): the 128-byte descriptor through which a kernel's bulk tensor copies
/// (<c>cp.async.bulk.tensor</c>, the Hopper TMA) address a matrix in global memory. Built on the host by the driver
/// (<c>cuTensorMapEncodeTiled</c>) and passed to a kernel by value as a <c>__grid_constant__</c> parameter
/// (<see cref="CudaKernel.Launch(CudaStream, Dim3, Dim3, int, ReadOnlySpan{CudaTensorMap}, ReadOnlySpan{KernelArg})"/>).
/// </summary>
[InlineArray(16)]
public struct CudaTensorMap
{
    private ulong _word;

    /// <summary>Bytes of a tensor map (<c>CU_TENSOR_MAP_NUM_QWORDS</c> × 8).</summary>
    public const int Size = 128;

    // cuda.h's CUtensorMapDataType, CUtensorMapSwizzle and CUtensorMapL2promotion values used here.
    private const int DataTypeFloat16 = 6;
    private const int DataTypeBFloat16 = 9;
    private const int Swizzle128Bytes = 3;
    private const int L2Promotion256Bytes = 3;

    /// <summary>
    /// A row-major matrix of 16-bit values (<paramref name="rows"/> × <paramref name="columns"/>, rows contiguous) read in boxes
    /// of <paramref name="boxRows"/> rows × <paramref name="boxColumns"/> values, each box row written to shared memory in the
    /// 128-byte swizzle (so a box row must be 128 bytes: 64 values); rows and columns past the matrix arrive as zeros.
    /// </summary>
    public static unsafe CudaTensorMap HalfMatrix(DevicePointer data, bool bf16, long rows, long columns, int boxRows, int boxColumns)
    {
        if (boxColumns * sizeof(ushort) != 128 || data.Address % 16 != 0 || columns * sizeof(ushort) % 16 != 0)
        {
            throw new ArgumentException($"A half matrix for the tensor copies needs 64-value box rows, a 16-byte aligned start and rows a multiple of 16 bytes (got {rows} × {columns} at 0x{data.Address:x}, box {boxRows} × {boxColumns}).");
        }

        var map = default(CudaTensorMap);
        var dims = stackalloc ulong[] { (ulong)columns, (ulong)rows };
        var strides = stackalloc ulong[] { (ulong)columns * sizeof(ushort) };
        var box = stackalloc uint[] { (uint)boxColumns, (uint)boxRows };
        var elementStrides = stackalloc uint[] { 1, 1 };
        // 256-byte L2 promotion: each box row is read as 128 bytes of a 256-byte sector pair, as CUTLASS's Hopper GEMMs do.
        CudaDriver.Check(CudaDriver.cuTensorMapEncodeTiled(&map, bf16 ? DataTypeBFloat16 : DataTypeFloat16, 2, data.Address, dims, strides, box,
            elementStrides, interleave: 0, Swizzle128Bytes, L2Promotion256Bytes, oobFill: 0), "cuTensorMapEncodeTiled");
        return map;
    }
}
