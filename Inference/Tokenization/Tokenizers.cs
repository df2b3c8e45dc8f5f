using AspireAi.Inference.Models;
using AspireAi.Inference.Models.Gguf;
using AspireAi.Inference.Models.SafeTensors;

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

    /// <summary>The tokenizer of whichever kind of model <paramref name="source"/> is (<see cref="FromGguf"/>, <see cref="FromHuggingFace"/>,
    /// or a random model's synthetic vocabulary).</summary>
    /// <exception cref="Models.ModelFormatException">Missing or unsupported tokenizer data.</exception>
    public static ITokenizer For(IModelSource source) => source switch
    {
        GgufFile file => FromGguf(file),
        SafeTensorsModel folder => FromHuggingFace(folder.Path),
        Models.Synthetic.RandomModel random => new SentencePieceTokenizer(random.SyntheticVocabulary()),
        _ => throw new ArgumentException($"No tokenizer reader for {source.GetType().Name}.", nameof(source)),
    };
}
