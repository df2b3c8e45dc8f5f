using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Models.SafeTensors;

namespace AspireAi.Inference.Models;

/// <summary>Opens a model from a local path, whatever its format: a GGUF file, or a Hugging Face folder of safetensors.</summary>
public static class ModelLoader
{
    /// <summary>
    /// A <c>.gguf</c> file opens as a <see cref="GgufFile"/>; a folder (or a <c>config.json</c> / <c>*.safetensors</c> file
    /// inside one) as a <see cref="SafeTensorsModel"/>; <c>random:SHAPE[:TYPE[:CONTEXT]]</c> as a random-weight model of that
    /// shape (<see cref="Synthetic.RandomModel.FromReference"/>).
    /// </summary>
    /// <param name="quantize">Q8_0 or Q4_0 to quantize a safetensors model on load. GGUF files keep the types they were saved with.</param>
    /// <exception cref="ModelFormatException">The file or folder is not a usable model.</exception>
    /// <exception cref="FileNotFoundException">Nothing at <paramref name="path"/>.</exception>
    public static IModelSource Open(string path, GgmlType? quantize = null)
    {
        if (path.StartsWith(Synthetic.RandomModel.Prefix, StringComparison.Ordinal))
        {
            return Synthetic.RandomModel.FromReference(path);
        }

        if (Directory.Exists(path))
        {
            return SafeTensorsModel.Open(path, quantize);
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Model '{path}' does not exist (expected a .gguf file or a Hugging Face model folder).", path);
        }

        var name = System.IO.Path.GetFileName(path);
        if (name == "config.json" || name.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            return SafeTensorsModel.Open(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!, quantize);
        }

        if (quantize is not null)
        {
            throw new ArgumentException($"{path}: quantize-on-load applies to Hugging Face safetensors folders; a GGUF file keeps its own tensor types (requantize it with llama-quantize).", nameof(quantize));
        }

        return GgufFile.Open(path);
    }
}
