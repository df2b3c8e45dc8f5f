using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// A weight in device memory (see <see cref="CudaWeightPacker"/> for how each file type maps onto the layouts):
/// value = scale · (code − <see cref="CodeOffset"/>) − min for the quantized layouts, with one float scale per 32 values
/// (two for Q6_K, whose scales cover 16) and, for Q4_K/Q5_K, one float min per 32 values.
/// </summary>
public sealed class CudaWeight : DeviceWeight
{
    internal CudaWeight(string name, GgmlType type, int rows, int columns, CudaWeightLayout layout, int codeOffset, int scalesPerBlock,
        CudaDeviceBuffer<byte> codes, CudaDeviceBuffer<float>? scales, CudaDeviceBuffer<float>? mins)
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

    internal CudaDeviceBuffer<float>? Scales { get; }

    internal CudaDeviceBuffer<float>? Mins { get; }

    public override long ByteSize => Codes.ByteLength + (Scales?.ByteLength ?? 0) + (Mins?.ByteLength ?? 0);

    public override void Dispose()
    {
        Codes.Dispose();
        Scales?.Dispose();
        Mins?.Dispose();
    }
}
