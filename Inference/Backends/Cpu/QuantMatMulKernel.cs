using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>
/// The integer matmul over row-grouped weights (every quantized type; <see cref="CpuWeightLayout"/>): lane r of each vector
/// belongs to row r of a group, so one <c>vpmaddubsw</c> multiplies four codes of 16 rows (AVX-512; 8 with 256-bit
/// vectors) by the same four activations, broadcast; a block's partial products add up in int16 lanes, and one float FMA
/// per block applies the rows' scales. No horizontal sums and no per-row correction pass: a token's outputs come out as
/// one vector. (The row-by-row kernel this replaced needed a <c>vpmaddwd</c>, a convert, a scale product and a horizontal
/// sum per row and block, plus a correction dot product per row and token; single-threaded Q4_0 prefill went from ~3,000
/// to ~10,000 tokens/s, docs/performance.md.) Like llama.cpp's <c>q4_0_8x8</c> repack, in the form .NET 10's intrinsics
/// allow (no VNNI).
/// </summary>
internal static unsafe partial class QuantMatMulKernel
{
    // 16 tokens of int8 activations (16 × K bytes) stay in L1 while a thread sweeps its row groups.
    private const int TokenChunk = 16;

    /// <summary>Rows of a group one 256-bit vector covers.</summary>
    private const int HalfGroup = CpuWeight.GroupRows / 2;

    /// <summary>
    /// Computes rows [rowStart, rowEnd) of the output for every token; rowStart is a multiple of
    /// <see cref="CpuWeight.GroupRows"/>. <paramref name="wide"/>: 512-bit vectors (a whole group per instruction).
    /// </summary>
    public static void Run(CpuWeight weight, QuantizedActivations act, int tokens, float* output, int rowStart, int rowEnd, bool wide)
    {
        switch (weight.Layout)
        {
            case CpuWeightLayout.NibbleRowGroups when weight.HasMins:
                Groups<NibbleGroupCodes, BlockMins>(weight, act, tokens, output, rowStart, rowEnd, wide);
                break;
            case CpuWeightLayout.NibbleRowGroups:
                Groups<NibbleGroupCodes, CodeOffset>(weight, act, tokens, output, rowStart, rowEnd, wide);
                break;
            case CpuWeightLayout.ByteRowGroups when weight.ScalesPerBlock == 2:
                Groups<SixBitGroupCodes, CodeOffset>(weight, act, tokens, output, rowStart, rowEnd, wide);
                break;
            case CpuWeightLayout.ByteRowGroups when weight.HasMins:
                Groups<FiveBitGroupCodes, BlockMins>(weight, act, tokens, output, rowStart, rowEnd, wide);
                break;
            case CpuWeightLayout.ByteRowGroups:
                Groups<FiveBitGroupCodes, CodeOffset>(weight, act, tokens, output, rowStart, rowEnd, wide);
                break;
            case CpuWeightLayout.SignedByteRowGroups:
                Groups<SignedGroupCodes, NoCorrection>(weight, act, tokens, output, rowStart, rowEnd, wide);
                break;
            default:
                throw new InvalidOperationException($"{weight.Name}: layout {weight.Layout} is not quantized.");
        }
    }

