using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// Activations quantized for integer dot products, like llama.cpp's <c>q8_0</c> activation blocks: per 32 values one float
/// scale d = max|x|/127 and 32 int8 codes, plus the block sums the weight formats need to undo their code offsets and mins
/// (d·Σq per block, and per half block for Q6_K's 16-value scales). Made once per activation value and shared by every
/// weight that consumes it.
/// </summary>
internal sealed unsafe class QuantizedActivations : IDisposable
{
    public const int BlockSize = 32;

    private readonly NativeBuffer _codes;
    private readonly NativeBuffer _scales;
    private readonly NativeBuffer _sums;
    private readonly NativeBuffer _halfSums;

    public QuantizedActivations(int rows, int columns)
    {
        Columns = columns;
        BlocksPerRow = columns / BlockSize;
        _codes = new NativeBuffer((long)rows * columns);
        _scales = new NativeBuffer((long)rows * BlocksPerRow * sizeof(float));
        _sums = new NativeBuffer((long)rows * BlocksPerRow * sizeof(float));
        _halfSums = new NativeBuffer((long)rows * BlocksPerRow * 2 * sizeof(float));
    }

    public int Columns { get; }

    public int BlocksPerRow { get; }

    /// <summary>The tensor version these codes were made from (−1: never).</summary>
    public int SourceVersion { get; set; } = -1;

    public int SourceRows { get; set; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public sbyte* Codes(int row) => (sbyte*)_codes.Pointer + (long)row * Columns;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* Scales(int row) => (float*)_scales.Pointer + (long)row * BlocksPerRow;

    /// <summary>d·Σq of each block: the block's sum of dequantized activations.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* ScaledSums(int row) => (float*)_sums.Pointer + (long)row * BlocksPerRow;

    /// <summary>d·Σq of each 16-value half block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float* ScaledHalfSums(int row) => (float*)_halfSums.Pointer + (long)row * BlocksPerRow * 2;

    /// <summary>Quantizes one row of <see cref="Columns"/> floats.</summary>
    public void QuantizeRow(float* source, int row, SimdLevel level)
    {
        var codes = Codes(row);
        var scales = Scales(row);
        var sums = ScaledSums(row);
        var halfSums = ScaledHalfSums(row);
        for (var b = 0; b < BlocksPerRow; b++)
        {
            var x = source + b * BlockSize;
            var q = codes + b * BlockSize;
            int sumLow, sumHigh;
            float d;
            if (level != SimdLevel.Portable && Avx2.IsSupported)
            {
                var v0 = Avx.LoadVector256(x);
                var v1 = Avx.LoadVector256(x + 8);
                var v2 = Avx.LoadVector256(x + 16);
                var v3 = Avx.LoadVector256(x + 24);
                var max = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
                var amax = MaxAcross(max);
                d = amax / 127f;
                var id = Vector256.Create(amax > 0 ? 127f / amax : 0f);
                // cvtps2dq rounds to nearest even, as llama.cpp's AVX quantize_row_q8_0 does.
                var i0 = Avx.ConvertToVector256Int32(v0 * id);
                var i1 = Avx.ConvertToVector256Int32(v1 * id);
                var i2 = Avx.ConvertToVector256Int32(v2 * id);
                var i3 = Avx.ConvertToVector256Int32(v3 * id);
                sumLow = Vector256.Sum(i0 + i1);
                sumHigh = Vector256.Sum(i2 + i3);
                // packs interleave 128-bit lanes; the permute restores element order.
                var packed = Avx2.PackSignedSaturate(Avx2.PackSignedSaturate(i0, i1), Avx2.PackSignedSaturate(i2, i3));
                var ordered = Avx2.PermuteVar8x32(packed.AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7));
                ordered.AsSByte().Store(q);
            }
            else
            {
                var amax = 0f;
                for (var i = 0; i < BlockSize; i++)
                {
                    amax = MathF.Max(amax, MathF.Abs(x[i]));
                }

                d = amax / 127f;
                var id = amax > 0 ? 127f / amax : 0f;
                sumLow = sumHigh = 0;
                for (var i = 0; i < BlockSize; i++)
                {
                    var v = (int)MathF.Round(x[i] * id, MidpointRounding.ToEven);
                    q[i] = (sbyte)v;
                    if (i < 16)
                    {
                        sumLow += v;
                    }
                    else
                    {
                        sumHigh += v;
                    }
                }
            }

            scales[b] = d;
            sums[b] = d * (sumLow + sumHigh);
            halfSums[2 * b] = d * sumLow;
            halfSums[2 * b + 1] = d * sumHigh;
        }
    }

    private static float MaxAcross(Vector256<float> v)
    {
        var m = Vector128.Max(v.GetLower(), v.GetUpper());
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(2, 3, 0, 1)));
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(1, 0, 3, 2)));
        return m.ToScalar();
    }

    public void Dispose()
    {
        _codes.Dispose();
        _scales.Dispose();
        _sums.Dispose();
        _halfSums.Dispose();
    }
}
