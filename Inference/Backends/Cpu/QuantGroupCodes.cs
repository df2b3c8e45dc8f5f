using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// How <see cref="QuantMatMulKernel"/> reads the codes of one block of a row group: 64-byte vector g holds codes 4g…4g+3 of
/// each of the 16 rows (dword r = row r). The 512-bit kernel loads it whole; the 256-bit kernel loads the half at
/// <c>block + 32·half</c> (rows 8·half…8·half+7).
/// </summary>
internal unsafe interface IGroupCodes
{
    /// <summary>Code width: 4, 5, 6 or 8 bits (how many int16 partial sums may add up without overflow).</summary>
    static abstract int Bits { get; }

    /// <summary>Scales per row and block: 1, or 2 for Q6_K (codes 0…15 and 16…31 of a block).</summary>
    static abstract int ScalesPerBlock { get; }

    /// <summary>Bytes of one block of one row group.</summary>
    static abstract int BlockBytes { get; }

    static abstract Vector256<byte> Load(byte* block, int g);

    static abstract Vector512<byte> Load512(byte* block, int g);
}

/// <summary>Q4_0 and Q4_K: vector p holds codes 4p… in its low nibbles and 16+4p… in its high nibbles.</summary>
internal readonly unsafe struct NibbleGroupCodes : IGroupCodes
{
    public static int Bits => 4;

    public static int ScalesPerBlock => 1;

    public static int BlockBytes => 4 * CpuWeight.GroupVectorBytes;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Load(byte* block, int g) => g < 4
        ? Avx.LoadVector256(block + g * CpuWeight.GroupVectorBytes) & Vector256.Create((byte)0x0F)
        : Avx2.ShiftRightLogical(Avx.LoadVector256(block + (g - 4) * CpuWeight.GroupVectorBytes).AsUInt16(), 4).AsByte() & Vector256.Create((byte)0x0F);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Load512(byte* block, int g) => g < 4
        ? Vector512.Load(block + g * CpuWeight.GroupVectorBytes) & Vector512.Create((byte)0x0F)
        : Avx512BW.ShiftRightLogical(Vector512.Load(block + (g - 4) * CpuWeight.GroupVectorBytes).AsUInt16(), 4).AsByte() & Vector512.Create((byte)0x0F);
}

/// <summary>One byte per code: Q5_0 and Q5_K (5-bit), Q6_K (6-bit), Q8_0 (signed).</summary>
internal interface IByteGroupCodes : IGroupCodes
{
    static int IGroupCodes.BlockBytes => 8 * CpuWeight.GroupVectorBytes;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe Vector256<byte> IGroupCodes.Load(byte* block, int g) => Avx.LoadVector256(block + g * CpuWeight.GroupVectorBytes);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static unsafe Vector512<byte> IGroupCodes.Load512(byte* block, int g) => Vector512.Load(block + g * CpuWeight.GroupVectorBytes);
}

internal readonly struct FiveBitGroupCodes : IByteGroupCodes
{
    public static int Bits => 5;

    public static int ScalesPerBlock => 1;
}

internal readonly struct SixBitGroupCodes : IByteGroupCodes
{
    public static int Bits => 6;

    public static int ScalesPerBlock => 2;
}

internal readonly struct SignedGroupCodes : IByteGroupCodes
{
    public static int Bits => 8;

    public static int ScalesPerBlock => 1;
}

/// <summary>
/// Folds one block's integer dot products (the rows of one token) into the float accumulator, undoing the code offset
/// (Q4_0, Q5_0, Q6_K) or the mins (Q4_K, Q5_K): value = scale · (code − offset) − min, so per block
/// Σ value · d·q = scale · (d · Σ code·q − offset · d·Σq) − min · d·Σq.
/// </summary>
internal unsafe interface IGroupCorrection
{
    static abstract bool HasMins { get; }

    static abstract Vector256<float> Accumulate(Vector256<float> acc, Vector256<int> dot, Vector256<float> scales, float* mins,
        float d, float scaledSum, Vector256<float> negativeOffset);

    static abstract Vector512<float> Accumulate(Vector512<float> acc, Vector512<int> dot, Vector512<float> scales, float* mins,
        float d, float scaledSum, Vector512<float> negativeOffset);
}

/// <summary>Q8_0: signed codes, no offset, no mins.</summary>
internal readonly unsafe struct NoCorrection : IGroupCorrection
{
    public static bool HasMins => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Accumulate(Vector256<float> acc, Vector256<int> dot, Vector256<float> scales, float* mins,
        float d, float scaledSum, Vector256<float> negativeOffset) =>
        Fma.MultiplyAdd(scales, Avx.ConvertToVector256Single(dot) * Vector256.Create(d), acc);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Accumulate(Vector512<float> acc, Vector512<int> dot, Vector512<float> scales, float* mins,
        float d, float scaledSum, Vector512<float> negativeOffset) =>
        Avx512F.FusedMultiplyAdd(scales, Avx512F.ConvertToVector512Single(dot) * Vector512.Create(d), acc);
}

internal readonly unsafe struct CodeOffset : IGroupCorrection
{
    public static bool HasMins => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Accumulate(Vector256<float> acc, Vector256<int> dot, Vector256<float> scales, float* mins,
        float d, float scaledSum, Vector256<float> negativeOffset) =>
        Fma.MultiplyAdd(scales, Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot), Vector256.Create(d), Vector256.Create(scaledSum) * negativeOffset), acc);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Accumulate(Vector512<float> acc, Vector512<int> dot, Vector512<float> scales, float* mins,
        float d, float scaledSum, Vector512<float> negativeOffset) =>
        Avx512F.FusedMultiplyAdd(scales,
            Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(dot), Vector512.Create(d), Vector512.Create(scaledSum) * negativeOffset), acc);
}

internal readonly unsafe struct BlockMins : IGroupCorrection
{
    public static bool HasMins => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Accumulate(Vector256<float> acc, Vector256<int> dot, Vector256<float> scales, float* mins,
        float d, float scaledSum, Vector256<float> negativeOffset) =>
        Fma.MultiplyAddNegated(Avx.LoadVector256(mins), Vector256.Create(scaledSum),
            Fma.MultiplyAdd(scales, Avx.ConvertToVector256Single(dot) * Vector256.Create(d), acc));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Accumulate(Vector512<float> acc, Vector512<int> dot, Vector512<float> scales, float* mins,
        float d, float scaledSum, Vector512<float> negativeOffset) =>
        Avx512F.FusedMultiplyAddNegated(Vector512.Load(mins), Vector512.Create(scaledSum),
            Avx512F.FusedMultiplyAdd(scales, Avx512F.ConvertToVector512Single(dot) * Vector512.Create(d), acc));
}
