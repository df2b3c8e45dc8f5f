using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Quantization;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// Turns a tensor's ggml blocks (layouts per llama.cpp's <c>ggml-common.h</c>) into a <see cref="CpuWeight"/>: codes into
/// its row groups (<see cref="CpuWeight.WriteBlock"/>), fp16 scales widened to float, K-quant sub-block scales and mins
/// multiplied out. Runs once at load.
/// </summary>
internal static unsafe class WeightRepacker
{
    public static CpuWeight Load(TensorView tensor)
    {
        var (columns, rows, rowBytes) = tensor.MatrixShape();
        var source = (byte*)tensor.Data;
        // Vectors (norms, biases) are tiny and read element-wise: keep them as float32 whatever the file says.
        if (rows == 1 && tensor.Type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16)
        {
            var vector = new CpuWeight(tensor.Name, tensor.Type, 1, columns, CpuWeightLayout.Float32, 0, 1);
            var dst = (float*)vector.RowData(0);
            for (var i = 0; i < columns; i++)
            {
                dst[i] = ReadFloat(tensor.Type, source, i);
            }

            return vector;
        }

        switch (tensor.Type)
        {
            case GgmlType.F32:
            case GgmlType.F16:
            case GgmlType.BF16:
            {
                var layout = tensor.Type switch
                {
                    GgmlType.F32 => CpuWeightLayout.Float32,
                    GgmlType.F16 => CpuWeightLayout.Float16,
                    _ => CpuWeightLayout.BFloat16,
                };
                var weight = new CpuWeight(tensor.Name, tensor.Type, rows, columns, layout, 0, 1);
                Buffer.MemoryCopy(source, weight.RowData(0), weight.RowStride * rows, rowBytes * rows);
                return weight;
            }
        }

        var (quantLayout, offset, scalesPerBlock) = tensor.Type switch
        {
            GgmlType.Q8_0 => (CpuWeightLayout.SignedByteRowGroups, 0, 1),
            GgmlType.Q4_0 => (CpuWeightLayout.NibbleRowGroups, 8, 1),
            GgmlType.Q5_0 => (CpuWeightLayout.ByteRowGroups, 16, 1),
            GgmlType.Q4_K => (CpuWeightLayout.NibbleRowGroups, 0, 1),
            GgmlType.Q5_K => (CpuWeightLayout.ByteRowGroups, 0, 1),
            GgmlType.Q6_K => (CpuWeightLayout.ByteRowGroups, 32, 2),
            _ => throw new InvalidDataException($"Tensor '{tensor.Name}': type {tensor.Type} is not supported by the CPU backend."),
        };

        var result = new CpuWeight(tensor.Name, tensor.Type, rows, columns, quantLayout, offset, scalesPerBlock);
        var codes = stackalloc byte[256];
        var scales = stackalloc float[16];
        var mins = stackalloc float[8];
        var ggmlBlock = GgmlTypeInfo.BlockSize(tensor.Type);
        var ggmlBlockBytes = GgmlTypeInfo.BlockBytes(tensor.Type);
        for (var r = 0; r < rows; r++)
        {
            var src = source + r * rowBytes;
            for (var gb = 0; gb < columns / ggmlBlock; gb++)
            {
                var subBlocks = GgmlBlockDecoder.Decode(tensor.Type, src + gb * ggmlBlockBytes, codes, scales, mins);
                for (var s = 0; s < subBlocks; s++)
                {
                    var block = gb * subBlocks + s;
                    result.WriteBlock(r, block, codes + s * 32);

                    for (var k = 0; k < scalesPerBlock; k++)
                    {
                        result.Scale(r, block * scalesPerBlock + k) = scales[s * scalesPerBlock + k];
                    }

                    if (result.HasMins)
                    {
                        result.Min(r, block) = mins[s];
                    }
                }
            }
        }

        return result;
    }

    private static float ReadFloat(GgmlType type, byte* data, int i) => type switch
    {
        GgmlType.F32 => ((float*)data)[i],
        GgmlType.F16 => (float)BitConverter.UInt16BitsToHalf(((ushort*)data)[i]),
        _ => BitConverter.Int32BitsToSingle(((ushort*)data)[i] << 16),
    };
}
