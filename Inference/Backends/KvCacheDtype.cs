namespace AspireAi.Inference.Backends;

/// <summary>
/// The element type of the paged KV cache (vLLM's <c>--kv-cache-dtype</c>). <see cref="Auto"/> is the backend's choice
/// (<see cref="IBackend.ResolveKvCacheDtype"/>): f16 on CUDA, where decode at long contexts is bound by reading the cache and
/// half the bytes is half that time; float32 on the CPU, which also keeps bf16 (widened with one shift per value, where f16
/// would take ten instructions without <c>vcvtph2ps</c>) and fp8 (E4M3 as vLLM's <c>fp8</c>, unscaled: a quarter of
/// float32's bytes; its accuracy is in docs/performance.md).
/// </summary>
public enum KvCacheDtype
{
    Auto,
    Float32,
    Float16,
    BFloat16,
    Float8E4M3,
}

/// <summary>The names of <see cref="KvCacheDtype"/> on the command line and in configuration, and its element sizes.</summary>
public static class KvCacheDtypes
{
    /// <summary>The accepted names, in the order of <see cref="KvCacheDtype"/>.</summary>
    public static readonly string[] Names = ["auto", "fp32", "fp16", "bf16", "fp8"];

    /// <summary>Parses a flag or configuration value (case-insensitive); <paramref name="setting"/> names it in the error.</summary>
    public static KvCacheDtype Parse(string? text, string setting)
    {
        var index = Array.FindIndex(Names, name => string.Equals(name, text?.Trim(), StringComparison.OrdinalIgnoreCase));
        return index >= 0
            ? (KvCacheDtype)index
            : throw new ArgumentException($"{setting} must be {string.Join(", ", Names[..^1])} or {Names[^1]}, not '{text}'.");
    }

    public static string Name(this KvCacheDtype dtype) => Names[(int)dtype];

    /// <summary>Bytes of one key or value element; <see cref="KvCacheDtype.Auto"/> has none until a backend resolves it.</summary>
    public static int ElementBytes(this KvCacheDtype dtype) => dtype switch
    {
        KvCacheDtype.Float32 => sizeof(float),
        KvCacheDtype.Float16 or KvCacheDtype.BFloat16 => 2,
        KvCacheDtype.Float8E4M3 => 1,
        _ => throw new InvalidOperationException($"The KV cache type '{dtype.Name()}' has no element size until a backend resolves it (IBackend.ResolveKvCacheDtype)."),
    };
}

/// <summary>
/// The fp8 KV cache's number format, OCP E4M3 (see <c>Float8E4M3Row</c>): the one rounding both backends store with, which
/// GpuCheck holds the CUDA kernels' stored codes to, bit for bit.
/// </summary>
public static class Float8E4M3
{
    /// <summary>The code nearest to <paramref name="value"/>, ties to even, saturated to ±448 (NaN stays NaN).</summary>
    public static byte Round(float value) => Cpu.Float8E4M3Row.Round(value);

    /// <summary>The value of <paramref name="code"/>, exactly.</summary>
    public static float Decode(byte code) => Cpu.Float8E4M3Row.Decode(code);
}
