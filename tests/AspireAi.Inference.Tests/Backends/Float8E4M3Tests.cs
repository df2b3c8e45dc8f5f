using AspireAi.Inference.Backends.Cpu;

namespace AspireAi.Inference.Tests.Backends;

/// <summary>
/// The fp8 KV cache's number format, OCP E4M3 ("fn": bias 7, 3 mantissa bits, no infinities, NaN = S.1111.111): the codes'
/// values, rounding to nearest with ties to even, saturation at ±448 as CUDA's __NV_SATFINITE conversion does.
/// </summary>
public sealed unsafe class Float8E4M3Tests
{
    [Fact]
    public void The_vector_loads_widen_every_code_as_the_scalar_decode_does()
    {
        // Load8 is AVX2 code, Load16 AVX-512: each is checked where the CPU kernels would use it (its SimdLevel).
        Assert.SkipUnless(SimdLevels.IsSupported(SimdLevel.Avx2), "the vector loads need AVX2, which this CPU lacks");
        var withLoad16 = SimdLevels.IsSupported(SimdLevel.Avx512);
        var codes = Enumerable.Range(0, 256).Select(c => (byte)c).ToArray();
        fixed (byte* row = codes)
        {
            for (var i = 0; i < 256; i += 16)
            {
                var eight = Float8E4M3Row.Load8(row, i + 8);
                for (var j = 0; j < 16; j++)
                {
                    Same(Float8E4M3Row.Decode(codes[i + j]), Float8E4M3Row.Load1(row, i + j));
                }

                if (withLoad16)
                {
                    var sixteen = Float8E4M3Row.Load16(row, i);
                    for (var j = 0; j < 16; j++)
                    {
                        Same(Float8E4M3Row.Decode(codes[i + j]), sixteen[j]);
                    }
                }

                for (var j = 0; j < 8; j++)
                {
                    Same(Float8E4M3Row.Decode(codes[i + 8 + j]), eight[j]);
                }
            }
        }
    }

    /// <summary>Bit for bit, except that any NaN matches any NaN (its sign and payload are not part of the format).</summary>
    private static void Same(float expected, float actual)
    {
        if (float.IsNaN(expected))
        {
            Assert.True(float.IsNaN(actual));
        }
        else
        {
            Assert.Equal(BitConverter.SingleToUInt32Bits(expected), BitConverter.SingleToUInt32Bits(actual));
        }
    }

    [Theory]
    [InlineData(0x00, 0f)]
    [InlineData(0x01, 0.001953125f)]   // smallest subnormal, 2^-9
    [InlineData(0x07, 0.013671875f)]   // largest subnormal, 7 · 2^-9
    [InlineData(0x08, 0.015625f)]      // smallest normal, 2^-6
    [InlineData(0x38, 1f)]
    [InlineData(0x3C, 1.5f)]
    [InlineData(0x7E, 448f)]           // largest finite
    [InlineData(0xB8, -1f)]
    [InlineData(0xFE, -448f)]
    public void Codes_decode_to_their_values_and_round_back(byte code, float value)
    {
        Assert.Equal(value, Float8E4M3Row.Decode(code));
        Assert.Equal(code, Float8E4M3Row.Round(value));
    }

    [Fact]
    public void The_nan_codes_decode_to_nan_and_nan_rounds_to_one_keeping_its_sign()
    {
        Assert.True(float.IsNaN(Float8E4M3Row.Decode(0x7F)));
        Assert.True(float.IsNaN(Float8E4M3Row.Decode(0xFF)));
        Assert.Equal(0x7F, Float8E4M3Row.Round(BitConverter.UInt32BitsToSingle(0x7FC00000)));
        Assert.Equal(0xFF, Float8E4M3Row.Round(BitConverter.UInt32BitsToSingle(0xFFC00000)));
    }

    [Theory]
    [InlineData(1.0625f, 0x38)]   // halfway between 1 and 1.125: to the even mantissa, 1
    [InlineData(1.1875f, 0x3A)]   // halfway between 1.125 and 1.25: to the even mantissa, 1.25
    [InlineData(1.07f, 0x39)]     // past the halfway point: up
    [InlineData(15.5f, 0x58)]     // halfway between 15 and 16: carries into the exponent, 16
    [InlineData(0.0029296875f, 0x02)] // halfway between subnormals 1 and 2 (· 2^-9): to even, 2
    [InlineData(0.0146484375f, 0x08)] // halfway between the largest subnormal and the smallest normal: to even, the normal
    [InlineData(460f, 0x7E)]      // beyond 448: saturates rather than overflowing to NaN
    [InlineData(1e30f, 0x7E)]
    [InlineData(float.PositiveInfinity, 0x7E)]
    [InlineData(float.NegativeInfinity, 0xFE)]
    [InlineData(-0f, 0x80)]
    [InlineData(1e-30f, 0x00)]
    public void Values_round_to_nearest_even_and_saturate(float value, int code) =>
        Assert.Equal((byte)code, Float8E4M3Row.Round(value));

    [Fact]
    public void Every_finite_code_is_the_nearest_to_its_own_value_and_rounding_is_monotonic()
    {
        var finite = Enumerable.Range(0, 256).Select(c => (byte)c).Where(c => !float.IsNaN(Float8E4M3Row.Decode(c))).ToArray();
        foreach (var code in finite.Where(c => c != 0x80))
        {
            Assert.Equal(code, Float8E4M3Row.Round(Float8E4M3Row.Decode(code)));
        }

        var previous = float.NegativeInfinity;
        for (var x = -500f; x <= 500f; x += 0.0137f)
        {
            var value = Float8E4M3Row.Decode(Float8E4M3Row.Round(x));
            Assert.True(value >= previous, $"{x} rounds to {value}, below {previous}");
            Assert.True(Math.Abs(value - Math.Clamp(x, -448f, 448f)) <= Math.Max(Math.Abs(x) / 16, 0.001953125f / 2), $"{x} rounds to {value}");
            previous = value;
        }
    }
}
