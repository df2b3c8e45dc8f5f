namespace AspireAi.Inference.Models;

/// <summary>
/// One tensor's bytes in place (memory-mapped file or a buffer the source owns) with its GGUF type and shape.
/// <see cref="Shape"/> is in ggml order: <c>Shape[0]</c> is the row length (contiguous), <c>Shape[1]</c> the row count.
/// The memory stays valid until the owning <see cref="IModelSource"/> is disposed.
/// </summary>
public readonly record struct TensorView(string Name, GgmlType Type, long[] Shape, nint Data, long ByteLength)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    public unsafe ReadOnlySpan<byte> Bytes => ByteLength <= int.MaxValue
        ? new ReadOnlySpan<byte>((void*)Data, (int)ByteLength)
        : throw new InvalidOperationException($"Tensor '{Name}' ({ByteLength} bytes) is too large for one span; read it by rows.");
}

/// <summary>A loaded model file or folder: its configuration, tokenizer data and weights, whatever the format on disk.</summary>
public interface IModelSource : IDisposable
{
    /// <summary>The file or folder it was read from (named in every error).</summary>
    string Path { get; }

    ModelConfig Config { get; }

    /// <summary>The tensor called <paramref name="name"/> (GGUF naming), or false when the file has none.</summary>
    bool TryGetTensor(string name, out TensorView tensor);
}
