namespace AspireAi.Retrieval.Ingestion;

/// <summary>A document extracted and chunked, ready to embed: everything an ingestion job needs to resume.</summary>
internal sealed record PreparedDocument(
    string DocumentId, string ContentHash, string ContentType, long Bytes, string MetadataJson, IReadOnlyList<string> Chunks);
