using Microsoft.Extensions.Options;

namespace AspireAi.Inference.Serving;

/// <summary><c>GET /v1/models</c>: the models this replica serves, in OpenAI's list shape.</summary>
internal static class ModelEndpoints
{
    public static void MapModelEndpoints(this IEndpointRouteBuilder app)
    {
        var startedAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        app.MapGet("/v1/models", (IOptions<InferenceOptions> options, Embeddings.EmbeddingModelCatalog embeddings) => Results.Json(new
        {
            @object = "list",
            data = embeddings.ModelIds.Prepend(options.Value.ModelId)
                .Select(id => new { id, @object = "model", created = startedAt, owned_by = "aspireai" }),
        }));
    }
}
