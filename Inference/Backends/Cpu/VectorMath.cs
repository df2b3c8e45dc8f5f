using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>Small float loops shared by the element-wise operations (sum of squares, dot, scaled accumulate).</summary>
internal static unsafe class VectorMath
{
    /// <summary>
    /// Σ a·b with four independent accumulators over 32-value strides: attention's 48-wide head dot products were a chain
    /// of six dependent FMAs each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot<TRow>(float* a, byte* b, int n)
        where TRow : IFloatRow
    {
        var i = 0;
        var sum = 0f;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
            for (; i + 32 <= n; i += 32)
            {
                acc0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), TRow.Load8(b, i), acc0);
                acc1 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 8), TRow.Load8(b, i + 8), acc1);
                acc2 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 16), TRow.Load8(b, i + 16), acc2);
                acc3 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 24), TRow.Load8(b, i + 24), acc3);
            }

            for (; i + 8 <= n; i += 8)
            {
                acc1 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), TRow.Load8(b, i), acc1);
            }

            sum = Vector256.Sum((acc0 + acc1) + (acc2 + acc3));
        }

        for (; i < n; i++)
        {
            sum += a[i] * TRow.Load1(b, i);
        }

        return sum;
    }

    /// <summary>
    /// y += Σ_r w[r] · x[r·stride …], y held in registers across the rows (attention's weighted sum of values): one
    /// <see cref="Axpy"/> per row sent y through memory every row, a store-to-load round trip per position and head. The
    /// additions per element run in row order as they did there.
    /// </summary>
    public static void WeightedRowSum<TRow>(float* w, byte* x, long stride, int rows, float* y, int n)
        where TRow : IFloatRow
    {
        var i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            // 64 columns per pass over the rows: a 128-wide head in two passes instead of four.
            for (; i + 64 <= n; i += 64)
            {
                var y0 = Vector512.Load(y + i);
                var y1 = Vector512.Load(y + i + 16);
                var y2 = Vector512.Load(y + i + 32);
                var y3 = Vector512.Load(y + i + 48);
                var row = x;
                for (var r = 0; r < rows; r++, row += stride)
                {
                    var weight = Vector512.Create(w[r]);
                    y0 = Vector512.FusedMultiplyAdd(weight, TRow.Load16(row, i), y0);
                    y1 = Vector512.FusedMultiplyAdd(weight, TRow.Load16(row, i + 16), y1);
                    y2 = Vector512.FusedMultiplyAdd(weight, TRow.Load16(row, i + 32), y2);
                    y3 = Vector512.FusedMultiplyAdd(weight, TRow.Load16(row, i + 48), y3);
                }

                y0.Store(y + i);
                y1.Store(y + i + 16);
                y2.Store(y + i + 32);
                y3.Store(y + i + 48);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 32 <= n; i += 32)
            {
                var y0 = Vector256.Load(y + i);
                var y1 = Vector256.Load(y + i + 8);
                var y2 = Vector256.Load(y + i + 16);
                var y3 = Vector256.Load(y + i + 24);
                var row = x;
                for (var r = 0; r < rows; r++, row += stride)
                {
                    var weight = Vector256.Create(w[r]);
                    y0 = Vector256.FusedMultiplyAdd(weight, TRow.Load8(row, i), y0);
                    y1 = Vector256.FusedMultiplyAdd(weight, TRow.Load8(row, i + 8), y1);
                    y2 = Vector256.FusedMultiplyAdd(weight, TRow.Load8(row, i + 16), y2);
                    y3 = Vector256.FusedMultiplyAdd(weight, TRow.Load8(row, i + 24), y3);
                }

                y0.Store(y + i);
                y1.Store(y + i + 8);
                y2.Store(y + i + 16);
                y3.Store(y + i + 24);
            }

            for (; i + 8 <= n; i += 8)
            {
                var y0 = Vector256.Load(y + i);
                var row = x;
                for (var r = 0; r < rows; r++, row += stride)
                {
                    y0 = Vector256.FusedMultiplyAdd(Vector256.Create(w[r]), TRow.Load8(row, i), y0);
                }

                y0.Store(y + i);
            }
        }

        for (; i < n; i++)
        {
            var sum = y[i];
            for (var r = 0; r < rows; r++)
            {
                sum += w[r] * TRow.Load1(x + r * stride, i);
            }

            y[i] = sum;
        }
    }

    /// <summary>
    /// scores[j] = scale · Σ q·k_j for the eight rows k_j = keys + j·stride (n a multiple of 8): attention's scores of eight
    /// consecutive positions of one head. The query is loaded once per chunk for all eight rows, and the eight sums leave
    /// their vectors through one shuffle tree (<see cref="Sum8"/>) where eight <see cref="Dot"/>s summed each on its own.
    /// </summary>
    public static void Dot8<TRow>(float* q, byte* keys, long stride, int n, float scale, float* scores)
        where TRow : IFloatRow
    {
        byte* k0 = keys, k1 = keys + 1 * stride, k2 = keys + 2 * stride, k3 = keys + 3 * stride, k4 = keys + 4 * stride, k5 = keys + 5 * stride, k6 = keys + 6 * stride, k7 = keys + 7 * stride;
        Vector256<float> sums;
        var i = 0;
        if (Vector512.IsHardwareAccelerated && n % 16 == 0)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (; i < n; i += 16)
            {
                var x = Vector512.Load(q + i);
                a0 = Vector512.FusedMultiplyAdd(x, TRow.Load16(k0, i), a0);
                a1 = Vector512.FusedMultiplyAdd(x, TRow.Load16(k1, i), a1);
                a2 = Vector512.FusedMultiplyAdd(x, TRow.Load16(k2, i), a2);
                a3 = Vector512.FusedMultiplyAdd(x, TRow.Load16(k3, i), a3);
                a4 = Vector512.FusedMultiplyAdd(x, TRow.Load16(k4, i), a4);
                a5 = Vector512.FusedMultiplyAdd(x, TRow.Load16(k5, i), a5);
                a6 = Vector512.FusedMultiplyAdd(x, TRow.Load16(k6, i), a6);
                a7 = Vector512.FusedMultiplyAdd(x, TRow.Load16(k7, i), a7);
            }

            sums = Sum8(a0.GetLower() + a0.GetUpper(), a4.GetLower() + a4.GetUpper(), a1.GetLower() + a1.GetUpper(), a5.GetLower() + a5.GetUpper(), a2.GetLower() + a2.GetUpper(), a6.GetLower() + a6.GetUpper(), a3.GetLower() + a3.GetUpper(), a7.GetLower() + a7.GetUpper());
        }
        else
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (; i < n; i += 8)
            {
                var x = Vector256.Load(q + i);
                a0 = Vector256.FusedMultiplyAdd(x, TRow.Load8(k0, i), a0);
                a1 = Vector256.FusedMultiplyAdd(x, TRow.Load8(k1, i), a1);
                a2 = Vector256.FusedMultiplyAdd(x, TRow.Load8(k2, i), a2);
                a3 = Vector256.FusedMultiplyAdd(x, TRow.Load8(k3, i), a3);
                a4 = Vector256.FusedMultiplyAdd(x, TRow.Load8(k4, i), a4);
                a5 = Vector256.FusedMultiplyAdd(x, TRow.Load8(k5, i), a5);
                a6 = Vector256.FusedMultiplyAdd(x, TRow.Load8(k6, i), a6);
                a7 = Vector256.FusedMultiplyAdd(x, TRow.Load8(k7, i), a7);
            }

            sums = Sum8(a0, a4, a1, a5, a2, a6, a3, a7);
        }

        (sums * scale).Store(scores);
    }

    /// <summary>
    /// Horizontal sums of 8 vectors in one: lane 4b + i holds the sum of input 2i + b. The 128-bit halves are paired across
    /// inputs (vperm2f128) and added, then the four lanes of each half (unpack, vshufps).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Sum8(
        Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3,
        Vector256<float> a4, Vector256<float> a5, Vector256<float> a6, Vector256<float> a7)
    {
        // h's half b: four partial sums of input b of its pair.
        var h01 = Halves(a0, a1);
        var h23 = Halves(a2, a3);
        var h45 = Halves(a4, a5);
        var h67 = Halves(a6, a7);
        var s = Avx.UnpackLow(h01, h23) + Avx.UnpackHigh(h01, h23);
        var t = Avx.UnpackLow(h45, h67) + Avx.UnpackHigh(h45, h67);
        return Avx.Shuffle(s, t, 0x44) + Avx.Shuffle(s, t, 0xEE);

        // [a's low + high half, b's low + high half].
        static Vector256<float> Halves(Vector256<float> a, Vector256<float> b) => Avx.Permute2x128(a, b, 0x20) + Avx.Permute2x128(a, b, 0x31);
    }

    /// <summary>
    /// <see cref="WeightedRowSum"/> for four weight vectors over the same rows (w + q·wStride into y + q·yStride, q &lt; 4):
    /// each 64-column chunk of a row is loaded once for the four, where four calls loaded it four times. Attention's value
    /// pass for four query tokens of a prompt; the same FMAs in the same order as four calls, so the same sums.
    /// </summary>
    public static void WeightedRowSum4<TRow>(float* w, long wStride, byte* x, long stride, int rows, float* y, long yStride, int n)
        where TRow : IFloatRow
    {
        float* w0 = w, w1 = w + wStride, w2 = w + 2 * wStride, w3 = w + 3 * wStride;
        float* y0 = y, y1 = y + yStride, y2 = y + 2 * yStride, y3 = y + 3 * yStride;
        var i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 64 <= n; i += 64)
            {
                var a00 = Vector512.Load(y0 + i + 0); var a01 = Vector512.Load(y0 + i + 16); var a02 = Vector512.Load(y0 + i + 32); var a03 = Vector512.Load(y0 + i + 48);
                var a10 = Vector512.Load(y1 + i + 0); var a11 = Vector512.Load(y1 + i + 16); var a12 = Vector512.Load(y1 + i + 32); var a13 = Vector512.Load(y1 + i + 48);
                var a20 = Vector512.Load(y2 + i + 0); var a21 = Vector512.Load(y2 + i + 16); var a22 = Vector512.Load(y2 + i + 32); var a23 = Vector512.Load(y2 + i + 48);
                var a30 = Vector512.Load(y3 + i + 0); var a31 = Vector512.Load(y3 + i + 16); var a32 = Vector512.Load(y3 + i + 32); var a33 = Vector512.Load(y3 + i + 48);
                var row = x;
                for (var r = 0; r < rows; r++, row += stride)
                {
                    var v0 = TRow.Load16(row, i + 0);
                    var v1 = TRow.Load16(row, i + 16);
                    var v2 = TRow.Load16(row, i + 32);
                    var v3 = TRow.Load16(row, i + 48);
                    var s0 = Vector512.Create(w0[r]);
                    a00 = Vector512.FusedMultiplyAdd(s0, v0, a00);
                    a01 = Vector512.FusedMultiplyAdd(s0, v1, a01);
                    a02 = Vector512.FusedMultiplyAdd(s0, v2, a02);
                    a03 = Vector512.FusedMultiplyAdd(s0, v3, a03);
                    var s1 = Vector512.Create(w1[r]);
                    a10 = Vector512.FusedMultiplyAdd(s1, v0, a10);
                    a11 = Vector512.FusedMultiplyAdd(s1, v1, a11);
                    a12 = Vector512.FusedMultiplyAdd(s1, v2, a12);
                    a13 = Vector512.FusedMultiplyAdd(s1, v3, a13);
                    var s2 = Vector512.Create(w2[r]);
                    a20 = Vector512.FusedMultiplyAdd(s2, v0, a20);
                    a21 = Vector512.FusedMultiplyAdd(s2, v1, a21);
                    a22 = Vector512.FusedMultiplyAdd(s2, v2, a22);
                    a23 = Vector512.FusedMultiplyAdd(s2, v3, a23);
                    var s3 = Vector512.Create(w3[r]);
                    a30 = Vector512.FusedMultiplyAdd(s3, v0, a30);
                    a31 = Vector512.FusedMultiplyAdd(s3, v1, a31);
                    a32 = Vector512.FusedMultiplyAdd(s3, v2, a32);
                    a33 = Vector512.FusedMultiplyAdd(s3, v3, a33);
                }

                a00.Store(y0 + i + 0); a01.Store(y0 + i + 16); a02.Store(y0 + i + 32); a03.Store(y0 + i + 48);
                a10.Store(y1 + i + 0); a11.Store(y1 + i + 16); a12.Store(y1 + i + 32); a13.Store(y1 + i + 48);
                a20.Store(y2 + i + 0); a21.Store(y2 + i + 16); a22.Store(y2 + i + 32); a23.Store(y2 + i + 48);
                a30.Store(y3 + i + 0); a31.Store(y3 + i + 16); a32.Store(y3 + i + 32); a33.Store(y3 + i + 48);
            }
        }

        if (i < n)
        {
            WeightedRowSum<TRow>(w0, x + i * TRow.ElementBytes, stride, rows, y0 + i, n - i);
            WeightedRowSum<TRow>(w1, x + i * TRow.ElementBytes, stride, rows, y1 + i, n - i);
            WeightedRowSum<TRow>(w2, x + i * TRow.ElementBytes, stride, rows, y2 + i, n - i);
            WeightedRowSum<TRow>(w3, x + i * TRow.ElementBytes, stride, rows, y3 + i, n - i);
        }
    }

    /// <summary>y += alpha · x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Axpy(float alpha, float* x, float* y, int n)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var a = Vector256.Create(alpha);
            for (; i + 8 <= n; i += 8)
            {
                Vector256.FusedMultiplyAdd(a, Vector256.Load(x + i), Vector256.Load(y + i)).Store(y + i);
            }
        }

        for (; i < n; i++)
        {
            y[i] += alpha * x[i];
        }
    }

    /// <summary>output = x · (1/√(mean(x²) + ε)) · weight over n values.</summary>
    public static void RmsNorm(float* x, float* weight, float epsilon, float* output, int n)
    {
        var scale = 1f / MathF.Sqrt(Dot<Float32Row>(x, (byte*)x, n) / n + epsilon);
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(scale);
            for (; i + 8 <= n; i += 8)
            {
                (Vector256.Load(x + i) * s * Vector256.Load(weight + i)).Store(output + i);
            }
        }

        for (; i < n; i++)
        {
            output[i] = x[i] * scale * weight[i];
        }
    }

    /// <summary>output = gate / (1 + e^(−gate)) · up.</summary>
    public static void SiluMul(float* gate, float* up, float* output, int n)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var one = Vector256.Create(1f);
            for (; i + 8 <= n; i += 8)
            {
                var g = Vector256.Load(gate + i);
                (g / (one + Vector256.Exp(-g)) * Vector256.Load(up + i)).Store(output + i);
            }
        }

        for (; i < n; i++)
        {
            var g = gate[i];
            output[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }
}
