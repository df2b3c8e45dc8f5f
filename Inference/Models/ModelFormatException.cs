namespace AspireAi.Inference.Models;

/// <summary>
/// A model file or folder that cannot be used: its message names the file, the tensor or metadata key (when there is one)
/// and what is wrong, e.g. <c>model.gguf: tensor 'blk.0.attn_q.weight': data ends at byte 123 past the end of the file (100 bytes)</c>.
/// </summary>
public sealed class ModelFormatException : Exception
{
    public ModelFormatException(string path, string? item, string problem, Exception? inner = null)
        : base(item is null ? $"{path}: {problem}" : $"{path}: {item}: {problem}", inner)
    {
        FilePath = path;
        Item = item;
        Problem = problem;
    }

    /// <summary>The file (or folder) that was being read.</summary>
    public string FilePath { get; }

    /// <summary>The tensor or metadata key at fault, as <c>tensor 'name'</c> / <c>key 'name'</c>; null for the file as a whole.</summary>
    public string? Item { get; }

    public string Problem { get; }
}
