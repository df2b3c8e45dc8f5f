using System.Runtime.InteropServices;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Quantization;

namespace AspireAi.Inference.Backends.Cuda;

/// <summary>A weight rearranged on the host for the device kernels, before upload (and what the packing tests inspect).</summary>
public sealed record PackedWeight(
    string Name, GgmlType Type, int Rows, int Columns, CudaWeightLayout Layout, int CodeOffset, int ScalesPerBlock,
    byte[] Codes, float[]? Scales, float[]? Mins)
{
    /// <summary>Value <paramref name="index"/> of row <paramref name="row"/>, decoded the way the kernels decode it.</summary>
    public float Value(int row, int index)
    {
        var i = (long)row * Columns + index;
        switch (Layout)
        {
            case CudaWeightLayout.Float32:
                return BitConverter.ToSingle(Codes, (int)(i * 4));
            case CudaWeightLayout.Float16:
                return (float)BitConverter.ToHalf(Codes, (int)(i * 2));
            case CudaWeightLayout.BFloat16:
                return BitConverter.Int32BitsToSingle(BitConverter.ToUInt16(Codes, (int)(i * 2)) << 16);
        }

        var blocks = Columns / 32;
        var block = index / 32;
        var j = index % 32;
        int code;
        if (Layout == CudaWeightLayout.Int8)
        {
            code = (sbyte)Codes[i];
        }
        else
        {
            var b = Codes[((long)row * blocks + block) * 16 + (j & 15)];
            code = (j < 16 ? b & 15 : b >> 4) - CodeOffset;
        }

        var scale = Scales![((long)row * blocks + block) * ScalesPerBlock + (ScalesPerBlock == 2 ? j / 16 : 0)];
        var min = Mins?[(long)row * blocks + block] ?? 0f;
        return scale * code - min;
    }
}

/// <summary>
/// Turns a tensor's ggml blocks (layouts per llama.cpp's <c>ggml-common.h</c>) into the device layouts: float types as they
/// are (1-D tensors widened to float32); Q4_0 and Q4_K as nibbles in ggml's Q4_0 byte order with unsigned codes; Q8_0,
/// Q5_0, Q5_K and Q6_K as signed int8 codes with the format's offset subtracted; fp16 super-block scales multiplied out into
/// one float scale per 32 values (per 16 for Q6_K) and one float min per 32 (K-quants). Lossless: codes are the file's
/// integers, and fp16 · 6-bit integer products are exact in float. (Upload keeps the scales of Q8_0, Q5_0 and Q4_0, the
/// file's f16 d, as f16 on the device: <see cref="CudaWeight.HasHalfScales"/>.) Written separately from the CPU backend's
/// repacker, whose layout serves AVX2 lanes and may change with that backend's tuning.
/// </summary>
public static unsafe class CudaWeightPacker
{
    public static PackedWeight Pack(TensorView tensor)
    {
        var (columns, rows, rowBytes) = tensor.MatrixShape();
        var source = (byte*)tensor.Data;
        if (tensor.Type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16)
        {
            if (rows == 1 && tensor.Type != GgmlType.F32)
            {
                var widened = new float[columns];
                for (var i = 0; i < columns; i++)
                {
                    widened[i] = tensor.Type == GgmlType.F16
                        ? (float)BitConverter.UInt16BitsToHalf(((ushort*)source)[i])
                        : BitConverter.Int32BitsToSingle(((ushort*)source)[i] << 16);
                }

                return new PackedWeight(tensor.Name, tensor.Type, 1, columns, CudaWeightLayout.Float32, 0, 1, MemoryMarshal.AsBytes(widened.AsSpan()).ToArray(), null, null);
            }

            var layout = tensor.Type switch
            {
                GgmlType.F32 => CudaWeightLayout.Float32,
                GgmlType.F16 => CudaWeightLayout.Float16,
                _ => CudaWeightLayout.BFloat16,
            };
            RequireFloatColumns(tensor.Name, columns);
            return new PackedWeight(tensor.Name, tensor.Type, rows, columns, layout, 0, 1, new ReadOnlySpan<byte>(source, checked((int)tensor.ByteLength)).ToArray(), null, null);
        }

        // offset: what the kernels subtract from a nibble; stored: what is subtracted here from an Int8 layout's codes, so
        // that they are signed (Q8_0's bytes already are).
        var (quantLayout, offset, stored, scalesPerBlock, hasMins) = tensor.Type switch
        {
            GgmlType.Q8_0 => (CudaWeightLayout.Int8, 0, 0, 1, false),
            GgmlType.Q4_0 => (CudaWeightLayout.Nibble, 8, 0, 1, false),
            GgmlType.Q5_0 => (CudaWeightLayout.Int8, 0, 16, 1, false),
            GgmlType.Q4_K => (CudaWeightLayout.Nibble, 0, 0, 1, true),
            GgmlType.Q5_K => (CudaWeightLayout.Int8, 0, 0, 1, true),
            GgmlType.Q6_K => (CudaWeightLayout.Int8, 0, 32, 2, false),
            _ => throw new InvalidDataException($"Tensor '{tensor.Name}': type {tensor.Type} is not supported by the CUDA backend."),
        };

        var blocksPerRow = columns / 32;
        var totalBlocks = (long)rows * blocksPerRow;
        var codes = new byte[checked(totalBlocks * (quantLayout == CudaWeightLayout.Nibble ? 16 : 32))];
        var scales = new float[totalBlocks * scalesPerBlock];
        var mins = hasMins ? new float[totalBlocks] : null;
        var blockCodes = stackalloc byte[256];
        var blockScales = stackalloc float[16];
        var blockMins = stackalloc float[8];
        var ggmlBlockBytes = GgmlTypeInfo.BlockBytes(tensor.Type);
        for (var r = 0; r < rows; r++)
        {
            var src = source + r * rowBytes;
            for (var gb = 0; gb < columns / GgmlTypeInfo.BlockSize(tensor.Type); gb++)
            {
                var subBlocks = GgmlBlockDecoder.Decode(tensor.Type, src + gb * ggmlBlockBytes, blockCodes, blockScales, blockMins);
                for (var s = 0; s < subBlocks; s++)
                {
                    var block = (long)r * blocksPerRow + gb * subBlocks + s;
                    var c = blockCodes + s * 32;
                    if (quantLayout == CudaWeightLayout.Nibble)
                    {
                        for (var j = 0; j < 16; j++)
                        {
                            codes[block * 16 + j] = (byte)(c[j] | c[j + 16] << 4);
                        }
                    }
                    else
                    {
                        for (var j = 0; j < 32; j++)
                        {
                            codes[block * 32 + j] = (byte)(c[j] - stored);
                        }
                    }

                    for (var k = 0; k < scalesPerBlock; k++)
                    {
                        scales[block * scalesPerBlock + k] = blockScales[s * scalesPerBlock + k];
                    }

                    if (mins is not null)
                    {
                        mins[block] = blockMins[s];
                    }
                }
            }
        }

        return new PackedWeight(tensor.Name, tensor.Type, rows, columns, quantLayout, offset, scalesPerBlock, codes, scales, mins);
    }

    private static void RequireFloatColumns(string name, int columns)
    {
        // The float kernels read 16 bytes per lane and tiles of 32 columns.
        if (columns % 32 != 0)
        {
            throw new InvalidDataException($"Tensor '{name}': the CUDA backend needs float rows of a multiple of 32 values, not {columns}.");
        }
    }
}
