using System.Buffers.Binary;

namespace AspireAi.Inference.Models.Quantization;

/// <summary>
/// Float rows to ggml's Q8_0 and Q4_0 blocks, bit for bit as llama.cpp's reference quantizers
/// (<c>quantize_row_q8_0_ref</c> / <c>quantize_row_q4_0_ref</c> in <c>ggml-quants.c</c>): the same float32 arithmetic in
/// the same order, the scale rounded to fp16 with round-to-nearest-even as <c>GGML_FP32_TO_FP16</c> does. Written here
/// because no .NET package produces ggml blocks; the tests pin it against hand-computed blocks.
/// </summary>
public static class ReferenceQuantizer
{
    /// <summary>Weights per Q8_0/Q4_0 block (ggml's <c>QK8_0</c>, <c>QK4_0</c>).</summary>
    public const int BlockSize = 32;

    /// <summary>Whether <paramref name="type"/> is a type this class writes.</summary>
    public static bool CanQuantizeTo(GgmlType type) => type is GgmlType.Q8_0 or GgmlType.Q4_0;

    /// <summary>Quantizes one row (a multiple of 32 values) into <paramref name="destination"/> (the type's row bytes).</summary>
    public static void QuantizeRow(GgmlType type, ReadOnlySpan<float> row, Span<byte> destination)
    {
        switch (type)
        {
            case GgmlType.Q8_0:
                QuantizeRowQ8_0(row, destination);
                break;
            case GgmlType.Q4_0:
                QuantizeRowQ4_0(row, destination);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "Only Q8_0 and Q4_0 can be produced on load.");
        }
    }

    /// <summary>Block: fp16 d = amax / 127, then 32 × int8 round(x / d) (half away from zero, as C's <c>roundf</c>).</summary>
    public static void QuantizeRowQ8_0(ReadOnlySpan<float> row, Span<byte> destination)
    {
        var blocks = CheckGeometry(row, destination, GgmlType.Q8_0);
        for (var b = 0; b < blocks; b++)
        {
            var x = row.Slice(b * BlockSize, BlockSize);
            var block = destination.Slice(b * 34, 34);
            var amax = 0f;
            foreach (var v in x)
            {
                amax = MathF.Max(amax, MathF.Abs(v));
            }

            var d = amax / 127;
            var id = d != 0 ? 1.0f / d : 0.0f;
            BinaryPrimitives.WriteHalfLittleEndian(block, (Half)d);
            for (var j = 0; j < BlockSize; j++)
            {
                block[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
            }
        }
    }

    /// <summary>
    /// Block: fp16 d = (the value of largest magnitude, sign kept) / −8, then 32 × 4-bit codes min(15, trunc(x / d + 8.5)),
    /// value j in the low nibble of byte j and value j + 16 in its high nibble.
    /// </summary>
    public static void QuantizeRowQ4_0(ReadOnlySpan<float> row, Span<byte> destination)
    {
        var blocks = CheckGeometry(row, destination, GgmlType.Q4_0);
        for (var b = 0; b < blocks; b++)
        {
            var x = row.Slice(b * BlockSize, BlockSize);
            var block = destination.Slice(b * 18, 18);
            var amax = 0f;
            var max = 0f;
            foreach (var v in x)
            {
                // Strictly greater: the first of equal magnitudes wins, as in the reference loop.
                if (amax < MathF.Abs(v))
                {
                    amax = MathF.Abs(v);
                    max = v;
                }
            }

            var d = max / -8;
            var id = d != 0 ? 1.0f / d : 0.0f;
            BinaryPrimitives.WriteHalfLittleEndian(block, (Half)d);
            for (var j = 0; j < BlockSize / 2; j++)
            {
                var low = Code(x[j] * id);
                var high = Code(x[BlockSize / 2 + j] * id);
                block[2 + j] = (byte)(low | (high << 4));
            }
        }

        // (int8_t)(v + 8.5f) truncates toward zero; the product is within [-8, 8] so the cast never wraps.
        static int Code(float scaled) => Math.Min(15, (int)(sbyte)(scaled + 8.5f));
    }

    private static int CheckGeometry(ReadOnlySpan<float> row, Span<byte> destination, GgmlType type)
    {
        if (row.Length % BlockSize != 0)
        {
            throw new ArgumentException($"Row length {row.Length} is not a multiple of {type}'s block size {BlockSize}.", nameof(row));
        }

        var bytes = GgmlTypeInfo.RowBytes(type, row.Length);
        if (destination.Length != bytes)
        {
            throw new ArgumentException($"A {type} row of {row.Length} values takes {bytes} bytes, not {destination.Length}.", nameof(destination));
        }

        return row.Length / BlockSize;
    }
}
