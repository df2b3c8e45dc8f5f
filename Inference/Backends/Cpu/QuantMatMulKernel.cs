using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// output[t, r] = Σ_blocks (scale_w · scale_a) · Σ_j code_w · code_a, corrected for the code offset and the K-quant mins:
/// − offset · Σ_b scale_w,b · (d·Σq)_a,b − Σ_b min_b · (d·Σq)_a,b. The integer products run on the quantized blocks with
/// 256-bit AVX2 integer instructions; four tokens share each loaded and unpacked weight block (the prefill GEMM), one token
/// takes the GEMV path. Row layouts (Q8_0, Q6_K) here; the row-grouped Q4/Q5 types go to <see cref="RowGroupMatMulKernel"/>.
/// </summary>
internal static unsafe class QuantMatMulKernel
{
    /// <summary>Computes rows [rowStart, rowEnd) of the output for every token.</summary>
    public static void Run(CpuWeight weight, QuantizedActivations act, int tokens, float* output, int rowStart, int rowEnd)
    {
        switch (weight.Layout)
        {
            case CpuWeightLayout.NibbleRowGroups or CpuWeightLayout.ByteRowGroups:
                RowGroupMatMulKernel.Run(weight, act, tokens, output, rowStart, rowEnd);
                break;
            case CpuWeightLayout.SignedBytes:
                Rows<SignedByteCodes, OneScale>(weight, act, tokens, output, rowStart, rowEnd);
                break;
            case CpuWeightLayout.ByteCodes:
                Rows<ByteCodes, HalfBlockScales>(weight, act, tokens, output, rowStart, rowEnd);
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
            var fullTiles = chunk + (chunkEnd - chunk) / 4 * 4;
            for (var r = rowStart; r < rowEnd; r++)
            {
                for (var t = chunk; t < fullTiles; t += 4)
                {
                    Tile4<TCodes, TScales>(weight, r, act, t, output + (long)t * n + r, n);
                }
            }

            // Tokens left over (every token of a decode step): four rows at a time share each activation block.
            for (var t = fullTiles; t < chunkEnd; t++)
            {
                var r = rowStart;
                for (; r + 4 <= rowEnd; r += 4)
                {
                    Rows4<TCodes, TScales>(weight, r, act, t, output + (long)t * n + r);
                }

                for (; r < rowEnd; r++)
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

    /// <summary>One token against rows r…r+3: the GEMV step, with the four horizontal sums folded into one vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Rows4<TCodes, TScales>(CpuWeight weight, int row, QuantizedActivations act, int token, float* output)
        where TCodes : IBlockCodes
        where TScales : IBlockScales
    {
        byte* w0 = weight.RowData(row), w1 = weight.RowData(row + 1), w2 = weight.RowData(row + 2), w3 = weight.RowData(row + 3);
        float* s0 = weight.RowScales(row), s1 = weight.RowScales(row + 1), s2 = weight.RowScales(row + 2), s3 = weight.RowScales(row + 3);
        var a = act.Codes(token);
        var d = act.Scales(token);
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        var blocks = weight.BlocksPerRow;
        for (var b = 0; b < blocks; b++)
        {
            var x = Avx.LoadVector256(a + b * 32);
            var db = Vector256.Create(d[b]);
            acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TCodes.Dot(TCodes.Load(w0, b), x)), TScales.Load(s0, b) * db, acc0);
            acc1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TCodes.Dot(TCodes.Load(w1, b), x)), TScales.Load(s1, b) * db, acc1);
            acc2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TCodes.Dot(TCodes.Load(w2, b), x)), TScales.Load(s2, b) * db, acc2);
            acc3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(TCodes.Dot(TCodes.Load(w3, b), x)), TScales.Load(s3, b) * db, acc3);
        }

        // hadd(hadd(a0,a1), hadd(a2,a3)) leaves each row's partial sums in lanes i and i+4.
        var sums = Avx.HorizontalAdd(Avx.HorizontalAdd(acc0, acc1), Avx.HorizontalAdd(acc2, acc3));
        var total = sums.GetLower() + sums.GetUpper();
        if (weight.CodeOffset != 0 || weight.HasMins)
        {
            total -= Vector128.Create(
                Correction<TScales>(weight, row, act, token),
                Correction<TScales>(weight, row + 1, act, token),
                Correction<TScales>(weight, row + 2, act, token),
                Correction<TScales>(weight, row + 3, act, token));
        }

        total.Store(output);
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
            var sums = TScales.PerBlock == 1 ? act.ScaledSums(token) : act.ScaledHalfSums(token);
            total = weight.CodeOffset * Dot(weight.RowScales(row), sums, weight.BlocksPerRow * TScales.PerBlock);
        }

        if (weight.HasMins)
        {
            total += Dot(weight.RowMins(row), act.ScaledSums(token), weight.BlocksPerRow);
        }

        return total;
    }

    /// <summary>
    /// A short dot product (one value per block: 9 for a 288-wide row). Measured: the scalar loop cost as much as a third of
    /// a Q4_0/Q5_0 row's block loop, so it gets 8 lanes too.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(float* a, float* b, int n)
    {
        var i = 0;
        var acc = Vector256<float>.Zero;
        for (; i + 8 <= n; i += 8)
        {
            acc = Fma.MultiplyAdd(Avx.LoadVector256(a + i), Avx.LoadVector256(b + i), acc);
        }

        var sum = Vector256.Sum(acc);
        for (; i < n; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
    }
}
