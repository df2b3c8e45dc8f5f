using System.Text.Json;
using System.Text.RegularExpressions;
using AspireAi.Retrieval.Ingestion;
using AspireAi.Retrieval.VectorStores;
using AspireAi.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace AspireAi.Retrieval.Collections;

/// <summary><c>/v1/collections</c>: the caller's tenant's collections.</summary>
internal static partial class CollectionEndpoints
{
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex ValidName();

    public static void MapCollectionEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPut("/v1/collections/{name}", async (string name, HttpContext context, CollectionStore collections,
            IOptions<RetrievalOptions> options, CancellationToken ct) =>
        {
            if (NameError(name) is { } invalid)
            {
                return invalid;
            }

            var model = options.Value.DefaultEmbeddingModel;
            if (context.Request.ContentLength is > 0 || context.Request.Headers.TransferEncoding.Count > 0)
            {
                using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: ct);
                if (body.RootElement.ValueKind != JsonValueKind.Object)
                {
                    return OpenAiError.Result(400, "The request body must be a JSON object, e.g. {\"embedding_model\": \"all-MiniLM-L6-v2\"}.");
                }

                if (body.RootElement.TryGetProperty("embedding_model", out var requested) && requested.ValueKind != JsonValueKind.Null)
                {
                    if (requested.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(requested.GetString()))
                    {
                        return OpenAiError.Result(400, "'embedding_model' must be the id of an embedding model served by Inference.", "embedding_model");
                    }

                    model = requested.GetString()!;
                }
            }

            var (collection, created) = await collections.CreateAsync(TenantHeaders.Tenant(context), name, model, ct);
            if (collection.EmbeddingModel != model)
            {
                return OpenAiError.Result(409,
                    $"Collection '{name}' already exists with embedding model '{collection.EmbeddingModel}'; its vectors cannot be mixed with '{model}'s. " +
                    "Delete it first or use another name.", "embedding_model", "collection_exists");
            }

            return Results.Json(Shape(collection), statusCode: created ? 201 : 200);
        });

        app.MapGet("/v1/collections", async (HttpContext context, CollectionStore collections, CancellationToken ct) =>
            Results.Json(new { @object = "list", data = (await collections.ListAsync(TenantHeaders.Tenant(context), ct)).Select(Shape) }));

        app.MapGet("/v1/collections/{name}", async (string name, HttpContext context, CollectionStore collections, CancellationToken ct) =>
            (await collections.ListAsync(TenantHeaders.Tenant(context), ct)).FirstOrDefault(c => c.Name == name) is { } collection
                ? Results.Json(Shape(collection))
                : NotFound(name));

        app.MapDelete("/v1/collections/{name}", async (string name, HttpContext context, CollectionStore collections,
            IngestionStore ingestions, IChunkStore chunks, CancellationToken ct) =>
        {
            var tenant = TenantHeaders.Tenant(context);
            if (await collections.GetAsync(tenant, name, ct) is not { } collection)
            {
                return NotFound(name);
            }

            // The row first: from this moment the collection and its documents are gone for every reader; chunks follow.
            await collections.DeleteAsync(tenant, name, ct);
            await ingestions.CancelCollectionAsync(tenant, name, ct);
            await chunks.Collection(tenant, name, collection.EmbeddingModel).EnsureCollectionDeletedAsync(ct);
            return Results.Json(new { id = name, @object = "collection", deleted = true });
        });
    }

    /// <summary>The 404 every endpoint under a collection answers for a name the tenant does not have.</summary>
    public static IResult NotFound(string name) =>
        OpenAiError.Result(404, $"Collection '{name}' does not exist. Create it with PUT /v1/collections/{name}.", "name", "collection_not_found");

    private static IResult? NameError(string name) => ValidName().IsMatch(name)
        ? null
        : OpenAiError.Result(400, $"Collection name '{name}' is invalid: 1–64 characters, letters, digits, '.', '_' or '-', starting with a letter or digit.", "name");

    private static object Shape(CollectionInfo c) => new
    {
        id = c.Name,
        @object = "collection",
        name = c.Name,
        embedding_model = c.EmbeddingModel,
        created_at = c.CreatedAt.ToUnixTimeSeconds(),
        document_count = c.Documents,
    };
}
