using System.Text.Json;
using AspireAi.Retrieval.Collections;
using AspireAi.Retrieval.Embeddings;
using AspireAi.Retrieval.Ingestion;
using AspireAi.Retrieval.VectorStores;
using AspireAi.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace AspireAi.Retrieval.Documents;

/// <summary><c>/v1/collections/{name}/documents</c>: ingest, read and delete documents.</summary>
internal static class DocumentEndpoints
{
    /// <summary>Seconds a client should wait before retrying when the embedding service is down.</summary>
    public const int RetryAfterSeconds = 5;

    public static void MapDocumentEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/collections/{name}/documents", async (string name, HttpContext context, CollectionStore collections,
            DocumentStore documents, IngestionPipeline pipeline, IngestionStore jobs, IngestionWorker worker, EmbeddingService embeddings,
            IHttpClientFactory http, IOptions<RetrievalOptions> options, CancellationToken ct) =>
        {
            var tenant = TenantHeaders.Tenant(context);
            if (await collections.GetAsync(tenant, name, ct) is not { } collection)
            {
                return CollectionEndpoints.NotFound(name);
            }

            PreparedDocument document;
            try
            {
                await using var submission = await DocumentSubmission.ReadAsync(context.Request, options.Value, http, ct);
                document = pipeline.Prepare(submission);
            }
            catch (DocumentException ex)
            {
                return ex.ToResult();
            }

            if (await documents.GetAsync(tenant, name, document.DocumentId, ct) is { } existing && existing.ContentHash == document.ContentHash)
            {
                return Results.Json(Shape(name, document, "unchanged"));
            }

            if (document.Chunks.Count > options.Value.SyncChunkLimit)
            {
                var job = await jobs.CreateAsync(tenant, name, collection.EmbeddingModel, document, ct);
                worker.Signal();
                context.Response.Headers.Location = $"/v1/ingestions/{job.Id}";
                return Results.Json(Shape(name, document, job.Status, job.Id), statusCode: 202);
            }

            float[][] vectors;
            try
            {
                vectors = await embeddings.EmbedAsync(collection.EmbeddingModel, document.Chunks, ct);
            }
            catch (EmbeddingUnavailableException ex)
            {
                return Unavailable(context, ex);
            }
            catch (EmbeddingRejectedException ex)
            {
                return OpenAiError.Result(400, ex.Message, "embedding_model");
            }

            return await pipeline.CommitAsync(tenant, collection, document, vectors, ct)
                ? Results.Json(Shape(name, document, "ingested"), statusCode: 201)
                : CollectionEndpoints.NotFound(name);
        }).DisableAntiforgery();

        app.MapGet("/v1/collections/{name}/documents/{id}", async (string name, string id, HttpContext context, CollectionStore collections,
            DocumentStore documents, CancellationToken ct) =>
        {
            var tenant = TenantHeaders.Tenant(context);
            if (await collections.GetAsync(tenant, name, ct) is null)
            {
                return CollectionEndpoints.NotFound(name);
            }

            return await documents.GetAsync(tenant, name, id, ct) is { } document
                ? Results.Json(new
                {
                    id = document.Id,
                    @object = "document",
                    collection = name,
                    content_type = document.ContentType,
                    bytes = document.Bytes,
                    chunks = document.Chunks,
                    content_hash = document.ContentHash,
                    metadata = JsonDocument.Parse(document.MetadataJson).RootElement,
                })
                : DocumentNotFound(name, id);
        });

        app.MapDelete("/v1/collections/{name}/documents/{id}", async (string name, string id, HttpContext context, CollectionStore collections,
            DocumentStore documents, IngestionStore jobs, IChunkStore store, CancellationToken ct) =>
        {
            var tenant = TenantHeaders.Tenant(context);
            if (await collections.GetAsync(tenant, name, ct) is not { } collection)
            {
                return CollectionEndpoints.NotFound(name);
            }

            await jobs.CancelDocumentAsync(tenant, name, id, ct);
            // The row first: the document disappears from search in this statement; its chunks are removed after.
            if (!await documents.DeleteAsync(tenant, name, id, ct))
            {
                return DocumentNotFound(name, id);
            }

            await store.Collection(tenant, name, collection.EmbeddingModel).DeleteDocumentAsync(id, keepVersion: null, ct);
            return Results.Json(new { id, @object = "document", deleted = true });
        });
    }

    /// <summary>503 with Retry-After: the request may be repeated as it is once the embedding service is back.</summary>
    public static IResult Unavailable(HttpContext context, EmbeddingUnavailableException ex)
    {
        context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return OpenAiError.Result(503, $"{ex.Message} Retry in {RetryAfterSeconds} s.", null, "embedding_unavailable");
    }

    private static IResult DocumentNotFound(string collection, string id) =>
        OpenAiError.Result(404, $"Document '{id}' does not exist in collection '{collection}'.", "id", "document_not_found");

    private static object Shape(string collection, PreparedDocument document, string status, string? ingestionId = null) => new
    {
        @object = "document",
        document_id = document.DocumentId,
        collection,
        chunks = document.Chunks.Count,
        status,
        ingestion_id = ingestionId,
    };
}
