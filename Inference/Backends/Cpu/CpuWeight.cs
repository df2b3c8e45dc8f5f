using System.Runtime.CompilerServices;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// A weight in the CPU backend's layout. Quantized types are rearranged once at load into 32-value blocks of integer codes
/// with float scales (and mins) beside them, 16 rows interleaved (<see cref="GroupRows"/>, <see cref="CpuWeightLayout"/>) so
/// one vector instruction multiplies 16 rows by the same activations. The
/// rearrangement is lossless: codes are the file's integers and scales are exact products (fp16 · 6/8-bit integer fits a
/// float's 24-bit mantissa). value = scale · (code − <see cref="CodeOffset"/>) − min.
/// </summary>
internal sealed unsafe class CpuWeight : DeviceWeight
{
    public const int BlockSize = 32;

    /// <summary>
    /// Rows interleaved per group in the quantized layouts: a 512-bit vector holds a dword (four codes) of each, so one
    /// AVX-512 instruction multiplies 16 rows by the same four activations; the 256-bit kernel takes the group in halves.
    /// </summary>
    public const int GroupRows = 16;

    /// <summary>Bytes of one vector of a row group: a dword per row.</summary>
    public const int GroupVectorBytes = GroupRows * 4;

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
            CpuWeightLayout.NibbleRowGroups => (long)BlocksPerRow * 16,
            _ => (long)BlocksPerRow * 32,
        };
        // Row groups are padded to whole groups of rows (zero codes and scales), so the kernels never test for a
        // partial group while reading.
        var storedRows = IsQuantized ? (long)Groups * GroupRows : rows;
        _data = new NativeBuffer(RowStride * storedRows);
        if (IsQuantized)
        {
            _scales = new NativeBuffer(storedRows * BlocksPerRow * scalesPerBlock * sizeof(float));
            if (type is GgmlType.Q4_K or GgmlType.Q5_K)
            {
                _mins = new NativeBuffer(storedRows * BlocksPerRow * sizeof(float));
            }
        }
    }

    public CpuWeightLayout Layout { get; }

    /// <summary>Quantized weights, all stored in groups of <see cref="GroupRows"/> interleaved rows.</summary>
    public bool IsQuantized => Layout is CpuWeightLayout.NibbleRowGroups or CpuWeightLayout.ByteRowGroups or CpuWeightLayout.SignedByteRowGroups;

    /// <summary>Groups of <see cref="GroupRows"/> rows, the last one padded.</summary>
    public int Groups => (Rows + GroupRows - 1) / GroupRows;

    /// <summary>Subtracted from each code before scaling: 8 (Q4_0), 16 (Q5_0), 32 (Q6_K), 0 otherwise.</summary>
    public int CodeOffset { get; }

    /// <summary>1, or 2 for Q6_K whose scales cover 16 values.</summary>
    public int ScalesPerBlock { get; }

    public bool HasMins => _mins is not null;

    public int BlocksPerRow { get; }

    /// <summary>Bytes from one row's data to the next (row layouts); a row's share of a group's data (row groups).</summary>
    public long RowStride { get; }

    /// <summary>Bytes of one block of 32 columns of one row group.</summary>
    public int GroupBlockBytes => (int)(RowStride / BlocksPerRow * GroupRows);

    public override long ByteSize => _data.ByteLength + (_scales?.ByteLength ?? 0) + (_mins?.ByteLength ?? 0);

    public byte* RowData(int row) => _data.Pointer + row * RowStride;

    /// <summary>Row groups: the group's data, <see cref="GroupBlockBytes"/> per block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* GroupData(int group) => _data.Pointer + group * RowStride * GroupRows;

    /// <summary>Row groups: per block, the scales of the group's rows (one 512-bit vector; two for Q6_K).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* GroupScales(int group) => (float*)_scales!.Pointer + (long)group * BlocksPerRow * ScalesPerBlock * GroupRows;

    /// <summary>Row groups: per block, the mins of the group's rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* GroupMins(int group) => (float*)_mins!.Pointer + (long)group * BlocksPerRow * GroupRows;

    /// <summary>Scale <paramref name="index"/> of a row (one per block; two per block for Q6_K).</summary>
    public ref float Scale(int row, int index) => ref GroupScales(row / GroupRows)[index * GroupRows + row % GroupRows];

    /// <summary>The K-quant min of block <paramref name="block"/> of a row.</summary>
    public ref float Min(int row, int block) => ref GroupMins(row / GroupRows)[block * GroupRows + row % GroupRows];

    /// <summary>
    /// Where code <paramref name="index"/> of a row lives: the byte, and the shift of its nibble (0 or 4; always 0 outside
    /// <see cref="CpuWeightLayout.NibbleRowGroups"/>), for the scalar readers; <see cref="WriteBlock"/> writes the same
    /// places, the kernels read whole vectors (<see cref="QuantMatMulKernel"/>).
    /// </summary>
    public byte* CodeLocation(int row, int index, out int shift)
    {
        var block = GroupData(row / GroupRows) + index / BlockSize * GroupBlockBytes + row % GroupRows * 4;
        var j = index % BlockSize;
        shift = Layout == CpuWeightLayout.NibbleRowGroups && j >= 16 ? 4 : 0;
        return Layout == CpuWeightLayout.NibbleRowGroups
            ? block + j % 16 / 4 * GroupVectorBytes + j % 4
            : block + j / 4 * GroupVectorBytes + j % 4;
    }

    /// <summary>
    /// Stores the 32 codes of block <paramref name="block"/> of a row (the repacker): what <see cref="CodeLocation"/> says,
    /// a dword at a time (per code it doubled the load time of a model).
    /// </summary>
    public void WriteBlock(int row, int block, byte* codes)
    {
        var dwords = GroupData(row / GroupRows) + block * GroupBlockBytes + row % GroupRows * 4;
        if (Layout == CpuWeightLayout.NibbleRowGroups)
        {
            for (var p = 0; p < 4; p++)
            {
                *(uint*)(dwords + p * GroupVectorBytes) = *(uint*)(codes + 4 * p) | *(uint*)(codes + 16 + 4 * p) << 4;
            }
        }
        else
        {
            for (var g = 0; g < 8; g++)
            {
                *(uint*)(dwords + g * GroupVectorBytes) = *(uint*)(codes + 4 * g);
            }
        }
    }

    /// <summary>The code of value <paramref name="index"/> of a row (Q8_0's signed).</summary>
    public int Code(int row, int index)
    {
        var location = CodeLocation(row, index, out var shift);
        return Layout switch
        {
            CpuWeightLayout.NibbleRowGroups => (*location >> shift) & 0xF,
            CpuWeightLayout.SignedByteRowGroups => (sbyte)*location,
            _ => *location,
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

        for (var i = 0; i < Columns; i++)
        {
            var block = i / BlockSize;
            var scale = Scale(row, ScalesPerBlock == 1 ? block : i / 16);
            var min = HasMins ? Min(row, block) : 0f;
            destination[i] = scale * (Code(row, i) - CodeOffset) - min;
        }
    }

    public override void Dispose()
    {
        _data.Dispose();
        _scales?.Dispose();
        _mins?.Dispose();
    }
}
