using AspireAi.ServiceDefaults;

namespace AspireAi.Retrieval.Ingestion;

/// <summary><c>GET /v1/ingestions/{id}</c>: a long ingestion's progress.</summary>
internal static class IngestionEndpoints
{
    public static void MapIngestionEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/ingestions/{id}", async (string id, HttpContext context, IngestionStore jobs, CancellationToken ct) =>
            await jobs.GetAsync(TenantHeaders.Tenant(context), id, ct) is { } job
                ? Results.Json(Shape(job))
                : OpenAiError.Result(404, $"Ingestion '{id}' does not exist.", "id", "ingestion_not_found"));
    }

    public static object Shape(IngestionJob job) => new
    {
        id = job.Id,
        @object = "ingestion",
        collection = job.Collection,
        document_id = job.DocumentId,
        status = job.Status,
        chunks_total = job.ChunksTotal,
        chunks_done = job.ChunksDone,
        progress = job.ChunksTotal == 0 ? 1.0 : Math.Round((double)job.ChunksDone / job.ChunksTotal, 4),
        error = job.Error,
        retry_at = job.RetryAt?.ToUnixTimeSeconds(),
        created_at = job.CreatedAt.ToUnixTimeSeconds(),
        updated_at = job.UpdatedAt.ToUnixTimeSeconds(),
    };
}
