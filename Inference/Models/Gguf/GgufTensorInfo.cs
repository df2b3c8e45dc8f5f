namespace AspireAi.Inference.Models.Gguf;

/// <summary>A tensor-info record of a GGUF file, already validated: shape in ggml order, data offset from the file's start.</summary>
public sealed record GgufTensorInfo(string Name, GgmlType Type, long[] Shape, long FileOffset, long ByteLength)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}
