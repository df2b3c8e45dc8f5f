namespace AspireAi.Inference.Models.SafeTensors;

/// <summary>The safetensors element types the engine reads, with their GGUF counterparts.</summary>
public enum SafeTensorsDType
{
    F32,
    F16,
    BF16,
}

internal static class SafeTensorsDTypes
{
    /// <summary>Every dtype name the format defines (safetensors' <c>Dtype</c> enum), to tell "unsupported" from "garbage".</summary>
    private static readonly HashSet<string> Known =
    [
        "BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
        "F16", "BF16", "F32", "F64", "C64",
    ];

    public const string SupportedList = "BF16, F16, F32";

    public static bool TryParse(string name, out SafeTensorsDType dtype)
    {
        (var ok, dtype) = name switch
        {
            "F32" => (true, SafeTensorsDType.F32),
            "F16" => (true, SafeTensorsDType.F16),
            "BF16" => (true, SafeTensorsDType.BF16),
            _ => (false, default),
        };
        return ok;
    }

    public static bool IsKnown(string name) => Known.Contains(name);

    public static int Size(SafeTensorsDType dtype) => dtype == SafeTensorsDType.F32 ? 4 : 2;

    public static GgmlType ToGgml(SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F32 => GgmlType.F32,
        SafeTensorsDType.F16 => GgmlType.F16,
        _ => GgmlType.BF16,
    };
}
