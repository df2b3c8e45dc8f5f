using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// output[t, r] = Σ_k w[r, k] · x[t, k] for F32/F16/BF16 weights with FMA: 16 lanes (AVX-512) or 8 (AVX2), four tokens
/// sharing each loaded weight vector, a scalar tail for row lengths that are not a multiple of the width.
/// </summary>
internal static unsafe class FloatMatMulKernel
{
    private const int TokenChunk = 16;

    public static void Run(CpuWeight weight, float* input, int inputStride, int tokens, float* output, int rowStart, int rowEnd, bool wide)
    {
        switch (weight.Layout)
        {
            case CpuWeightLayout.Float32:
                Rows<Float32Row>(weight, input, inputStride, tokens, output, rowStart, rowEnd, wide);
                break;
            case CpuWeightLayout.Float16:
                Rows<Float16Row>(weight, input, inputStride, tokens, output, rowStart, rowEnd, wide);
                break;
            case CpuWeightLayout.BFloat16:
                Rows<BFloat16Row>(weight, input, inputStride, tokens, output, rowStart, rowEnd, wide);
                break;
            default:
                throw new InvalidOperationException($"{weight.Name}: layout {weight.Layout} is not a float layout.");
        }
    }

    private static void Rows<TRow>(CpuWeight weight, float* input, int stride, int tokens, float* output, int rowStart, int rowEnd, bool wide)
        where TRow : IFloatRow
    {
        var n = weight.Rows;
        for (var chunk = 0; chunk < tokens; chunk += TokenChunk)
        {
            var chunkEnd = Math.Min(tokens, chunk + TokenChunk);
            var fullTiles = chunk + (chunkEnd - chunk) / 4 * 4;
            for (var r = rowStart; r < rowEnd; r++)
            {
                var row = weight.RowData(r);
                for (var t = chunk; t < fullTiles; t += 4)
                {
                    var x = input + (long)t * stride;
                    if (wide)
                    {
                        Tile4Wide<TRow>(row, weight.Columns, x, stride, output + (long)t * n + r, n);
                    }
                    else
                    {
                        Tile4<TRow>(row, weight.Columns, x, stride, output + (long)t * n + r, n);
                    }
                }
            }

            // Leftover tokens (every decode token): four rows at a time, so each thread keeps four weight streams in
            // flight — F32 decode is bound by memory bandwidth, and more concurrent streams fetch more of it.
            for (var t = fullTiles; t < chunkEnd; t++)
            {
                var x = input + (long)t * stride;
                var r = rowStart;
                if (wide)
                {
                    for (; r + 4 <= rowEnd; r += 4)
                    {
                        Rows4Wide<TRow>(weight, r, x, output + (long)t * n + r);
                    }
                }

                for (; r < rowEnd; r++)
                {
                    output[(long)t * n + r] = wide
                        ? Dot1Wide<TRow>(weight.RowData(r), weight.Columns, x)
                        : Dot1<TRow>(weight.RowData(r), weight.Columns, x);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Rows4Wide<TRow>(CpuWeight weight, int row, float* x, float* output)
        where TRow : IFloatRow
    {
        byte* w0 = weight.RowData(row), w1 = weight.RowData(row + 1), w2 = weight.RowData(row + 2), w3 = weight.RowData(row + 3);
        var k = weight.Columns;
        Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        var i = 0;
        for (; i + 16 <= k; i += 16)
        {
            var xv = Vector512.Load(x + i);
            acc0 = Vector512.FusedMultiplyAdd(TRow.Load16(w0, i), xv, acc0);
            acc1 = Vector512.FusedMultiplyAdd(TRow.Load16(w1, i), xv, acc1);
            acc2 = Vector512.FusedMultiplyAdd(TRow.Load16(w2, i), xv, acc2);
            acc3 = Vector512.FusedMultiplyAdd(TRow.Load16(w3, i), xv, acc3);
        }

        float s0 = Vector512.Sum(acc0), s1 = Vector512.Sum(acc1), s2 = Vector512.Sum(acc2), s3 = Vector512.Sum(acc3);
        for (; i < k; i++)
        {
            s0 += TRow.Load1(w0, i) * x[i];
            s1 += TRow.Load1(w1, i) * x[i];
            s2 += TRow.Load1(w2, i) * x[i];
            s3 += TRow.Load1(w3, i) * x[i];
        }

        output[0] = s0;
        output[1] = s1;
        output[2] = s2;
        output[3] = s3;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot1Wide<TRow>(byte* row, int k, float* x)
        where TRow : IFloatRow
    {
        Vector512<float> acc0 = default, acc1 = default;
        var i = 0;
        for (; i + 32 <= k; i += 32)
        {
            acc0 = Vector512.FusedMultiplyAdd(TRow.Load16(row, i), Vector512.Load(x + i), acc0);
            acc1 = Vector512.FusedMultiplyAdd(TRow.Load16(row, i + 16), Vector512.Load(x + i + 16), acc1);
        }

        for (; i + 16 <= k; i += 16)
        {
            acc0 = Vector512.FusedMultiplyAdd(TRow.Load16(row, i), Vector512.Load(x + i), acc0);
        }

        var sum = Vector512.Sum(acc0 + acc1);
        for (; i < k; i++)
        {
            sum += TRow.Load1(row, i) * x[i];
        }

        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot1<TRow>(byte* row, int k, float* x)
        where TRow : IFloatRow
    {
        Vector256<float> acc0 = default, acc1 = default;
        var i = 0;
        for (; i + 16 <= k; i += 16)
        {
            acc0 = Vector256.FusedMultiplyAdd(TRow.Load8(row, i), Vector256.Load(x + i), acc0);
            acc1 = Vector256.FusedMultiplyAdd(TRow.Load8(row, i + 8), Vector256.Load(x + i + 8), acc1);
        }

        for (; i + 8 <= k; i += 8)
        {
            acc0 = Vector256.FusedMultiplyAdd(TRow.Load8(row, i), Vector256.Load(x + i), acc0);
        }

        var sum = Vector256.Sum(acc0 + acc1);
        for (; i < k; i++)
        {
            sum += TRow.Load1(row, i) * x[i];
        }

        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile4Wide<TRow>(byte* row, int k, float* x, int stride, float* output, int outStride)
        where TRow : IFloatRow
    {
        Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        float* x0 = x, x1 = x + stride, x2 = x + 2 * stride, x3 = x + 3 * stride;
        var i = 0;
        for (; i + 16 <= k; i += 16)
        {
            var w = TRow.Load16(row, i);
            acc0 = Vector512.FusedMultiplyAdd(w, Vector512.Load(x0 + i), acc0);
            acc1 = Vector512.FusedMultiplyAdd(w, Vector512.Load(x1 + i), acc1);
            acc2 = Vector512.FusedMultiplyAdd(w, Vector512.Load(x2 + i), acc2);
            acc3 = Vector512.FusedMultiplyAdd(w, Vector512.Load(x3 + i), acc3);
        }

        float s0 = Vector512.Sum(acc0), s1 = Vector512.Sum(acc1), s2 = Vector512.Sum(acc2), s3 = Vector512.Sum(acc3);
        for (; i < k; i++)
        {
            var w = TRow.Load1(row, i);
            s0 += w * x0[i];
            s1 += w * x1[i];
            s2 += w * x2[i];
            s3 += w * x3[i];
        }

        output[0] = s0;
        output[outStride] = s1;
        output[2 * outStride] = s2;
        output[3 * outStride] = s3;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile4<TRow>(byte* row, int k, float* x, int stride, float* output, int outStride)
        where TRow : IFloatRow
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        float* x0 = x, x1 = x + stride, x2 = x + 2 * stride, x3 = x + 3 * stride;
        var i = 0;
        for (; i + 8 <= k; i += 8)
        {
            var w = TRow.Load8(row, i);
            acc0 = Vector256.FusedMultiplyAdd(w, Vector256.Load(x0 + i), acc0);
            acc1 = Vector256.FusedMultiplyAdd(w, Vector256.Load(x1 + i), acc1);
            acc2 = Vector256.FusedMultiplyAdd(w, Vector256.Load(x2 + i), acc2);
            acc3 = Vector256.FusedMultiplyAdd(w, Vector256.Load(x3 + i), acc3);
        }

        float s0 = Vector256.Sum(acc0), s1 = Vector256.Sum(acc1), s2 = Vector256.Sum(acc2), s3 = Vector256.Sum(acc3);
        for (; i < k; i++)
        {
            var w = TRow.Load1(row, i);
            s0 += w * x0[i];
            s1 += w * x1[i];
            s2 += w * x2[i];
            s3 += w * x3[i];
        }

        output[0] = s0;
        output[outStride] = s1;
        output[2 * outStride] = s2;
        output[3 * outStride] = s3;
    }
}
