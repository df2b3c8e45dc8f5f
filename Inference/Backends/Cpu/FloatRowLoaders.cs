using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>Loads float weights 16, 8 or 1 at a time, widening F16/BF16 in registers (the weight stays 2 bytes in memory).</summary>
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
