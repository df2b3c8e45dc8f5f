namespace AspireAi.Inference.Embeddings;

/// <summary>A sentence-embedding model: text → token ids → one unit-length vector per input.</summary>
public interface IEmbeddingModel
{
    /// <summary>The id clients name in <c>model</c> and <c>GET /v1/models</c> lists.</summary>
    string Id { get; }

    /// <summary>Length of the vectors the model produces.</summary>
    int Dimensions { get; }

    /// <summary>Whether a shorter <c>dimensions</c> may be served by truncating and re-normalising (Matryoshka-trained models only).</summary>
    bool SupportsShorterDimensions { get; }

    /// <summary>Size of the vocabulary: token ids given directly must be below it.</summary>
    int VocabularySize { get; }

    /// <summary>Token ids of <paramref name="text"/> without special tokens, at most <c>MaxTokens − 2</c> of them.</summary>
    int[] Tokenize(string text);

    /// <summary>Embeds already-tokenized inputs (no special tokens; the model adds its own); one unit vector per input.</summary>
    float[][] Embed(IReadOnlyList<int[]> inputs, CancellationToken cancellationToken);
}
