namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// Scalar versions of the matmul kernels over the same weight and activation layouts, for CPUs without AVX2 (and as the
/// tier tests force to check the SIMD ones against). The integer math is identical, so results match the SIMD kernels up to
/// float summation order.
/// </summary>
internal static unsafe class PortableKernels
{
    public static void QuantRows(CpuWeight weight, QuantizedActivations act, int tokens, float* output, int rowStart, int rowEnd)
    {
        var n = weight.Rows;
        for (var t = 0; t < tokens; t++)
        {
            var a = act.Codes(t);
            var d = act.Scales(t);
            for (var r = rowStart; r < rowEnd; r++)
            {
                var sum = 0f;
                for (var b = 0; b < weight.BlocksPerRow; b++)
                {
                    for (var h = 0; h < weight.ScalesPerBlock; h++)
                    {
                        var width = 32 / weight.ScalesPerBlock;
                        var dot = 0;
                        for (var j = b * 32 + h * width; j < b * 32 + (h + 1) * width; j++)
                        {
                            dot += weight.Code(r, j) * a[j];
                        }

                        sum += weight.Scale(r, b * weight.ScalesPerBlock + h) * d[b] * dot;
                    }
                }

                output[(long)t * n + r] = sum - Correction(weight, r, act, t);
            }
        }
    }

    /// <summary>offset · Σ scale·(d·Σq) + Σ min·(d·Σq): what <see cref="IGroupCorrection"/> folds in per block.</summary>
    private static float Correction(CpuWeight weight, int row, QuantizedActivations act, int token)
    {
        var total = 0f;
        var sums = weight.ScalesPerBlock == 1 ? act.ScaledSums(token) : act.ScaledHalfSums(token);
        for (var i = 0; i < weight.BlocksPerRow * weight.ScalesPerBlock && weight.CodeOffset != 0; i++)
        {
            total += weight.CodeOffset * weight.Scale(row, i) * sums[i];
        }

        for (var b = 0; b < weight.BlocksPerRow && weight.HasMins; b++)
        {
            total += weight.Min(row, b) * act.ScaledSums(token)[b];
        }

        return total;
    }

    public static void FloatRows(CpuWeight weight, float* input, int inputStride, int tokens, float* output, int rowStart, int rowEnd)
    {
        var n = weight.Rows;
        var k = weight.Columns;
        for (var r = rowStart; r < rowEnd; r++)
        {
            var data = weight.RowData(r);
            for (var t = 0; t < tokens; t++)
            {
                var x = input + (long)t * inputStride;
                var sum = 0f;
                for (var i = 0; i < k; i++)
                {
                    sum += Element(weight.Layout, data, i) * x[i];
                }

                output[(long)t * n + r] = sum;
            }
        }
    }

    private static float Element(CpuWeightLayout layout, byte* data, int i) => layout switch
    {
        CpuWeightLayout.Float32 => ((float*)data)[i],
        CpuWeightLayout.Float16 => (float)BitConverter.UInt16BitsToHalf(((ushort*)data)[i]),
        _ => BitConverter.Int32BitsToSingle(((ushort*)data)[i] << 16),
    };
}
