using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// Loads float rows (weights, KV cache rows) 16, 8 or 1 at a time, widening F16/BF16/FP8 in registers (the row stays 2 or
/// 1 bytes a value in memory).
/// </summary>
internal unsafe interface IFloatRow
{
    /// <summary>True when the row already is float32, so widening it would only copy it.</summary>
    static abstract bool IsFloat32 { get; }

    /// <summary>Bytes of one value in memory.</summary>
    static abstract int ElementBytes { get; }

    static abstract Vector512<float> Load16(byte* row, int index);

    static abstract Vector256<float> Load8(byte* row, int index);

    static abstract float Load1(byte* row, int index);
}

internal readonly unsafe struct Float32Row : IFloatRow
{
    public static bool IsFloat32 => true;

    public static int ElementBytes => sizeof(float);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(byte* row, int index) => Vector512.Load((float*)row + index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* row, int index) => Vector256.Load((float*)row + index);

    public static float Load1(byte* row, int index) => ((float*)row)[index];
}

internal readonly unsafe struct BFloat16Row : IFloatRow
{
    public static bool IsFloat32 => false;

    public static int ElementBytes => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(byte* row, int index) =>
        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Vector256.Load((ushort*)row + index)), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* row, int index) =>
        Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(Vector128.Load((ushort*)row + index)), 16).AsSingle();

    public static float Load1(byte* row, int index) => BitConverter.Int32BitsToSingle(((ushort*)row)[index] << 16);

    /// <summary>The bf16 nearest to <paramref name="value"/>, ties to even (NaN stays NaN): what these rows hold of a float.</summary>
    public static ushort Round(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        return (bits & 0x7FFFFFFF) > 0x7F800000
            ? (ushort)((bits >> 16) | 0x40)
            : (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }
}

