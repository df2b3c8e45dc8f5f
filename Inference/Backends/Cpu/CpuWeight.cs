using AspireAi.Inference.Models;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// A weight in the CPU backend's layout. Quantized types are rearranged once at load into 32-value blocks of unsigned codes
/// in element order, with float scales (and mins) beside them, so one SIMD kernel family serves every type. The
/// rearrangement is lossless: codes are the file's integers and scales are exact products (fp16 · 6/8-bit integer fits a
/// float's 24-bit mantissa). value = scale · (code − <see cref="CodeOffset"/>) − min.
/// </summary>
internal sealed unsafe class CpuWeight : DeviceWeight
{
    public const int BlockSize = 32;

    private readonly NativeBuffer _data;
    private readonly NativeBuffer? _scales;
    private readonly NativeBuffer? _mins;

    public CpuWeight(string name, GgmlType type, int rows, int columns, CpuWeightLayout layout, int codeOffset, int scalesPerBlock)
        : base(name, type, rows, columns)
    {
        Layout = layout;
        CodeOffset = codeOffset;
        ScalesPerBlock = scalesPerBlock;
        BlocksPerRow = columns / BlockSize;
        RowStride = layout switch
        {
            CpuWeightLayout.Float32 => (long)columns * 4,
            CpuWeightLayout.Float16 or CpuWeightLayout.BFloat16 => (long)columns * 2,
            CpuWeightLayout.NibblePairs => (long)(BlocksPerRow + 1) / 2 * 32,
            _ => (long)BlocksPerRow * 32,
        };
        _data = new NativeBuffer(RowStride * rows);
        if (IsQuantized)
        {
            _scales = new NativeBuffer((long)rows * BlocksPerRow * scalesPerBlock * sizeof(float));
            if (type is GgmlType.Q4_K or GgmlType.Q5_K)
            {
                _mins = new NativeBuffer((long)rows * BlocksPerRow * sizeof(float));
            }
        }
    }

    public CpuWeightLayout Layout { get; }

    public bool IsQuantized => Layout is CpuWeightLayout.NibblePairs or CpuWeightLayout.ByteCodes or CpuWeightLayout.SignedBytes;

    /// <summary>Subtracted from each code before scaling: 8 (Q4_0), 16 (Q5_0), 32 (Q6_K), 0 otherwise.</summary>
    public int CodeOffset { get; }

    /// <summary>1, or 2 for Q6_K whose scales cover 16 values.</summary>
    public int ScalesPerBlock { get; }

    public bool HasMins => _mins is not null;

    public int BlocksPerRow { get; }

    /// <summary>Bytes from one row's data to the next.</summary>
    public long RowStride { get; }

    public override long ByteSize => _data.ByteLength + (_scales?.ByteLength ?? 0) + (_mins?.ByteLength ?? 0);

    public byte* RowData(int row) => _data.Pointer + row * RowStride;

    public float* RowScales(int row) => (float*)_scales!.Pointer + (long)row * BlocksPerRow * ScalesPerBlock;

    public float* RowMins(int row) => (float*)_mins!.Pointer + (long)row * BlocksPerRow;

    /// <summary>The unsigned code of value <paramref name="index"/> of a row (quantized layouts).</summary>
    public int Code(byte* rowData, int index)
    {
        var block = index / BlockSize;
        var j = index % BlockSize;
        return Layout switch
        {
            CpuWeightLayout.NibblePairs => (block & 1) == 0 ? rowData[block / 2 * 32 + j] & 0xF : rowData[block / 2 * 32 + j] >> 4,
            CpuWeightLayout.SignedBytes => (sbyte)rowData[index],
            _ => rowData[index],
        };
    }

    /// <summary>Writes row <paramref name="row"/> as floats (the embedding lookup; tests).</summary>
    public void DequantizeRow(int row, float* destination)
    {
        var data = RowData(row);
        switch (Layout)
        {
            case CpuWeightLayout.Float32:
                new ReadOnlySpan<float>(data, Columns).CopyTo(new Span<float>(destination, Columns));
                return;
            case CpuWeightLayout.Float16:
                for (var i = 0; i < Columns; i++)
                {
                    destination[i] = (float)BitConverter.UInt16BitsToHalf(((ushort*)data)[i]);
                }

                return;
            case CpuWeightLayout.BFloat16:
                for (var i = 0; i < Columns; i++)
                {
                    destination[i] = BitConverter.Int32BitsToSingle(((ushort*)data)[i] << 16);
                }

                return;
        }

        var scales = RowScales(row);
        var mins = HasMins ? RowMins(row) : null;
        for (var i = 0; i < Columns; i++)
        {
            var block = i / BlockSize;
            var scale = scales[ScalesPerBlock == 1 ? block : i / 16];
            var min = mins is null ? 0f : mins[block];
            destination[i] = scale * (Code(data, i) - CodeOffset) - min;
        }
    }

    public override void Dispose()
    {
        _data.Dispose();
        _scales?.Dispose();
        _mins?.Dispose();
    }
}
