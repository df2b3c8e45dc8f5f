using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Synthetic;

namespace AspireAi.Inference.Tests.Support;

/// <summary>
/// Test-side ggml block code, written plainly from llama.cpp's <c>ggml-common.h</c> layouts and <c>dequantize_row_*</c>
/// formulas, independent of the engine: random valid blocks, and dequantization to float64.
/// </summary>
public static class GgmlReference
{
    public static readonly GgmlType[] AllTypes =
    [
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
    ];

    /// <summary>Random bytes of a [rows × columns] tensor: every code pattern, scales of a realistic magnitude.</summary>
    public static byte[] RandomTensor(GgmlType type, int rows, int columns, Random random, double scale = 0.05)
    {
        var blockSize = GgmlTypeInfo.BlockSize(type);
        var blockBytes = GgmlTypeInfo.BlockBytes(type);
        var blocks = rows * (columns / blockSize);
        var data = new byte[blocks * blockBytes];
        for (var i = 0; i < blocks; i++)
        {
            var b = data.AsSpan(i * blockBytes, blockBytes);
            switch (type)
            {
                case GgmlType.F32:
                    BitConverter.TryWriteBytes(b, (float)(Normal(random) * scale));
                    break;
                case GgmlType.F16:
                    BitConverter.TryWriteBytes(b, (Half)(Normal(random) * scale));
                    break;
                case GgmlType.BF16:
                    BitConverter.TryWriteBytes(b, (ushort)(BitConverter.SingleToInt32Bits((float)(Normal(random) * scale)) >> 16));
                    break;
                default:
                    random.NextBytes(b);
                    // The random input side may come from the engine; the dequantization below stays independent of it.
                    RandomWeights.WriteBlockScales(type, b, random, scale);
                    break;
            }
        }

        return data;
    }

    /// <summary>Dequantizes a whole tensor, row-major [rows × columns].</summary>
    public static double[] Dequantize(GgmlType type, byte[] data, int rows, int columns)
    {
        var blockSize = GgmlTypeInfo.BlockSize(type);
        var blockBytes = GgmlTypeInfo.BlockBytes(type);
        var result = new double[rows * columns];
        for (var i = 0; i < rows * columns / blockSize; i++)
        {
            DequantizeBlock(type, data.AsSpan(i * blockBytes, blockBytes), result.AsSpan(i * blockSize, blockSize));
        }

        return result;
    }

    private static double F16(ReadOnlySpan<byte> b) => (double)BitConverter.ToHalf(b);

    private static void DequantizeBlock(GgmlType type, ReadOnlySpan<byte> b, Span<double> y)
    {
        switch (type)
        {
            case GgmlType.F32:
                y[0] = BitConverter.ToSingle(b);
                break;
            case GgmlType.F16:
                y[0] = F16(b);
                break;
            case GgmlType.BF16:
                y[0] = BitConverter.Int32BitsToSingle(BitConverter.ToUInt16(b) << 16);
                break;
            case GgmlType.Q8_0:
                for (var j = 0; j < 32; j++)
                {
                    y[j] = F16(b) * (sbyte)b[2 + j];
                }

                break;
            case GgmlType.Q4_0:
                for (var j = 0; j < 16; j++)
                {
                    y[j] = F16(b) * ((b[2 + j] & 0x0F) - 8);
                    y[j + 16] = F16(b) * ((b[2 + j] >> 4) - 8);
                }

                break;
            case GgmlType.Q5_0:
            {
                var qh = BitConverter.ToUInt32(b[2..]);
                for (var j = 0; j < 16; j++)
                {
                    var xh0 = (int)((qh >> j) << 4) & 0x10;
                    var xh1 = (int)(qh >> (j + 12)) & 0x10;
                    y[j] = F16(b) * (((b[6 + j] & 0x0F) | xh0) - 16);
                    y[j + 16] = F16(b) * (((b[6 + j] >> 4) | xh1) - 16);
                }

                break;
            }

            case GgmlType.Q4_K:
            case GgmlType.Q5_K:
            {
                var d = F16(b);
                var min = F16(b[2..]);
                var scales = b.Slice(4, 12);
                var qh = type == GgmlType.Q5_K ? b.Slice(16, 32) : default;
                var q = type == GgmlType.Q5_K ? b.Slice(48, 128) : b.Slice(16, 128);
                var yi = 0;
                var u1 = 1;
                var u2 = 2;
                for (int j = 0, s = 0; j < 256; j += 64, s += 2)
                {
                    var (sc1, m1) = ScaleMin(s, scales);
                    var (sc2, m2) = ScaleMin(s + 1, scales);
                    for (var l = 0; l < 32; l++)
                    {
                        var high = type == GgmlType.Q5_K && (qh[l] & u1) != 0 ? 16 : 0;
                        y[yi++] = d * sc1 * ((q[l] & 0xF) + high) - min * m1;
                    }

                    for (var l = 0; l < 32; l++)
                    {
                        var high = type == GgmlType.Q5_K && (qh[l] & u2) != 0 ? 16 : 0;
                        y[yi++] = d * sc2 * ((q[l] >> 4) + high) - min * m2;
                    }

                    q = q[32..];
                    u1 <<= 2;
                    u2 <<= 2;
                }

                break;
            }

            case GgmlType.Q6_K:
            {
                var d = F16(b[208..]);
                for (var n = 0; n < 2; n++)
                {
                    var ql = b.Slice(n * 64, 64);
                    var qh = b.Slice(128 + n * 32, 32);
                    var sc = b.Slice(192 + n * 8, 8);
                    var yo = y[(n * 128)..];
                    for (var l = 0; l < 32; l++)
                    {
                        var i = l / 16;
                        var q1 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
                        var q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
                        var q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                        var q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                        yo[l] = d * (sbyte)sc[i] * q1;
                        yo[l + 32] = d * (sbyte)sc[i + 2] * q2;
                        yo[l + 64] = d * (sbyte)sc[i + 4] * q3;
                        yo[l + 96] = d * (sbyte)sc[i + 6] * q4;
                    }
                }

                break;
            }

            default:
                throw new NotSupportedException(type.ToString());
        }
    }

    private static (int Scale, int Min) ScaleMin(int j, ReadOnlySpan<byte> q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    public static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
