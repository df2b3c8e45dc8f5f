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

    /// <summary>4-bit codes, blocks 2p and 2p+1 sharing 32 bytes (low and high nibble): Q4_0, Q4_K.</summary>
    NibblePairs,

    /// <summary>One unsigned byte per code, 32 per block: Q5_0 (0…31), Q5_K (0…31), Q6_K (0…63).</summary>
    ByteCodes,

    /// <summary>One signed byte per code: Q8_0.</summary>
    SignedBytes,
}
