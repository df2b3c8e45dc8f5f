using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>Small float loops shared by the element-wise operations (sum of squares, dot, scaled accumulate).</summary>
internal static unsafe class VectorMath
{
    /// <summary>
    /// Σ a·b with four independent accumulators over 32-value strides: attention's 48-wide head dot products were a chain
    /// of six dependent FMAs each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(float* a, float* b, int n)
    {
        var i = 0;
        var sum = 0f;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
            for (; i + 32 <= n; i += 32)
            {
                acc0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc0);
                acc1 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), acc1);
                acc2 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 16), Vector256.Load(b + i + 16), acc2);
                acc3 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 24), Vector256.Load(b + i + 24), acc3);
            }

            for (; i + 8 <= n; i += 8)
            {
                acc1 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc1);
            }

            sum = Vector256.Sum((acc0 + acc1) + (acc2 + acc3));
        }

        for (; i < n; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
    }

    /// <summary>
    /// y += Σ_r w[r] · x[r·stride …], y held in registers across the rows (attention's weighted sum of values): one
    /// <see cref="Axpy"/> per row sent y through memory every row, a store-to-load round trip per position and head. The
    /// additions per element run in row order as they did there.
    /// </summary>
    public static void WeightedRowSum(float* w, float* x, long stride, int rows, float* y, int n)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 32 <= n; i += 32)
            {
                var y0 = Vector256.Load(y + i);
                var y1 = Vector256.Load(y + i + 8);
                var y2 = Vector256.Load(y + i + 16);
                var y3 = Vector256.Load(y + i + 24);
                var row = x + i;
                for (var r = 0; r < rows; r++, row += stride)
                {
                    var weight = Vector256.Create(w[r]);
                    y0 = Vector256.FusedMultiplyAdd(weight, Vector256.Load(row), y0);
                    y1 = Vector256.FusedMultiplyAdd(weight, Vector256.Load(row + 8), y1);
                    y2 = Vector256.FusedMultiplyAdd(weight, Vector256.Load(row + 16), y2);
                    y3 = Vector256.FusedMultiplyAdd(weight, Vector256.Load(row + 24), y3);
                }

                y0.Store(y + i);
                y1.Store(y + i + 8);
                y2.Store(y + i + 16);
                y3.Store(y + i + 24);
            }

            for (; i + 8 <= n; i += 8)
            {
                var y0 = Vector256.Load(y + i);
                var row = x + i;
                for (var r = 0; r < rows; r++, row += stride)
                {
                    y0 = Vector256.FusedMultiplyAdd(Vector256.Create(w[r]), Vector256.Load(row), y0);
                }

                y0.Store(y + i);
            }
        }

        for (; i < n; i++)
        {
            var sum = y[i];
            for (var r = 0; r < rows; r++)
            {
                sum += w[r] * x[r * stride + i];
            }

            y[i] = sum;
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
        var scale = 1f / MathF.Sqrt(Dot(x, x, n) / n + epsilon);
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
