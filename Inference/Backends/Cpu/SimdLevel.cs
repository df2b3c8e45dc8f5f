using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AspireAi.Inference.Backends.Cpu;

/// <summary>The instruction-set tier the CPU kernels use, chosen once at start (or forced, so tests cover every path).</summary>
public enum SimdLevel
{
    /// <summary>Scalar code and <c>Vector&lt;T&gt;</c>: any CPU .NET runs on.</summary>
    Portable,

    /// <summary>AVX2 + FMA, 256-bit.</summary>
    Avx2,

    /// <summary>AVX-512 F/BW: 512-bit float kernels, and the 256-bit integer kernels with EVEX's 32 registers.</summary>
    Avx512,
}

public static class SimdLevels
{
    /// <summary>The best tier this CPU and runtime support.</summary>
    public static SimdLevel Best =>
        Avx512F.IsSupported && Avx512BW.IsSupported && Vector512.IsHardwareAccelerated ? SimdLevel.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? SimdLevel.Avx2
        : SimdLevel.Portable;

    /// <summary>True when this machine can run <paramref name="level"/>.</summary>
    public static bool IsSupported(SimdLevel level) => level <= Best;
}
