using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>Small float loops shared by the element-wise operations (sum of squares, dot, scaled accumulate).</summary>
internal static unsafe class VectorMath
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(float* a, float* b, int n)
    {
        var i = 0;
        var sum = 0f;
        if (Vector256.IsHardwareAccelerated)
        {
            var acc = Vector256<float>.Zero;
            for (; i + 8 <= n; i += 8)
            {
                acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc);
            }

            sum = Vector256.Sum(acc);
        }

        for (; i < n; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
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
