namespace AspireAi.Inference.Models.Quantization;

/// <summary>
/// Reads ggml's quantized blocks (layouts per llama.cpp's <c>ggml-common.h</c>) into plain codes, scales and mins, for the
/// backends to repack into their own layouts once at load (the CPU's <c>WeightRepacker</c>, CUDA's <c>CudaWeightPacker</c>).
/// </summary>
internal static unsafe class GgmlBlockDecoder
{
    /// <summary>
    /// Decodes one ggml block into 32-value sub-blocks: <paramref name="codes"/> as unsigned as they are stored (Q8_0: its
    /// two's-complement bytes; Q5_0 0…31 and Q6_K 0…63, their offsets of 16 and 32 not subtracted), a scale per sub-block
    /// (two for Q6_K: one per 16 values) and, for Q4_K/Q5_K, a min. Returns how many sub-blocks the block holds.
    /// </summary>
    public static int Decode(GgmlType type, byte* b, byte* codes, float* scales, float* mins)
    {
        switch (type)
        {
            case GgmlType.Q8_0:
                scales[0] = Half(b);
                Buffer.MemoryCopy(b + 2, codes, 32, 32);
                return 1;
            case GgmlType.Q4_0:
                scales[0] = Half(b);
                for (var j = 0; j < 16; j++)
                {
                    codes[j] = (byte)(b[2 + j] & 0xF);
                    codes[j + 16] = (byte)(b[2 + j] >> 4);
                }

                return 1;
            case GgmlType.Q5_0:
            {
                scales[0] = Half(b);
                var qh = *(uint*)(b + 2);
                var qs = b + 6;
                for (var j = 0; j < 16; j++)
                {
                    codes[j] = (byte)((qs[j] & 0xF) | (int)((qh >> j) & 1) << 4);
                    codes[j + 16] = (byte)((qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4);
                }

                return 1;
            }

            case GgmlType.Q4_K:
            case GgmlType.Q5_K:
            {
                var d = Half(b);
                var dmin = Half(b + 2);
                var packedScales = b + 4;
                var qh = type == GgmlType.Q5_K ? b + 16 : null;
                var qs = type == GgmlType.Q5_K ? b + 48 : b + 16;
                for (var s = 0; s < 8; s++)
                {
                    ScaleMinK4(s, packedScales, out var sc, out var m);
                    scales[s] = d * sc;
                    mins[s] = dmin * m;
                    var q = qs + s / 2 * 32;
                    var shift = (s & 1) * 4;
                    for (var l = 0; l < 32; l++)
                    {
                        var code = (q[l] >> shift) & 0xF;
                        if (qh is not null)
                        {
                            code |= ((qh[l] >> s) & 1) << 4;
                        }

                        codes[s * 32 + l] = (byte)code;
                    }
                }

                return 8;
            }

            case GgmlType.Q6_K:
            {
                var ql = b;
                var qh = b + 128;
                var sc = (sbyte*)(b + 192);
                var d = Half(b + 208);
                for (var half = 0; half < 2; half++)
                {
                    var l0 = ql + half * 64;
                    var h0 = qh + half * 32;
                    var y = codes + half * 128;
                    for (var l = 0; l < 32; l++)
                    {
                        y[l] = (byte)((l0[l] & 0xF) | ((h0[l] >> 0) & 3) << 4);
                        y[l + 32] = (byte)((l0[l + 32] & 0xF) | ((h0[l] >> 2) & 3) << 4);
                        y[l + 64] = (byte)((l0[l] >> 4) | ((h0[l] >> 4) & 3) << 4);
                        y[l + 96] = (byte)((l0[l + 32] >> 4) | ((h0[l] >> 6) & 3) << 4);
                    }
                }

                for (var k = 0; k < 16; k++)
                {
                    scales[k] = d * sc[k];
                }

                return 8;
            }

            default:
                throw new InvalidOperationException($"No block decoder for {type}.");
        }
    }

    /// <summary>The 6-bit scale and min of sub-block <paramref name="j"/> packed in a K-quant's 12 scale bytes.</summary>
    private static void ScaleMinK4(int j, byte* q, out int scale, out int min)
    {
        if (j < 4)
        {
            scale = q[j] & 63;
            min = q[j + 4] & 63;
        }
        else
        {
            scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }

    private static float Half(byte* p) => (float)BitConverter.UInt16BitsToHalf(*(ushort*)p);
}
