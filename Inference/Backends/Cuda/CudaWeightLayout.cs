namespace AspireAi.Inference.Backends.Cuda;

/// <summary>How a <see cref="CudaWeight"/> lies in device memory; the numbers are the kernels' <c>LAYOUT_*</c> (common.cuh).</summary>
public enum CudaWeightLayout
{
    /// <summary>float32 rows (F32 tensors, and every 1-D tensor: norms and biases).</summary>
    Float32 = 0,

    /// <summary>IEEE half rows.</summary>
    Float16 = 1,

    /// <summary>bfloat16 rows.</summary>
    BFloat16 = 2,

    /// <summary>32 signed int8 codes per 32-value block, the format's code offset already subtracted: Q8_0, Q5_0, Q5_K, Q6_K.</summary>
    Int8 = 3,

    /// <summary>16 bytes per 32-value block, byte j = code j | code (j + 16) &lt;&lt; 4 (ggml's Q4_0 order), unsigned: Q4_0, Q4_K.</summary>
    Nibble = 4,
}
