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

    /// <summary>
    /// The tensor as a backend's weight matrix — row length (K), row count (N, 1 for a vector) and bytes per row — after
    /// checking what every backend's loader needs: one or two dimensions, rows of whole blocks of its type, and as many
    /// bytes as that shape takes. Throws naming the tensor otherwise.
    /// </summary>
    public (int Columns, int Rows, long RowBytes) MatrixShape()
    {
        if (Shape.Length is < 1 or > 2 || Shape.Any(d => d <= 0 || d > int.MaxValue))
        {
            throw new InvalidDataException($"Tensor '{Name}': shape [{string.Join(", ", Shape)}] is not a 1-D or 2-D matrix the backend can hold.");
        }

        var columns = (int)Shape[0];
        var rows = Shape.Length == 2 ? (int)Shape[1] : 1;
        var blockSize = GgmlTypeInfo.BlockSize(Type);
        if (columns % blockSize != 0)
        {
            throw new InvalidDataException($"Tensor '{Name}': row length {columns} is not a multiple of {Type}'s block of {blockSize}.");
        }

        var rowBytes = GgmlTypeInfo.RowBytes(Type, columns);
        if (ByteLength != rowBytes * rows)
        {
            throw new InvalidDataException($"Tensor '{Name}': {ByteLength} bytes, but {Type} [{columns} × {rows}] needs {rowBytes * rows}.");
        }

        return (columns, rows, rowBytes);
    }
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
