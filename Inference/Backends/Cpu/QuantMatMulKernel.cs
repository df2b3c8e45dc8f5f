using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// output[t, r] = Σ_blocks (scale_w · scale_a) · Σ_j code_w · code_a, corrected for the code offset and the K-quant mins:
/// − offset · Σ_b scale_w,b · (d·Σq)_a,b − Σ_b min_b · (d·Σq)_a,b. The integer products run on the quantized blocks with
/// 256-bit AVX2 integer instructions; four tokens share each loaded and unpacked weight block (the prefill GEMM), one token
/// takes the GEMV path.
/// </summary>
internal static unsafe class QuantMatMulKernel
{
    /// <summary>Computes rows [rowStart, rowEnd) of the output for every token.</summary>
    public static void Run(CpuWeight weight, QuantizedActivations act, int tokens, float* output, int rowStart, int rowEnd)
    {
        switch (weight.Layout)
        {
            case CpuWeightLayout.NibblePairs:
                Rows<NibblePairCodes, OneScale>(weight, act, tokens, output, rowStart, rowEnd);
                break;
            case CpuWeightLayout.SignedBytes:
                Rows<SignedByteCodes, OneScale>(weight, act, tokens, output, rowStart, rowEnd);
                break;
            case CpuWeightLayout.ByteCodes when weight.ScalesPerBlock == 2:
                Rows<ByteCodes, HalfBlockScales>(weight, act, tokens, output, rowStart, rowEnd);
                break;
            case CpuWeightLayout.ByteCodes:
                Rows<ByteCodes, OneScale>(weight, act, tokens, output, rowStart, rowEnd);
                break;
            default:
                throw new InvalidOperationException($"{weight.Name}: layout {weight.Layout} is not quantized.");
        }
    }

    // 16 tokens of int8 activations (16 × K bytes) stay in L1 while a thread sweeps its rows; the rows' weights stream from
    // L2/L3 once per 16 tokens rather than once per token.
    private const int TokenChunk = 16;

    private static void Rows<TCodes, TScales>(CpuWeight weight, QuantizedActivations act, int tokens, float* output, int rowStart, int rowEnd)
        where TCodes : IBlockCodes
        where TScales : IBlockScales
    {
        var n = weight.Rows;
        for (var chunk = 0; chunk < tokens; chunk += TokenChunk)
        {
            var chunkEnd = Math.Min(tokens, chunk + TokenChunk);
            for (var r = rowStart; r < rowEnd; r++)
            {
                var t = chunk;
                for (; t + 4 <= chunkEnd; t += 4)
                {
                    Tile4<TCodes, TScales>(weight, r, act, t, output + (long)t * n + r, n);
                }

                for (; t < chunkEnd; t++)
                {
                    output[(long)t * n + r] = Tile1<TCodes, TScales>(weight, r, act, t);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tile1<TCodes, TScales>(CpuWeight weight, int row, QuantizedActivations act, int token)
        where TCodes : IBlockCodes
        where TScales : IBlockScales
    {
        var data = weight.RowData(row);
        var scales = weight.RowScales(row);
        var a = act.Codes(token);
        var d = act.Scales(token);
        var acc = Vector256<float>.Zero;
        var blocks = weight.BlocksPerRow;
        for (var b = 0; b < blocks; b++)
        {
            var dot = TCodes.Dot(TCodes.Load(data, b), Avx.LoadVector256(a + b * 32));
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot), TScales.Load(scales, b) * Vector256.Create(d[b]), acc);
        }

        return Vector256.Sum(acc) - Correction<TScales>(weight, row, act, token);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile4<TCodes, TScales>(CpuWeight weight, int row, QuantizedActivations act, int token, float* output, int stride)
        where TCodes : IBlockCodes
        where TScales : IBlockScales
    {
        var data = weight.RowData(row);
        var scales = weight.RowScales(row);
        sbyte* a0 = act.Codes(token), a1 = act.Codes(token + 1), a2 = act.Codes(token + 2), a3 = act.Codes(token + 3);
        float* d0 = act.Scales(token), d1 = act.Scales(token + 1), d2 = act.Scales(token + 2), d3 = act.Scales(token + 3);
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        var blocks = weight.BlocksPerRow;
        for (var b = 0; b < blocks; b++)
        {
            var w = TCodes.Load(data, b);
            var s = TScales.Load(scales, b);
            var o = b * 32;
            acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TCodes.Dot(w, Avx.LoadVector256(a0 + o))), s * Vector256.Create(d0[b]), acc0);
            acc1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TCodes.Dot(w, Avx.LoadVector256(a1 + o))), s * Vector256.Create(d1[b]), acc1);
            acc2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TCodes.Dot(w, Avx.LoadVector256(a2 + o))), s * Vector256.Create(d2[b]), acc2);
            acc3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TCodes.Dot(w, Avx.LoadVector256(a3 + o))), s * Vector256.Create(d3[b]), acc3);
        }

        output[0] = Vector256.Sum(acc0) - Correction<TScales>(weight, row, act, token);
        output[stride] = Vector256.Sum(acc1) - Correction<TScales>(weight, row, act, token + 1);
        output[2 * stride] = Vector256.Sum(acc2) - Correction<TScales>(weight, row, act, token + 2);
        output[3 * stride] = Vector256.Sum(acc3) - Correction<TScales>(weight, row, act, token + 3);
    }

    /// <summary>offset · Σ scale_w·(d·Σq)_a + Σ min·(d·Σq)_a over the row's blocks (zero for Q8_0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Correction<TScales>(CpuWeight weight, int row, QuantizedActivations act, int token)
        where TScales : IBlockScales
    {
        var total = 0f;
        if (weight.CodeOffset != 0)
        {
            var count = weight.BlocksPerRow * TScales.PerBlock;
            var scales = weight.RowScales(row);
            var sums = TScales.PerBlock == 1 ? act.ScaledSums(token) : act.ScaledHalfSums(token);
            var dot = 0f;
            for (var i = 0; i < count; i++)
            {
                dot += scales[i] * sums[i];
            }

            total += weight.CodeOffset * dot;
        }

        if (weight.HasMins)
        {
            var mins = weight.RowMins(row);
            var sums = act.ScaledSums(token);
            for (var b = 0; b < weight.BlocksPerRow; b++)
            {
                total += mins[b] * sums[b];
            }
        }

        return total;
    }
}
