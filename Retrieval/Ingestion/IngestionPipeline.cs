using System.Security.Cryptography;
using System.Text;
using AspireAi.Retrieval.Chunking;
using AspireAi.Retrieval.Collections;
using AspireAi.Retrieval.Documents;
using AspireAi.Retrieval.Extraction;
using AspireAi.Retrieval.VectorStores;
using Microsoft.Extensions.Options;

namespace AspireAi.Retrieval.Ingestion;

/// <summary>
/// Document → text blocks → chunks → vectors → store. Chunks are written under the document's new content hash and become
/// visible only when the document row is switched to that hash; the previous version's chunks are deleted afterwards.
/// </summary>
internal sealed class IngestionPipeline(IChunkStore store, DocumentStore documents, IOptions<RetrievalOptions> options)
{
    private readonly Chunker _chunker = new(Chunker.DefaultTokenizer, options.Value.ChunkTokens, options.Value.ChunkOverlapTokens);

    /// <exception cref="DocumentException">415 for an unsupported type, 400 for a document with no text or that cannot be read.</exception>
    public PreparedDocument Prepare(DocumentSubmission submission)
    {
        var content = submission.Content;
        var contentType = ContentTypes.Resolve(content.DeclaredType, content.FileName, content.Head)
            ?? throw new DocumentException(415,
                $"Unsupported document type '{content.DeclaredType ?? Path.GetExtension(content.FileName ?? "") ?? "unknown"}': " +
                $"send one of {string.Join(", ", ContentTypes.Supported)}.", "content_type");
        List<TextBlock> blocks;
        try
        {
            using var stream = content.OpenRead();
            blocks = TextExtractor.Extract(contentType, stream);
        }
        catch (InvalidDataException ex)
        {
            throw new DocumentException(400, $"The {contentType} document could not be read: {ex.Message}", "content_type");
        }

        var chunks = _chunker.Chunk(blocks);
        if (chunks.Count == 0)
        {
            throw new DocumentException(400, $"The {contentType} document contains no text to index.");
        }

        // The version hash covers what the chunks depend on: the bytes, how they were read, and the metadata they carry.
        var version = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{content.Sha256}\n{contentType}\n{submission.MetadataJson}")))[..32];
        var id = submission.Id ?? "doc_" + content.Sha256[..24];
        return new PreparedDocument(id, version, contentType, content.Length, submission.MetadataJson, chunks);
    }

    /// <summary>Writes the chunks and publishes the version; false when the collection was deleted meanwhile (nothing is left behind).</summary>
    public async Task<bool> CommitAsync(string tenant, CollectionInfo collection, PreparedDocument document, float[][] vectors, CancellationToken ct)
    {
        var chunks = store.Collection(tenant, collection.Name, collection.EmbeddingModel);
        await chunks.UpsertAsync(document.Chunks.Select((text, i) => new ChunkRecord
        {
            Id = ChunkRecord.IdFor(tenant, collection.Name, document.DocumentId, document.ContentHash, i),
            DocumentId = document.DocumentId,
            DocumentVersion = document.ContentHash,
            ChunkIndex = i,
            Text = text,
            MetadataJson = document.MetadataJson,
            Embedding = vectors[i],
        }), ct);

        var info = new DocumentInfo(document.DocumentId, document.ContentHash, document.ContentType, document.Chunks.Count, document.Bytes, document.MetadataJson);
        if (!await documents.PublishAsync(tenant, collection.Name, info, ct))
        {
            await chunks.DeleteDocumentAsync(document.DocumentId, keepVersion: null, ct);
            return false;
        }

        await chunks.DeleteDocumentAsync(document.DocumentId, keepVersion: document.ContentHash, ct);
        return true;
    }
}
