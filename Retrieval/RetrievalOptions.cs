namespace AspireAi.Retrieval;

/// <summary>The <c>Retrieval</c> configuration section.</summary>
public sealed class RetrievalOptions
{
    public const string Section = "Retrieval";

    /// <summary>Base address of the OpenAI-compatible embeddings API (service discovery resolves <c>inference</c>).</summary>
    public string EmbeddingEndpoint { get; set; } = "http://inference/v1";

    /// <summary>The embedding model of a collection created without <c>embedding_model</c>.</summary>
    public string DefaultEmbeddingModel { get; set; } = "all-MiniLM-L6-v2";

    /// <summary>Inputs per embeddings request (Inference batches them 32 at a time internally).</summary>
    public int EmbeddingBatchSize { get; set; } = 64;

    /// <summary>Largest document accepted, in bytes, before extraction (413 above it).</summary>
    public long MaxDocumentBytes { get; set; } = 32 * 1024 * 1024;

    /// <summary>
    /// Documents of more chunks than this are ingested as a background job (202 + <c>ingestion_id</c>); smaller ones within
    /// the request. 32 chunks embed in about half a second on two cores, a fair wait for a synchronous answer.
    /// </summary>
    public int SyncChunkLimit { get; set; } = 32;

    /// <summary>Target chunk size in cl100k tokens: 180 stays under all-MiniLM-L6-v2's 256 WordPiece window for English prose.</summary>
    public int ChunkTokens { get; set; } = 180;

    /// <summary>Tokens of the previous chunk's tail repeated at the start of the next, so that no sentence loses its context.</summary>
    public int ChunkOverlapTokens { get; set; } = 30;

    /// <summary>Whether documents may be given by <c>url</c> (fetched by this service: disable where it could reach internal hosts).</summary>
    public bool AllowUrlFetch { get; set; } = true;

    /// <summary>Embedded store: collections with at least this many chunks get an HNSW index; smaller ones are searched exactly.</summary>
    public int AnnThreshold { get; set; } = 20_000;

    /// <summary>Embedded store: HNSW graph degree (M; 2·M on layer 0).</summary>
    public int HnswM { get; set; } = 16;

    /// <summary>Embedded store: HNSW candidate list size while building.</summary>
    public int HnswEfConstruction { get; set; } = 100;

    /// <summary>Embedded store: HNSW candidate list size while searching (at least top_k).</summary>
    public int HnswEfSearch { get; set; } = 80;
}
