namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// A float32 activation matrix in aligned native memory. <see cref="Version"/> counts writes so the int8 copy that quantized
/// matmuls read (<see cref="Quantized"/>) is made once per value, however many weights consume it (q, k and v share one).
/// </summary>
internal sealed unsafe class CpuTensor : DeviceTensor
{
    private readonly NativeBuffer _buffer;
    private QuantizedActivations? _quantized;

    public CpuTensor(int rows, int columns) : base(rows, columns)
    {
        _buffer = new NativeBuffer((long)rows * columns * sizeof(float));
    }

    public float* Data => (float*)_buffer.Pointer;

    public float* Row(int row) => Data + (long)row * Columns;

    public int Version { get; private set; }

    /// <summary>Call after every write, so a stale quantized copy is never reused.</summary>
    public void MarkWritten() => Version++;

    /// <summary>The int8 block copy of this tensor, allocated on first use.</summary>
    public QuantizedActivations Quantized => _quantized ??= new QuantizedActivations(Rows, Columns);

    public override void Dispose()
    {
        _buffer.Dispose();
        _quantized?.Dispose();
    }
}