    // The loops and tiles are compiled fully optimised on first call (AggressiveOptimization), not through tier 0 and
    // instrumented code: the tiles are too large to inline into these loops, and at tier 0 a tile calls its helpers
    // (Accumulate, Products, Load) uninlined. With tiering, the first ten 2-thread Q4_0 prefills of a process had a
    // median of 3,500-5,500 tokens/s against 10,800-17,200 with tiering off (bench, 2026-11-27).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Groups<TCodes, TCorrection>(CpuWeight weight, QuantizedActivations act, int tokens, float* output, int rowStart, int rowEnd,
        bool wide)
        where TCodes : IGroupCodes
        where TCorrection : IGroupCorrection
    {
        if (wide)
        {
            Groups512<TCodes, TCorrection>(weight, act, tokens, output, rowStart, rowEnd);
            return;
        }

        var n = weight.Rows;
        var negativeOffset = Vector256.Create((float)-weight.CodeOffset);
        for (var chunk = 0; chunk < tokens; chunk += TokenChunk)
        {
            var chunkEnd = Math.Min(tokens, chunk + TokenChunk);
            for (var row = rowStart; row < rowEnd; row += HalfGroup)
            {
                var group = row / CpuWeight.GroupRows;
                var half = row / HalfGroup % 2;
                var valid = Math.Min(HalfGroup, rowEnd - row);
                var t = chunk;
                for (; t + 4 <= chunkEnd; t += 4)
                {
                    Tile4<TCodes, TCorrection>(weight, group, half, act, t, negativeOffset, output + (long)t * n + row, n, valid);
                }

                for (; t < chunkEnd; t++)
                {
                    Store(Tile1<TCodes, TCorrection>(weight, group, half, act, t, negativeOffset), output + (long)t * n + row, valid);
                }
            }
        }
    }

    /// <summary>One token against half a group (decode, and the tokens left after the 4-token tiles).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static Vector256<float> Tile1<TCodes, TCorrection>(CpuWeight weight, int group, int half, QuantizedActivations act, int token,
        Vector256<float> negativeOffset)
        where TCodes : IGroupCodes
        where TCorrection : IGroupCorrection
    {
        var data = weight.GroupData(group) + half * 32;
        var scales = weight.GroupScales(group) + half * HalfGroup;
        var mins = TCorrection.HasMins ? weight.GroupMins(group) + half * HalfGroup : null;
        var a = act.Codes(token);
        var d = act.Scales(token);
        var sums = Sums<TCodes>(act, token);
        var acc = Vector256<float>.Zero;
        var blocks = weight.BlocksPerRow;
        for (var b = 0; b < blocks; b++)
        {
            var block = data + b * TCodes.BlockBytes;
            acc = Accumulate<TCodes, TCorrection>(acc,
                TCodes.Load(block, 0), TCodes.Load(block, 1), TCodes.Load(block, 2), TCodes.Load(block, 3),
                TCodes.Load(block, 4), TCodes.Load(block, 5), TCodes.Load(block, 6), TCodes.Load(block, 7),
                a + b * 32, scales + b * CpuWeight.GroupRows * TCodes.ScalesPerBlock, mins + b * CpuWeight.GroupRows, d[b],
                sums + b * TCodes.ScalesPerBlock, negativeOffset);
        }

        return acc;
    }

    /// <summary>Four tokens against half a group: each block's codes are loaded and unpacked once for all four.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4<TCodes, TCorrection>(CpuWeight weight, int group, int half, QuantizedActivations act, int token,
        Vector256<float> negativeOffset, float* output, int stride, int valid)
        where TCodes : IGroupCodes
        where TCorrection : IGroupCorrection
    {
        var data = weight.GroupData(group) + half * 32;
        var scales = weight.GroupScales(group) + half * HalfGroup;
        var mins = TCorrection.HasMins ? weight.GroupMins(group) + half * HalfGroup : null;
        sbyte* a0 = act.Codes(token), a1 = act.Codes(token + 1), a2 = act.Codes(token + 2), a3 = act.Codes(token + 3);
        float* d0 = act.Scales(token), d1 = act.Scales(token + 1), d2 = act.Scales(token + 2), d3 = act.Scales(token + 3);
        float* s0 = Sums<TCodes>(act, token), s1 = Sums<TCodes>(act, token + 1), s2 = Sums<TCodes>(act, token + 2), s3 = Sums<TCodes>(act, token + 3);
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        var blocks = weight.BlocksPerRow;
        for (var b = 0; b < blocks; b++)
        {
            var block = data + b * TCodes.BlockBytes;
            var w0 = TCodes.Load(block, 0);
            var w1 = TCodes.Load(block, 1);
            var w2 = TCodes.Load(block, 2);
            var w3 = TCodes.Load(block, 3);
            var w4 = TCodes.Load(block, 4);
            var w5 = TCodes.Load(block, 5);
            var w6 = TCodes.Load(block, 6);
            var w7 = TCodes.Load(block, 7);
            var sw = scales + b * CpuWeight.GroupRows * TCodes.ScalesPerBlock;
            var m = mins + b * CpuWeight.GroupRows;
            var o = b * 32;
            var so = b * TCodes.ScalesPerBlock;
            acc0 = Accumulate<TCodes, TCorrection>(acc0, w0, w1, w2, w3, w4, w5, w6, w7, a0 + o, sw, m, d0[b], s0 + so, negativeOffset);
            acc1 = Accumulate<TCodes, TCorrection>(acc1, w0, w1, w2, w3, w4, w5, w6, w7, a1 + o, sw, m, d1[b], s1 + so, negativeOffset);
            acc2 = Accumulate<TCodes, TCorrection>(acc2, w0, w1, w2, w3, w4, w5, w6, w7, a2 + o, sw, m, d2[b], s2 + so, negativeOffset);
            acc3 = Accumulate<TCodes, TCorrection>(acc3, w0, w1, w2, w3, w4, w5, w6, w7, a3 + o, sw, m, d3[b], s3 + so, negativeOffset);
        }

        Store(acc0, output, valid);
        Store(acc1, output + stride, valid);
        Store(acc2, output + 2 * stride, valid);
        Store(acc3, output + 3 * stride, valid);
    }

    /// <summary>d·Σq per scale: per block, or per half block for Q6_K's 16-value scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* Sums<TCodes>(QuantizedActivations act, int token)
        where TCodes : IGroupCodes =>
        TCodes.ScalesPerBlock == 1 ? act.ScaledSums(token) : act.ScaledHalfSums(token);

    /// <summary>
    /// One block of one token against eight rows (codes w0…w7, vector g holding codes 4g…4g+3 of each row), added to the
    /// token's accumulator. The products of a 32-value block (16-value half for Q6_K) add up in int16 lanes as far as they
    /// cannot overflow, then widen to int32 and take the block's scales in float.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Accumulate<TCodes, TCorrection>(Vector256<float> acc,
        Vector256<byte> w0, Vector256<byte> w1, Vector256<byte> w2, Vector256<byte> w3,
        Vector256<byte> w4, Vector256<byte> w5, Vector256<byte> w6, Vector256<byte> w7,
        sbyte* a, float* scales, float* mins, float d, float* sums, Vector256<float> negativeOffset)
        where TCodes : IGroupCodes
        where TCorrection : IGroupCorrection
    {
        var ones = Vector256.Create((short)1);
        if (TCodes.Bits == 8)
        {
            var sum = (SignedProducts(w0, a) + SignedProducts(w1, a + 4)) + (SignedProducts(w2, a + 8) + SignedProducts(w3, a + 12))
                + ((SignedProducts(w4, a + 16) + SignedProducts(w5, a + 20)) + (SignedProducts(w6, a + 24) + SignedProducts(w7, a + 28)));
            return TCorrection.Accumulate(acc, sum, Avx.LoadVector256(scales), mins, d, sums[0], negativeOffset);
        }

        var p01 = Products(w0, a) + Products(w1, a + 4);
        var p23 = Products(w2, a + 8) + Products(w3, a + 12);
        var p45 = Products(w4, a + 16) + Products(w5, a + 20);
        var p67 = Products(w6, a + 24) + Products(w7, a + 28);
        // An int16 lane of one product pair holds at most 2·c·127 for codes below c: 8 pairs add up for 4-bit codes
        // (30,480), 4 for 5-bit (31,496) and 2 for 6-bit (32,004) before the next would overflow.
        if (TCodes.Bits == 6)
        {
            var low = Avx2.MultiplyAddAdjacent(p01, ones) + Avx2.MultiplyAddAdjacent(p23, ones);
            var high = Avx2.MultiplyAddAdjacent(p45, ones) + Avx2.MultiplyAddAdjacent(p67, ones);
            acc = TCorrection.Accumulate(acc, low, Avx.LoadVector256(scales), mins, d, sums[0], negativeOffset);
            return TCorrection.Accumulate(acc, high, Avx.LoadVector256(scales + CpuWeight.GroupRows), mins, d, sums[1], negativeOffset);
        }

        var dot = TCodes.Bits == 4
            ? Avx2.MultiplyAddAdjacent((p01 + p23) + (p45 + p67), ones)
            : Avx2.MultiplyAddAdjacent(p01 + p23, ones) + Avx2.MultiplyAddAdjacent(p45 + p67, ones);
        return TCorrection.Accumulate(acc, dot, Avx.LoadVector256(scales), mins, d, sums[0], negativeOffset);
    }

    /// <summary>Four codes of each of eight rows times the same four activations: per row two int16 sums of two products.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Products(Vector256<byte> codes, sbyte* a) =>
        Avx2.MultiplyAddAdjacent(codes, Vector256.Create(*(int*)a).AsSByte());

    /// <summary>
    /// Signed codes (Q8_0): u8 × s8 would saturate, so |w| times a carrying w's sign (llama.cpp's sign trick); an int16 lane
    /// holds up to 2·128·127 = 32,512, so every group widens to int32 at once.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SignedProducts(Vector256<byte> codes, sbyte* a)
    {
        var w = codes.AsSByte();
        var products = Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(Vector256.Create(*(int*)a).AsSByte(), w));
        return Avx2.MultiplyAddAdjacent(products, Vector256.Create((short)1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector256<float> values, float* output, int valid)
    {
        if (valid == HalfGroup)
        {
            values.Store(output);
            return;
        }

        for (var i = 0; i < valid; i++)
        {
            output[i] = values.GetElement(i);
        }
    }
}
