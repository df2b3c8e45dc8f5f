using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// A weight in device memory (see <see cref="CudaWeightPacker"/> for how each file type maps onto the layouts):
/// value = scale · (code − <see cref="CodeOffset"/>) − min for the quantized layouts, with one scale per 32 values (two for
/// Q6_K, whose scales cover 16) — f16 where <see cref="HasHalfScales"/>, else float32 — and, for Q4_K/Q5_K, one float min per
/// 32 values.
/// </summary>
public sealed class CudaWeight : DeviceWeight
{
    internal CudaWeight(string name, GgmlType type, int rows, int columns, CudaWeightLayout layout, int codeOffset, int scalesPerBlock,
        CudaDeviceBuffer<byte> codes, CudaDeviceBuffer<byte>? scales, CudaDeviceBuffer<float>? mins)
        : base(name, type, rows, columns)
    {
        Layout = layout;
        CodeOffset = codeOffset;
        ScalesPerBlock = scalesPerBlock;
        Codes = codes;
        Scales = scales;
        Mins = mins;
    }

    public CudaWeightLayout Layout { get; }

    public bool IsQuantized => Layout is CudaWeightLayout.Int8 or CudaWeightLayout.Nibble;

    /// <summary>Subtracted from nibble codes (8 for Q4_0); Int8 codes are stored with their offset already applied.</summary>
    public int CodeOffset { get; }

    public int ScalesPerBlock { get; }

    internal CudaDeviceBuffer<byte> Codes { get; }

    /// <summary>The block scales, f16 or float32 (<see cref="HasHalfScales"/>).</summary>
    internal CudaDeviceBuffer<byte>? Scales { get; }

    internal CudaDeviceBuffer<float>? Mins { get; }

    /// <summary>
    /// F16/BF16 codes as the tensor map the Hopper GEMM's bulk copies read them through (boxes of
    /// <see cref="CudaLaunchGeometry.WarpgroupGemmBoxRows"/> rows × one stage of K), built on first use: the weight's
    /// device memory never moves.
    /// </summary>
    internal CudaTensorMap HalfTensorMap => _halfTensorMap ??= HalfTensorMapOf(Codes.Pointer, Rows);

    /// <summary>
    /// A half matrix of this weight's type and K — its own codes, or <paramref name="rows"/> activation rows rounded to its
    /// type (the other operand of the Hopper GEMM) — as the bulk copies read it.
    /// </summary>
    internal CudaTensorMap HalfTensorMapOf(DevicePointer data, int rows) =>
        CudaTensorMap.HalfMatrix(data, Layout == CudaWeightLayout.BFloat16, rows, Columns,
            CudaLaunchGeometry.WarpgroupGemmBoxRows, CudaLaunchGeometry.WarpgroupGemmStageColumns);

    private CudaTensorMap? _halfTensorMap;

    public override long ByteSize => Codes.ByteLength + (Scales?.ByteLength ?? 0) + (Mins?.ByteLength ?? 0);

    /// <summary>
    /// Whether a quantized layout keeps its block scales as f16: one scale a block and no min — Q8_0, Q5_0 and Q4_0, whose
    /// scale is ggml's own f16 <c>d</c>, so the f16 copy is exact and saves 2 bytes of 18 (Q4_0) or 36 (Q8_0) a block that
    /// every decode step reads. The K-quants' scales (an f16 times a 6-bit sub-scale) need float32. The kernels apply the
    /// same rule (half_scales, kernels/common.cuh).
    /// </summary>
    public static bool HasHalfScales(int scalesPerBlock, bool hasMins) => scalesPerBlock == 1 && !hasMins;

    /// <summary>
    /// The scales as the device stores them: f16 bits where <see cref="HasHalfScales"/> (each must be an f16 value, which
    /// the packer guarantees for the formats with one f16 scale a block), else the float32 bytes.
    /// </summary>
    internal static byte[] DeviceScales(string name, float[] scales, bool half)
    {
        if (!half)
        {
            var bytes = new byte[scales.Length * sizeof(float)];
            Buffer.BlockCopy(scales, 0, bytes, 0, bytes.Length);
            return bytes;
        }

        var halves = new byte[scales.Length * 2];
        for (var i = 0; i < scales.Length; i++)
        {
            var h = (Half)scales[i];
            if ((float)h != scales[i])
            {
                throw new InvalidOperationException($"Weight '{name}': block scale {i} ({scales[i]:R}) is not an f16 value, so it cannot be stored as the f16 scale its layout uses.");
            }

            BitConverter.TryWriteBytes(halves.AsSpan(2 * i), BitConverter.HalfToUInt16Bits(h));
        }

        return halves;
    }

    public override void Dispose()
    {
        Codes.Dispose();
        Scales?.Dispose();
        Mins?.Dispose();
    }
}
