using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// output[t, r] = Σ_k w[r, k] · x[t, k] for F32/F16/BF16 weights with FMA: 16 lanes (AVX-512) or 8 (AVX2), a scalar tail
/// for row lengths that are not a multiple of the width. Prefill tokens go in tiles of 8 that share each weight vector — two
/// weight rows at a time with AVX-512, whose 32 registers hold the 16 sums — over rows widened to float32 once per chunk
/// of tokens, then tiles of 4; decode tokens take one dot product per row. Which path a row takes depends only on its
/// index (workers start at multiples of 16 rows), so results do not depend on the thread count.
/// </summary>
internal static unsafe class FloatMatMulKernel
{
    /// <summary>
    /// Bytes of activations one token chunk of F16/BF16 weights may span: 256 KB, a quarter of a Zen 4 core's L2, so the
    /// chunk stays there while every row pair passes over it.
    /// </summary>
    private const int ChunkBytes = 256 * 1024;

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
        var k = weight.Columns;
        // Float32 rows take 16-token chunks (activations 18 KB at K = 288, within L1): 128-token chunks in L2 ran 8 % slower
        // with AVX-512 and 24 % with AVX2. F16/BF16 rows are widened once per chunk, so they take chunks as large as ChunkBytes
        // allows: 128-token chunks ran 22 % faster than 16-token ones with AVX-512 (best of 3 × 20 prefills of stories15M, 1
        // thread, 2026-11-27) and the same with AVX2.
        var chunkTokens = TRow.IsFloat32 ? 16 : Math.Clamp(ChunkBytes / (k * sizeof(float)) / 8 * 8, 16, 256);
        // F16/BF16 rows are widened to float32 once per chunk into this scratch and the tiles read that: F16 costs about
        // ten instructions per vector to widen (Float16Row; .NET has no vcvtph2ps), as many as the FMAs of a tile that use it.
        var widened = tokens >= 8 && !TRow.IsFloat32 ? ArrayPool<float>.Shared.Rent(2 * k) : null;
        try
        {
            fixed (float* scratch = widened)
            {
                for (var chunk = 0; chunk < tokens; chunk += chunkTokens)
                {
                    var chunkEnd = Math.Min(tokens, chunk + chunkTokens);
                    Chunk<TRow>(weight, input, stride, chunk, chunkEnd, output, rowStart, rowEnd, wide, scratch);
                }
            }
        }
        finally
        {
            if (widened is not null)
            {
                ArrayPool<float>.Shared.Return(widened);
            }
        }
    }

    private static void Chunk<TRow>(CpuWeight weight, float* input, int stride, int chunk, int chunkEnd, float* output, int rowStart, int rowEnd,
        bool wide, float* scratch)
        where TRow : IFloatRow
    {
        var (n, k) = (weight.Rows, weight.Columns);
        var wideTiles = chunk + (chunkEnd - chunk) / 8 * 8;
        var fullTiles = wideTiles + (chunkEnd - wideTiles) / 4 * 4;
        // Eight tokens per weight vector: a 128-token F16 prefill ran at 55-60 % of llama.cpp's in four-token tiles, which
        // widened each weight vector for four FMAs and summed each output's vector on its own.
        var r = rowStart;
        if (wideTiles > chunk)
        {
            if (wide)
            {
                for (; r + 2 <= rowEnd; r += 2)
                {
                    var row0 = Widened<TRow>(weight.RowData(r), k, scratch);
                    var row1 = Widened<TRow>(weight.RowData(r + 1), k, scratch + k);
                    for (var t = chunk; t < wideTiles; t += 8)
                    {
                        Tile2x8Wide(row0, row1, k, input + (long)t * stride, stride, output + (long)t * n + r, n);
                    }
                }

                // The last row of an odd range takes the eight-token tiles as two four-token ones.
                for (var odd = r; odd < rowEnd; odd++)
                {
                    for (var t = chunk; t < wideTiles; t += 4)
                    {
                        Tile4Wide<TRow>(weight.RowData(odd), k, input + (long)t * stride, stride, output + (long)t * n + odd, n);
                    }
                }
            }
            else
            {
                for (; r < rowEnd; r++)
                {
                    var row = Widened<TRow>(weight.RowData(r), k, scratch);
                    for (var t = chunk; t < wideTiles; t += 8)
                    {
                        Tile8(row, k, input + (long)t * stride, stride, output + (long)t * n + r, n);
                    }
                }
            }
        }

        for (r = rowStart; r < rowEnd; r++)
        {
            var row = weight.RowData(r);
            for (var t = wideTiles; t < fullTiles; t += 4)
            {
                var x = input + (long)t * stride;
                if (wide)
                {
                    Tile4Wide<TRow>(row, k, x, stride, output + (long)t * n + r, n);
                }
                else
                {
                    Tile4<TRow>(row, k, x, stride, output + (long)t * n + r, n);
                }
            }
        }

        // Leftover tokens (every decode token): one row at a time. A four-row variant sharing each activation load was
        // measured slower (fastest F32 decode step 3.0 ms against 1.7 ms, stories15M, 2 threads), so it is not used.
        for (var t = fullTiles; t < chunkEnd; t++)
        {
            var x = input + (long)t * stride;
            for (r = rowStart; r < rowEnd; r++)
            {
                output[(long)t * n + r] = wide ? Dot1Wide<TRow>(weight.RowData(r), k, x) : Dot1<TRow>(weight.RowData(r), k, x);
            }
        }
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

    /// <summary>The row as float32: itself for F32, else widened into <paramref name="scratch"/> (exactly: F16 and BF16 widen without rounding).</summary>
    private static float* Widened<TRow>(byte* row, int count, float* scratch)
        where TRow : IFloatRow
    {
        if (TRow.IsFloat32)
        {
            return (float*)row;
        }

        var i = 0;
        for (; i + 8 <= count; i += 8)
        {
            TRow.Load8(row, i).Store(scratch + i);
        }

        for (; i < count; i++)
        {
            scratch[i] = TRow.Load1(row, i);
        }

        return scratch;
    }

    /// <summary>Rows r and r + 1 against eight tokens: 16 sums in registers, each converted weight vector used eight times.</summary>
    private static void Tile2x8Wide(float* row0, float* row1, int k, float* x, int stride, float* output, int outStride)
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a04 = default, a05 = default, a06 = default, a07 = default, a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default, a16 = default, a17 = default;
        float* x0 = x, x1 = x + 1 * stride, x2 = x + 2 * stride, x3 = x + 3 * stride, x4 = x + 4 * stride, x5 = x + 5 * stride, x6 = x + 6 * stride, x7 = x + 7 * stride;
        var i = 0;
        for (; i + 16 <= k; i += 16)
        {
            var w0 = Vector512.Load(row0 + i);
            var w1 = Vector512.Load(row1 + i);
            var v0 = Vector512.Load(x0 + i);
            a00 = Vector512.FusedMultiplyAdd(w0, v0, a00);
            a10 = Vector512.FusedMultiplyAdd(w1, v0, a10);
            var v1 = Vector512.Load(x1 + i);
            a01 = Vector512.FusedMultiplyAdd(w0, v1, a01);
            a11 = Vector512.FusedMultiplyAdd(w1, v1, a11);
            var v2 = Vector512.Load(x2 + i);
            a02 = Vector512.FusedMultiplyAdd(w0, v2, a02);
            a12 = Vector512.FusedMultiplyAdd(w1, v2, a12);
            var v3 = Vector512.Load(x3 + i);
            a03 = Vector512.FusedMultiplyAdd(w0, v3, a03);
            a13 = Vector512.FusedMultiplyAdd(w1, v3, a13);
            var v4 = Vector512.Load(x4 + i);
            a04 = Vector512.FusedMultiplyAdd(w0, v4, a04);
            a14 = Vector512.FusedMultiplyAdd(w1, v4, a14);
            var v5 = Vector512.Load(x5 + i);
            a05 = Vector512.FusedMultiplyAdd(w0, v5, a05);
            a15 = Vector512.FusedMultiplyAdd(w1, v5, a15);
            var v6 = Vector512.Load(x6 + i);
            a06 = Vector512.FusedMultiplyAdd(w0, v6, a06);
            a16 = Vector512.FusedMultiplyAdd(w1, v6, a16);
            var v7 = Vector512.Load(x7 + i);
            a07 = Vector512.FusedMultiplyAdd(w0, v7, a07);
            a17 = Vector512.FusedMultiplyAdd(w1, v7, a17);
        }

        // One vector of the 16 sums, lane 2t + r holding row r's for token t (the order Sum16 lays its inputs out in):
        // about 45 shuffles and adds, where Vector512.Sum took 35 instructions per sum — more than the loop at K = 288.
        var buffer = stackalloc float[16];
        Sum16(a00, a02, a04, a06, a10, a12, a14, a16, a01, a03, a05, a07, a11, a13, a15, a17).Store(buffer);
        for (; i < k; i++)
        {
            var u0 = row0[i];
            var u1 = row1[i];
            buffer[0] += u0 * x0[i];
            buffer[1] += u1 * x0[i];
            buffer[2] += u0 * x1[i];
            buffer[3] += u1 * x1[i];
            buffer[4] += u0 * x2[i];
            buffer[5] += u1 * x2[i];
            buffer[6] += u0 * x3[i];
            buffer[7] += u1 * x3[i];
            buffer[8] += u0 * x4[i];
            buffer[9] += u1 * x4[i];
            buffer[10] += u0 * x5[i];
            buffer[11] += u1 * x5[i];
            buffer[12] += u0 * x6[i];
            buffer[13] += u1 * x6[i];
            buffer[14] += u0 * x7[i];
            buffer[15] += u1 * x7[i];
        }

        for (var t = 0; t < 8; t++)
        {
            output[t * outStride] = buffer[2 * t];
            output[t * outStride + 1] = buffer[2 * t + 1];
        }
    }

    /// <summary>
    /// Horizontal sums of 16 vectors in one: lane 4b + i holds the sum of input 4i + b. Halves, then quarters of the
    /// 128-bit blocks are paired across inputs (vshuff32x4) and added, then the four lanes of each block (unpack, vshufps).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Sum16(
        Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3,
        Vector512<float> a4, Vector512<float> a5, Vector512<float> a6, Vector512<float> a7,
        Vector512<float> a8, Vector512<float> a9, Vector512<float> a10, Vector512<float> a11,
        Vector512<float> a12, Vector512<float> a13, Vector512<float> a14, Vector512<float> a15)
    {
        // q_c's block b: four partial sums of input 4c + b.
        var q0 = Quarters(Halves(a0, a1), Halves(a2, a3));
        var q1 = Quarters(Halves(a4, a5), Halves(a6, a7));
        var q2 = Quarters(Halves(a8, a9), Halves(a10, a11));
        var q3 = Quarters(Halves(a12, a13), Halves(a14, a15));
        var s = Avx512F.UnpackLow(q0, q1) + Avx512F.UnpackHigh(q0, q1);
        var t = Avx512F.UnpackLow(q2, q3) + Avx512F.UnpackHigh(q2, q3);
        return Avx512F.Shuffle(s, t, 0x44) + Avx512F.Shuffle(s, t, 0xEE);

        // [a's blocks 0+2, 1+3, b's blocks 0+2, 1+3].
        static Vector512<float> Halves(Vector512<float> a, Vector512<float> b) => Avx512F.Shuffle4x128(a, b, 0x44) + Avx512F.Shuffle4x128(a, b, 0xEE);

        // [p's blocks 0+1, 2+3, q's blocks 0+1, 2+3]: with Halves' output, one 128-bit block per original input.
        static Vector512<float> Quarters(Vector512<float> p, Vector512<float> q) => Avx512F.Shuffle4x128(p, q, 0x88) + Avx512F.Shuffle4x128(p, q, 0xDD);
    }

    /// <summary>One row against eight tokens (AVX2: its 16 registers hold eight sums beside the weight and token vectors).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile8(float* row, int k, float* x, int stride, float* output, int outStride)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        float* x0 = x, x1 = x + 1 * stride, x2 = x + 2 * stride, x3 = x + 3 * stride, x4 = x + 4 * stride, x5 = x + 5 * stride, x6 = x + 6 * stride, x7 = x + 7 * stride;
        var i = 0;
        for (; i + 8 <= k; i += 8)
        {
            var w = Vector256.Load(row + i);
            a0 = Vector256.FusedMultiplyAdd(w, Vector256.Load(x0 + i), a0);
            a1 = Vector256.FusedMultiplyAdd(w, Vector256.Load(x1 + i), a1);
            a2 = Vector256.FusedMultiplyAdd(w, Vector256.Load(x2 + i), a2);
            a3 = Vector256.FusedMultiplyAdd(w, Vector256.Load(x3 + i), a3);
            a4 = Vector256.FusedMultiplyAdd(w, Vector256.Load(x4 + i), a4);
            a5 = Vector256.FusedMultiplyAdd(w, Vector256.Load(x5 + i), a5);
            a6 = Vector256.FusedMultiplyAdd(w, Vector256.Load(x6 + i), a6);
            a7 = Vector256.FusedMultiplyAdd(w, Vector256.Load(x7 + i), a7);
        }

        float s0 = Vector256.Sum(a0), s1 = Vector256.Sum(a1), s2 = Vector256.Sum(a2), s3 = Vector256.Sum(a3), s4 = Vector256.Sum(a4), s5 = Vector256.Sum(a5), s6 = Vector256.Sum(a6), s7 = Vector256.Sum(a7);
        for (; i < k; i++)
        {
            var w = row[i];
            s0 += w * x0[i];
            s1 += w * x1[i];
            s2 += w * x2[i];
            s3 += w * x3[i];
            s4 += w * x4[i];
            s5 += w * x5[i];
            s6 += w * x6[i];
            s7 += w * x7[i];
        }

        output[0] = s0;
        output[1 * outStride] = s1;
        output[2 * outStride] = s2;
        output[3 * outStride] = s3;
        output[4 * outStride] = s4;
        output[5 * outStride] = s5;
        output[6 * outStride] = s6;
        output[7 * outStride] = s7;
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
