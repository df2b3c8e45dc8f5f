namespace AspireAi.Inference.Models;

/// <summary>
/// Tensor element types, numbered as in ggml's <c>enum ggml_type</c> (the value stored in a GGUF tensor-info record).
/// Only the types the engine computes with are named; any other value read from a file is rejected with its number.
/// </summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q5_0 = 6,
    Q8_0 = 8,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    BF16 = 30,
}

/// <summary>Block geometry of each type: how many weights share one block, and the block's size in bytes.</summary>
public static class GgmlTypeInfo
{
    /// <summary>Weights per block (1 for plain floats; 32 for Q8_0/Q4_0/Q5_0; 256 for the K-quants' super-blocks).</summary>
    public static int BlockSize(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 => 1,
        GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 => 32,
        GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K => 256,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unsupported tensor type."),
    };

    /// <summary>Bytes per block, per llama.cpp's <c>ggml-common.h</c> block structs.</summary>
    public static int BlockBytes(GgmlType type) => type switch
    {
        GgmlType.F32 => 4,
        GgmlType.F16 or GgmlType.BF16 => 2,
        GgmlType.Q4_0 => 2 + 16,              // fp16 d, 32 × 4-bit
        GgmlType.Q5_0 => 2 + 4 + 16,          // fp16 d, 32 high bits, 32 × 4-bit low nibbles
        GgmlType.Q8_0 => 2 + 32,              // fp16 d, 32 × int8
        GgmlType.Q4_K => 2 + 2 + 12 + 128,    // fp16 d, fp16 dmin, 12 bytes of 6-bit scales/mins, 256 × 4-bit
        GgmlType.Q5_K => 2 + 2 + 12 + 32 + 128, // as Q4_K plus 256 high bits
        GgmlType.Q6_K => 128 + 64 + 16 + 2,   // 256 × low 4 bits, 256 × high 2 bits, 16 int8 scales, fp16 d
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unsupported tensor type."),
    };

    public static bool IsSupported(GgmlType type) => Enum.IsDefined(type);

    /// <summary>Bytes of a row of <paramref name="elements"/> weights; the caller checks divisibility by the block size.</summary>
    public static long RowBytes(GgmlType type, long elements) => elements / BlockSize(type) * BlockBytes(type);
}
