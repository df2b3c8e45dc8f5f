using System.Text.Json;
using AspireAi.Retrieval.Collections;
using AspireAi.Retrieval.Documents;
using AspireAi.Retrieval.Embeddings;
using AspireAi.Retrieval.VectorStores;
using AspireAi.ServiceDefaults;
using Microsoft.Extensions.VectorData;

namespace AspireAi.Retrieval.Search;

/// <summary><c>POST /v1/collections/{name}/search</c>: dense, keyword or hybrid (reciprocal rank fusion) search.</summary>
internal static class SearchEndpoints
{
    public const int MaxTopK = 100;

    public static void MapSearchEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/collections/{name}/search", async (string name, JsonElement body, HttpContext context, CollectionStore collections,
            DocumentStore documents, EmbeddingService embeddings, IChunkStore store, CancellationToken ct) =>
        {
            var tenant = TenantHeaders.Tenant(context);
            if (body.ValueKind != JsonValueKind.Object)
            {
                return OpenAiError.Result(400, "The request body must be a JSON object with 'query'.");
            }

            if (!body.TryGetProperty("query", out var queryElement) || queryElement.ValueKind != JsonValueKind.String
                || string.IsNullOrWhiteSpace(queryElement.GetString()))
            {
                return OpenAiError.Result(400, "'query' is required: the text to search for.", "query");
            }

            var topK = 5;
            if (body.TryGetProperty("top_k", out var topElement) && topElement.ValueKind != JsonValueKind.Null
                && (!topElement.TryGetInt32(out topK) || topK is < 1 or > MaxTopK))
            {
                return OpenAiError.Result(400, $"'top_k' must be an integer from 1 to {MaxTopK}.", "top_k");
            }

            var mode = "hybrid";
            if (body.TryGetProperty("mode", out var modeElement) && modeElement.ValueKind != JsonValueKind.Null)
            {
                mode = modeElement.ValueKind == JsonValueKind.String ? modeElement.GetString()! : "";
                if (mode is not ("dense" or "keyword" or "hybrid"))
                {
                    return OpenAiError.Result(400, $"'mode' must be \"dense\", \"keyword\" or \"hybrid\", not {modeElement.GetRawText()}.", "mode");
                }
            }

            var filter = ChunkFilter.Parse(body.TryGetProperty("filter", out var filterElement) ? filterElement : default, out var filterError);
            if (filterError is not null)
            {
                return OpenAiError.Result(400, filterError, "filter");
            }

            if (await collections.GetAsync(tenant, name, ct) is not { } collection)
            {
                return CollectionEndpoints.NotFound(name);
            }

            var query = queryElement.GetString()!;
            float[]? vector = null;
            if (mode != "keyword")
            {
                try
                {
                    vector = (await embeddings.EmbedAsync(collection.EmbeddingModel, [query], ct))[0];
                }
                catch (EmbeddingUnavailableException ex)
                {
                    return DocumentEndpoints.Unavailable(context, ex);
                }
                catch (EmbeddingRejectedException ex)
                {
                    return OpenAiError.Result(400, ex.Message, "embedding_model");
                }
            }

            // Ranked a little deeper than asked: results of a document version not (or no longer) published are dropped below.
            var depth = topK + 10;
            var chunks = store.Collection(tenant, name, collection.EmbeddingModel);
            var found = new List<VectorSearchResult<ChunkRecord>>();
            var results = mode switch
            {
                "dense" => chunks.SearchAsync(vector!, depth, new VectorSearchOptions<ChunkRecord> { Filter = filter.ToExpression() }, ct),
                "keyword" => chunks.KeywordSearchAsync(query, depth, filter, ct),
                _ => chunks.HybridSearchAsync(vector!, [query], depth, new HybridSearchOptions<ChunkRecord> { Filter = filter.ToExpression() }, ct),
            };
            await foreach (var result in results)
            {
                found.Add(result);
            }

            var visible = await documents.VisibleVersionsAsync(tenant, name, found.Select(r => r.Record.DocumentId), ct);
            return Results.Json(new
            {
                @object = "list",
                collection = name,
                mode,
                results = found
                    .Where(r => visible.GetValueOrDefault(r.Record.DocumentId) == r.Record.DocumentVersion)
                    .Take(topK)
                    .Select(r => new
                    {
                        document_id = r.Record.DocumentId,
                        chunk_index = r.Record.ChunkIndex,
                        text = r.Record.Text,
                        score = r.Score,
                        metadata = JsonDocument.Parse(r.Record.MetadataJson).RootElement,
                    }),
            });
        });
    }
}