/// <summary>
/// IEEE half → float without F16C intrinsics (.NET 10 exposes none): move exponent and mantissa into float position and
/// multiply by 2^112 to rebias the exponent (this also scales half subnormals correctly); infinities and NaNs are patched.
/// </summary>
internal readonly unsafe struct Float16Row : IFloatRow
{
    public static bool IsFloat32 => false;

    public static int ElementBytes => 2;

    /// <summary>2^112 = 2^(127 − 15): the difference of the float and half exponent biases.</summary>
    private static readonly float Rebias = BitConverter.Int32BitsToSingle(0x77800000);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(byte* row, int index) =>
        Convert(Avx512F.ConvertToVector512UInt32(Vector256.Load((ushort*)row + index)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* row, int index) =>
        Convert(Avx2.ConvertToVector256Int32(Vector128.Load((ushort*)row + index)).AsUInt32());

    public static float Load1(byte* row, int index) => (float)BitConverter.UInt16BitsToHalf(((ushort*)row)[index]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Convert(Vector512<uint> h)
    {
        var magnitude = (h & Vector512.Create(0x7FFFu)) << 13;
        var value = magnitude.AsSingle() * Vector512.Create(Rebias);
        var special = Vector512.Equals(h & Vector512.Create(0x7C00u), Vector512.Create(0x7C00u));
        var patched = Vector512.ConditionalSelect(special.AsSingle(), (magnitude | Vector512.Create(0x7F800000u)).AsSingle(), value);
        return (patched.AsUInt32() | ((h & Vector512.Create(0x8000u)) << 16)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Convert(Vector256<uint> h)
    {
        var magnitude = (h & Vector256.Create(0x7FFFu)) << 13;
        var value = magnitude.AsSingle() * Vector256.Create(Rebias);
        var special = Vector256.Equals(h & Vector256.Create(0x7C00u), Vector256.Create(0x7C00u));
        var patched = Vector256.ConditionalSelect(special.AsSingle(), (magnitude | Vector256.Create(0x7F800000u)).AsSingle(), value);
        return (patched.AsUInt32() | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }
}

/// <summary>
/// OCP FP8 E4M3 (the "fn" variant NVIDIA's and vLLM's <c>fp8</c> KV caches use: 4 exponent bits of bias 7, 3 mantissa
/// bits, no infinities, one NaN pattern per sign, largest finite ±448) → float with integer operations: a normal code's
/// exponent and mantissa moved into float position and the exponent rebiased by adding 120 (127 − 7), a subnormal's
/// mantissa converted and scaled by 2^-9 (multiplying float denormals instead would take the CPU's slow assist path), the
/// NaN pattern patched, the sign put back. A 256-entry table read by gathers took twice as long as a float32 cache
/// (docs/performance.md, "The fp8 KV cache's accuracy").
/// </summary>
internal readonly unsafe struct Float8E4M3Row : IFloatRow
{
    public static bool IsFloat32 => false;

    public static int ElementBytes => 1;

    /// <summary>Largest finite E4M3 value; <see cref="Round"/> saturates to it (CUDA's __NV_SATFINITE), as vLLM stores.</summary>
    public const float MaxFinite = 448f;

    /// <summary>The E4M3 exponent bias (7) raised to float's (127), in float exponent position.</summary>
    private const uint Rebias = (127 - 7) << 23;

    /// <summary>A subnormal code's unit, 2^-9.</summary>
    private const float SubnormalUnit = 1f / 512;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load16(byte* row, int index) =>
        Convert(Avx512F.ConvertToVector512Int32(Vector128.Load(row + index)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* row, int index) =>
        Convert(Avx2.ConvertToVector256Int32(row + index));

    public static float Load1(byte* row, int index) => Decode(row[index]);

    /// <summary>The value of one code.</summary>
    public static float Decode(byte code)
    {
        var bits = code & 0x7F;
        var magnitude = bits == 0x7F ? float.NaN
            : bits < 8 ? bits * SubnormalUnit
            : BitConverter.UInt32BitsToSingle(((uint)bits << 20) + Rebias);
        return (code & 0x80) != 0 ? -magnitude : magnitude;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Convert(Vector512<int> code)
    {
        var bits = code & Vector512.Create(0x7F);
        var normal = ((bits << 20) + Vector512.Create((int)Rebias)).AsSingle();
        var subnormal = Vector512.ConvertToSingle(bits) * Vector512.Create(SubnormalUnit);
        var value = Vector512.ConditionalSelect(Vector512.LessThan(bits, Vector512.Create(8)).AsSingle(), subnormal, normal);
        value = Vector512.ConditionalSelect(Vector512.Equals(bits, Vector512.Create(0x7F)).AsSingle(), Vector512.Create(float.NaN), value);
        return (value.AsInt32() | ((code & Vector512.Create(0x80)) << 24)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Convert(Vector256<int> code)
    {
        var bits = code & Vector256.Create(0x7F);
        var normal = ((bits << 20) + Vector256.Create((int)Rebias)).AsSingle();
        var subnormal = Vector256.ConvertToSingle(bits) * Vector256.Create(SubnormalUnit);
        var value = Vector256.ConditionalSelect(Vector256.LessThan(bits, Vector256.Create(8)).AsSingle(), subnormal, normal);
        value = Vector256.ConditionalSelect(Vector256.Equals(bits, Vector256.Create(0x7F)).AsSingle(), Vector256.Create(float.NaN), value);
        return (value.AsInt32() | ((code & Vector256.Create(0x80)) << 24)).AsSingle();
    }

    /// <summary>
    /// The E4M3 code nearest to <paramref name="value"/>, ties to even, saturated to ±<see cref="MaxFinite"/> (NaN stays
    /// NaN): what these rows hold of a float.
    /// </summary>
    public static byte Round(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        var sign = (byte)((bits >> 24) & 0x80);
        var magnitudeBits = bits & 0x7FFFFFFF;
        var magnitude = BitConverter.UInt32BitsToSingle(magnitudeBits);
        if (float.IsNaN(value))
        {
            return (byte)(sign | 0x7F);
        }

        if (magnitude >= MaxFinite)
        {
            return (byte)(sign | 0x7E);
        }

        if (magnitude < 0.015625f)
        {
            // Subnormals (and zero): multiples of 2^-9, the rounding of a float to an integer ties to even; 8 of them is the
            // smallest normal, code 0x08, which this sum also gives.
            return (byte)(sign | (int)MathF.Round(magnitude * 512f, MidpointRounding.ToEven));
        }

        // Normals: keep 3 of the float's 23 mantissa bits, rounding to nearest even through the carry into the exponent.
        var rounded = (magnitudeBits + 0x7FFFF + ((magnitudeBits >> 20) & 1)) >> 20;
        var code = (int)rounded - ((127 - 7) << 3);  // rebias the exponent from float's 127 to E4M3's 7
        return (byte)(sign | Math.Min(code, 0x7E));
    }
}
