namespace AspireAi.Inference.Models.Gguf;

/// <summary>ggml's names for every tensor type number (ggml.h), so an unsupported type is reported by name, not only number.</summary>
internal static class GgmlTypeNames
{
    private static readonly string?[] Names =
    [
        "F32", "F16", "Q4_0", "Q4_1", null, null, "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
        "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64",
        "F64", "IQ1_M", "BF16", null, null, null, "TQ1_0", "TQ2_0", null, null, null, "MXFP4", "NVFP4", "Q1_0",
    ];

    public static string Describe(uint type) =>
        type < Names.Length && Names[type] is { } name ? $"{type} ({name})" : $"{type} (not a ggml type)";

    public static string SupportedList { get; } = string.Join(", ", Enum.GetValues<GgmlType>().Select(t => t.ToString()));
}
