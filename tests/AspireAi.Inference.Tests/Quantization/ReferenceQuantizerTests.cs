using System.Buffers.Binary;
using System.Runtime.InteropServices;
using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Models.Quantization;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Quantization;

/// <summary>
/// The Q8_0/Q4_0 quantizers against blocks worked out by hand, against llama.cpp's own output (the shared Q8_0 and Q4_0
/// stories15M files were made by <c>llama-quantize</c> from the shared F32 file, through the same reference functions),
/// and against properties every quantizer must have.
/// </summary>
public sealed class ReferenceQuantizerTests
{
    [Fact]
    public void Q8_0_block_by_hand()
    {
        // amax 127 gives d = 1 exactly (fp16 0x3C00), so each code is round(x), halves away from zero as C's roundf.
        var x = new float[32];
        float[] head = [127f, -2.5f, 2.5f, 0.5f, -0.5f, 1.49f, -126.6f, 0.49f, -0f];
        head.CopyTo(x, 0);
        var block = new byte[34];
        ReferenceQuantizer.QuantizeRowQ8_0(x, block);

        Assert.Equal(0x3C00, BinaryPrimitives.ReadUInt16LittleEndian(block));
        sbyte[] expected = [127, -3, 3, 1, -1, 1, -127, 0, 0];
        Assert.Equal(expected, MemoryMarshal.Cast<byte, sbyte>(block.AsSpan(2, 9)).ToArray());
        Assert.All(block[11..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void Q8_0_scale_is_rounded_to_fp16_but_codes_use_the_exact_scale()
    {
        // amax 16: d = 16/127 = 0.12598425 (float) → fp16 0x3008 = 0.1259765625; id = 1/d = 7.9375.
        var x = Enumerable.Range(0, 32).Select(j => (float)(j - 16)).ToArray();
        var block = new byte[34];
        ReferenceQuantizer.QuantizeRowQ8_0(x, block);

        Assert.Equal(0x3008, BinaryPrimitives.ReadUInt16LittleEndian(block));
        var codes = MemoryMarshal.Cast<byte, sbyte>(block.AsSpan(2)).ToArray();
        // -16·7.9375 = -127, -15·7.9375 = -119.06 → -119, 1·7.9375 → 8, 2·7.9375 = 15.875 → 16, 15·7.9375 = 119.06 → 119.
        Assert.Equal((sbyte)-127, codes[0]);
        Assert.Equal((sbyte)-119, codes[1]);
        Assert.Equal((sbyte)0, codes[16]);
        Assert.Equal((sbyte)8, codes[17]);
        Assert.Equal((sbyte)16, codes[18]);
        Assert.Equal((sbyte)119, codes[31]);
    }

    [Fact]
    public void Q4_0_block_by_hand()
    {
        // The largest magnitude is -8 (sign kept), so d = -8/-8 = 1 and code = min(15, trunc(x + 8.5)).
        var x = new float[32];
        float[] low = [-8f, 7f, 7.4f, 7.6f, 0f, -0.5f, 0.49f, -0.51f, 3.5f, -3.5f];
        low.CopyTo(x, 0);
        x[16] = 1f;
        x[17] = -1f;
        x[31] = 7.9f;
        var block = new byte[18];
        ReferenceQuantizer.QuantizeRowQ4_0(x, block);

        Assert.Equal(0x3C00, BinaryPrimitives.ReadUInt16LittleEndian(block));
        int[] lowCodes = [0, 15, 15, 15, 8, 8, 8, 7, 12, 5];
        for (var j = 0; j < lowCodes.Length; j++)
        {
            Assert.Equal(lowCodes[j], block[2 + j] & 0xF);
        }

        // Value j + 16 is byte j's high nibble: 1 → 9, -1 → 7, 0 → 8, 7.9 → trunc(16.4) = 16 → clamped to 15.
        Assert.Equal(9, block[2] >> 4);
        Assert.Equal(7, block[3] >> 4);
        Assert.Equal(8, block[4] >> 4);
        Assert.Equal(15, block[2 + 15] >> 4);
    }

    [Fact]
    public void Q4_0_keeps_the_sign_of_the_first_largest_value()
    {
        // 4 and -4 tie; the first wins: max = 4, d = 4/-8 = -0.5 (fp16 0xB800), id = -2.
        var x = new float[32];
        x[0] = 4f;
        x[1] = -4f;
        x[2] = 1f;
        var block = new byte[18];
        ReferenceQuantizer.QuantizeRowQ4_0(x, block);

        Assert.Equal(0xB800, BinaryPrimitives.ReadUInt16LittleEndian(block));
        // 4·-2 + 8.5 = 0.5 → 0; -4·-2 + 8.5 = 16.5 → 15; 1·-2 + 8.5 = 6.5 → 6; 0 → 8.
        Assert.Equal(new[] { 0, 15, 6, 8 }, block[2..6].Select(b => b & 0xF));
    }

    [Fact]
    public void All_zero_blocks_have_zero_scale_and_middle_codes()
    {
        // Q4_0's d is 0 / -8 = -0, which fp16 keeps: llama.cpp writes 0x8000 for such a block.
        var x = new float[64];
        var q8 = new byte[68];
        var q4 = new byte[36];
        ReferenceQuantizer.QuantizeRowQ8_0(x, q8);
        ReferenceQuantizer.QuantizeRowQ4_0(x, q4);
        Assert.All(q8, b => Assert.Equal(0, b));
        Assert.Equal(0x8000, BinaryPrimitives.ReadUInt16LittleEndian(q4));
        Assert.All(q4[2..18], b => Assert.Equal(0x88, b));
        Assert.Equal(0x8000, BinaryPrimitives.ReadUInt16LittleEndian(q4.AsSpan(18)));
    }

    [Theory]
    [InlineData("stories15M-q8_0.gguf")]
    [InlineData("stories15M-q4_0.gguf")]
    public void Equals_llama_quantize_on_every_tensor_of_the_shared_model(string quantizedFile)
    {
        using var f32 = GgufFile.Open(TestPaths.SharedModel("stories15M-f32.gguf"));
        using var quantized = GgufFile.Open(TestPaths.SharedModel(quantizedFile));
        var compared = 0;
        foreach (var info in quantized.Tensors.Where(t => t.Type is GgmlType.Q8_0 or GgmlType.Q4_0))
        {
            Assert.True(f32.TryGetTensor(info.Name, out var source));
            Assert.True(quantized.TryGetTensor(info.Name, out var expected));
            var floats = MemoryMarshal.Cast<byte, float>(source.Bytes);
            var rowLength = (int)info.Shape[0];
            var rowBytes = (int)GgmlTypeInfo.RowBytes(info.Type, rowLength);
            var actual = new byte[expected.ByteLength];
            for (var r = 0; r < actual.Length / rowBytes; r++)
            {
                ReferenceQuantizer.QuantizeRow(info.Type, floats.Slice(r * rowLength, rowLength), actual.AsSpan(r * rowBytes, rowBytes));
            }

            Assert.True(expected.Bytes.SequenceEqual(actual), $"{quantizedFile}: tensor '{info.Name}' ({info.Type}) differs from llama-quantize's");
            compared++;
        }

        Assert.Equal(43, compared);
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 1)]
    [InlineData(GgmlType.Q8_0, 1000)]
    [InlineData(GgmlType.Q4_0, 1)]
    [InlineData(GgmlType.Q4_0, 1000)]
    public void Dequantize_then_requantize_gives_the_same_blocks_and_errors_stay_within_a_step(GgmlType type, float scale)
    {
        var random = new Random(3);
        for (var trial = 0; trial < 50; trial++)
        {
            var x = Enumerable.Range(0, 32 * 8).Select(_ => (float)(random.NextDouble() * 2 - 1) * scale).ToArray();
            if (trial % 5 == 0)
            {
                x[random.Next(x.Length)] *= 40; // an outlier block
            }

            var rowBytes = (int)GgmlTypeInfo.RowBytes(type, x.Length);
            var first = new byte[rowBytes];
            ReferenceQuantizer.QuantizeRow(type, x, first);
            var restored = Dequantize(type, first);

            for (var b = 0; b < x.Length / 32; b++)
            {
                var block = x.AsSpan(b * 32, 32).ToArray();
                var amax = block.Max(MathF.Abs);
                // One quantization step (half a step for Q8_0's rounding; a whole one for Q4_0's clamp at +7),
                // plus the fp16 rounding of the scale applied to the largest code.
                var step = type == GgmlType.Q8_0 ? amax / 127 * 0.5f : amax / 8;
                var tolerance = step + amax * 1e-3f;
                for (var j = 0; j < 32; j++)
                {
                    Assert.True(MathF.Abs(block[j] - restored[b * 32 + j]) <= tolerance,
                        $"{type} trial {trial}: x = {block[j]}, restored {restored[b * 32 + j]}, tolerance {tolerance}");
                }
            }

            var second = new byte[rowBytes];
            ReferenceQuantizer.QuantizeRow(type, restored, second);
            Assert.Equal(first, second);
        }
    }

    [Fact]
    public void Refuses_rows_that_are_not_whole_blocks()
    {
        Assert.Throws<ArgumentException>(() => ReferenceQuantizer.QuantizeRowQ8_0(new float[48], new byte[34]));
        Assert.Throws<ArgumentException>(() => ReferenceQuantizer.QuantizeRowQ4_0(new float[32], new byte[34]));
        Assert.Throws<ArgumentOutOfRangeException>(() => ReferenceQuantizer.QuantizeRow(GgmlType.Q6_K, new float[256], new byte[210]));
    }

    /// <summary>ggml's dequantize_row_q8_0 / dequantize_row_q4_0, written out plainly.</summary>
    private static float[] Dequantize(GgmlType type, byte[] row)
    {
        var blockBytes = type == GgmlType.Q8_0 ? 34 : 18;
        var values = new float[row.Length / blockBytes * 32];
        for (var b = 0; b < row.Length / blockBytes; b++)
        {
            var block = row.AsSpan(b * blockBytes, blockBytes);
            var d = (float)BinaryPrimitives.ReadHalfLittleEndian(block);
            for (var j = 0; j < 32; j++)
            {
                values[b * 32 + j] = type == GgmlType.Q8_0
                    ? (sbyte)block[2 + j] * d
                    : ((j < 16 ? block[2 + j] & 0xF : block[2 + j - 16] >> 4) - 8) * d;
            }
        }

        return values;
    }
}
