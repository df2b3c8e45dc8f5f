using AspireAi.Inference.Models.Gguf;

namespace AspireAi.Inference.Tokenization;

/// <summary>Creates the tokenizer of a model, from whichever form it came in.</summary>
public static class Tokenizers
{
    /// <summary>The tokenizer described by a GGUF file's <c>tokenizer.ggml.*</c> metadata.</summary>
    /// <exception cref="Models.ModelFormatException">Missing or unsupported tokenizer metadata (names the key).</exception>
    public static ITokenizer FromGguf(GgufFile file) => GgufTokenizerLoader.Load(file);

    /// <summary>The tokenizer of a Hugging Face model folder (<c>tokenizer.json</c> + <c>tokenizer_config.json</c>).</summary>
    /// <exception cref="Models.ModelFormatException">Missing or unsupported tokenizer files (names the file and field).</exception>
    public static ITokenizer FromHuggingFace(string folder) => HuggingFaceTokenizerLoader.Load(folder);
}
