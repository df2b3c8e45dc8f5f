using AspireAi.Inference.Backends.Cuda.Driver;

namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// A float32 activation matrix in device memory. <see cref="Version"/> counts writes so that its int8 copy for quantized
/// matmuls (<see cref="QuantizedCodes"/>, made by <c>quantize_q8</c>) is made once per value, as on the CPU backend, and
/// so is its f16/bf16 copy for the tensor-core GEMM of half weights (<see cref="HalfCopy"/>, made by <c>round_to_half</c>).
/// </summary>
public sealed class CudaTensor : DeviceTensor
{
    private readonly CudaContext _context;
    private CudaDeviceBuffer<sbyte>? _codes;
    private CudaDeviceBuffer<float>? _scaleSums;
    private CudaDeviceBuffer<ushort>? _half;

    internal CudaTensor(CudaContext context, int rows, int columns) : base(rows, columns)
    {
        _context = context;
        Data = new CudaDeviceBuffer<float>(context, (long)rows * columns);
    }

    internal CudaDeviceBuffer<float> Data { get; }

    internal int Version { get; private set; }

    internal int QuantizedVersion { get; set; } = -1;

    internal int QuantizedRows { get; set; }

    internal void MarkWritten() => Version++;

    /// <summary>The <see cref="Version"/> that <see cref="HalfCopy"/> holds, its rows and type; -1 before the first copy.</summary>
    internal int HalfVersion { get; set; } = -1;

    internal int HalfRows { get; set; }

    internal bool HalfIsBFloat16 { get; set; }

    /// <summary>The values rounded to f16 or bf16 [rows][columns], allocated on first use.</summary>
    internal CudaDeviceBuffer<ushort> HalfCopy => _half ??= new CudaDeviceBuffer<ushort>(_context, (long)Rows * Columns);

    /// <summary>Whether an int8 copy has been made: a quantized matmul reads this tensor.</summary>
    internal bool HasQuantizedCopy => _codes is not null;

    /// <summary>int8 codes [rows][columns], allocated on first use.</summary>
    internal CudaDeviceBuffer<sbyte> QuantizedCodes => _codes ??= new CudaDeviceBuffer<sbyte>(_context, (long)Rows * Columns);

    /// <summary>{d, d·Σq} per 32-value block [rows][columns / 32] (two floats each).</summary>
    internal CudaDeviceBuffer<float> QuantizedScaleSums => _scaleSums ??= new CudaDeviceBuffer<float>(_context, (long)Rows * Math.Max(1, Columns / 32) * 2);

    public override void Dispose()
    {
        Data.Dispose();
        _codes?.Dispose();
        _scaleSums?.Dispose();
        _half?.Dispose();
    }
}
