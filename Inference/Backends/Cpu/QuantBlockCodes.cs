using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// How the 256-bit integer kernel loads one 32-code block of a weight and multiplies it with 32 int8 activations into eight
/// int32 partial sums. Implemented by structs so the JIT specialises the kernel per layout (no virtual call per block).
/// </summary>
internal unsafe interface IBlockCodes
{
    static abstract Vector256<byte> Load(byte* rowData, int block);

    static abstract Vector256<int> Dot(Vector256<byte> codes, Vector256<sbyte> activations);
}

/// <summary>
/// Unsigned codes below 64 (Q6_K): <c>vpmaddubsw</c> (u8 × s8 → pairs of int16, at most 2·63·127 = 16,002, so never saturating)
/// then <c>vpmaddwd</c> against ones. .NET 10 exposes no AVX-512 VNNI (<c>vpdpbusd</c>) and this CPU lacks the VEX AVX-VNNI,
/// so this two-instruction form is the fastest integer product available here.
/// </summary>
internal readonly struct SmallUnsignedDot
{
    private static readonly Vector256<short> Ones = Vector256.Create((short)1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Dot(Vector256<byte> codes, Vector256<sbyte> activations) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(codes, activations), Ones);
}

internal readonly unsafe struct ByteCodes : IBlockCodes
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load(byte* rowData, int block) => Avx.LoadVector256(rowData + block * 32);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Dot(Vector256<byte> codes, Vector256<sbyte> activations) => SmallUnsignedDot.Dot(codes, activations);
}

/// <summary>
/// Signed int8 codes (Q8_0): u8 × s8 would saturate, so multiply |w| by a carrying w's sign (llama.cpp's sign trick):
/// each int16 pair is at most 2·128·127 = 32,512.
/// </summary>
internal readonly unsafe struct SignedByteCodes : IBlockCodes
{
    private static readonly Vector256<short> Ones = Vector256.Create((short)1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load(byte* rowData, int block) => Avx.LoadVector256(rowData + block * 32);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Dot(Vector256<byte> codes, Vector256<sbyte> activations)
    {
        var w = codes.AsSByte();
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(activations, w)), Ones);
    }
}

/// <summary>How the kernel turns a block's weight scale(s) into the scale of each of its eight int32 lanes.</summary>
internal unsafe interface IBlockScales
{
    static abstract int PerBlock { get; }

    static abstract Vector256<float> Load(float* rowScales, int block);
}

internal readonly unsafe struct OneScale : IBlockScales
{
    public static int PerBlock => 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(float* rowScales, int block) => Vector256.Create(rowScales[block]);
}

/// <summary>Q6_K: lanes 0–3 hold values 0–15 (first scale), lanes 4–7 values 16–31 (second scale).</summary>
internal readonly unsafe struct HalfBlockScales : IBlockScales
{
    public static int PerBlock => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(float* rowScales, int block) =>
        Vector256.Create(Vector128.Create(rowScales[2 * block]), Vector128.Create(rowScales[2 * block + 1]));
}
