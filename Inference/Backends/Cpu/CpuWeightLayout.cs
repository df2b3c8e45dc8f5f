namespace AspireAi.Inference.Backends.Cpu;

/// <summary>How a <see cref="CpuWeight"/> stores its values in memory.</summary>
internal enum CpuWeightLayout
{
    /// <summary>float32 rows (F32 tensors, and every 1-D tensor: norms and biases).</summary>
    Float32,

    /// <summary>IEEE half rows, converted on the fly.</summary>
    Float16,

    /// <summary>bfloat16 rows, converted on the fly.</summary>
    BFloat16,

    /// <summary>
    /// 4-bit codes of 16 rows interleaved (<see cref="CpuWeight.GroupRows"/>): per block of 32 columns, four 64-byte
    /// vectors whose dword r holds row r's codes 4p…4p+3 (low nibbles) and 16+4p…16+4p+3 (high nibbles): Q4_0, Q4_K.
    /// </summary>
    NibbleRowGroups,

    /// <summary>
    /// Unsigned byte codes of 16 rows interleaved: per block, eight 64-byte vectors whose dword r holds row r's codes
    /// 4g…4g+3: Q5_0, Q5_K (0…31), Q6_K (0…63).
    /// </summary>
    ByteRowGroups,

    /// <summary>As <see cref="ByteRowGroups"/>, with signed codes: Q8_0.</summary>
    SignedByteRowGroups,
}
