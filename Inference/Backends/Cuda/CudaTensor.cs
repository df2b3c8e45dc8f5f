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

    private readonly CudaDeviceBuffer<float> _data;
    private CudaDeviceBuffer<float>? _normSums;

    internal CudaTensor(CudaContext context, int rows, int columns) : base(rows, columns)
    {
        _context = context;
        _data = new CudaDeviceBuffer<float>(context, (long)rows * columns);
    }

    /// <summary>The float values; not readable while <see cref="PendingNorm"/> holds (CudaBackend computes them first).</summary>
    internal CudaDeviceBuffer<float> Data => PendingNorm is null
        ? _data
        : throw new InvalidOperationException("This tensor's float values were not computed: a norm folded into the GEMVs left h·w for the GEMV that reads it (CudaBackend.Input computes them).");

    /// <summary>
    /// The float buffer whatever it holds: <see cref="Data"/>'s values, or h·w while <see cref="PendingNorm"/> holds (what
    /// the folded norm's producer writes and its consumer GEMV reads).
    /// </summary>
    internal CudaDeviceBuffer<float> Buffer => _data;

    internal int Version { get; private set; }

    internal int QuantizedVersion { get; set; } = -1;

    internal int QuantizedRows { get; set; }

    /// <summary>A new value is being written whole: the old one, and any norm pending on it, are gone.</summary>
    internal void MarkWritten()
    {
        Version++;
        PendingNorm = null;
    }

    /// <summary>
    /// Set where a norm was folded into the kernel that made it (CudaBackend.MatMulAddRmsNorm): <see cref="Buffer"/> and the
    /// int8 copy hold h·w, not RMSNorm(h)·w = r·h·w. The one-row GEMV that reads it finishes the norm, r from
    /// <see cref="NormSums"/>; anything else computes the values from the residual first.
    /// </summary>
    internal PendingRmsNorm? PendingNorm { get; set; }

    /// <summary>Σh² per 32 values of one row, written by a folded norm's producer GEMV; allocated on first use.</summary>
    internal CudaDeviceBuffer<float> NormSums => _normSums ??= new CudaDeviceBuffer<float>(_context, Math.Max(1, Columns / 32));

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
        _data.Dispose();
        _normSums?.Dispose();
        _codes?.Dispose();
        _scaleSums?.Dispose();
        _half?.Dispose();
    }
}

/// <summary>
/// The norm a tensor still owes (<see cref="CudaTensor.PendingNorm"/>): RMSNorm of the first row of <paramref name="Residual"/>
/// as it was at <paramref name="ResidualVersion"/>, times <paramref name="Weight"/>; the producer's Σh² are in the tensor's
/// <see cref="CudaTensor.NormSums"/>.
/// </summary>
internal sealed record PendingRmsNorm(CudaTensor Residual, int ResidualVersion, CudaWeight Weight, float Epsilon);

/// <summary>What the producer of a folded norm writes (<see cref="CudaBackend.FoldNorm"/>); null codes where no int8 copy is kept.</summary>
internal readonly record struct FoldedNormOutputs(
    DevicePointer Residual, DevicePointer NormWeight, DevicePointer Values, DevicePointer Codes, DevicePointer ScaleSums, DevicePointer Sums);
