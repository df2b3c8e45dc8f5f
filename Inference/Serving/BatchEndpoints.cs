using System.Text;
using System.Text.Json;
using AspireAi.Inference.Serving.Batches;
using AspireAi.ServiceDefaults;

namespace AspireAi.Inference.Serving;

/// <summary>
/// OpenAI's Batch API: create (from an uploaded JSONL file), get, list (OpenAI's <c>limit</c> and <c>after</c>), cancel.
/// Runs in idle capacity (<see cref="BatchRunner"/>). Every call acts for the tenant of <c>X-AspireAi-Tenant</c>, as the
/// files endpoints do: another tenant's batch or file is answered exactly as a missing one.
/// </summary>
internal static class BatchEndpoints
{
    public static void MapBatchEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/batches", CreateAsync);
        app.MapGet("/v1/batches", (HttpContext context, BatchStore store) =>
        {
            if (BatchListQuery.Read(context.Request.Query, BatchListQuery.DefaultBatchLimit, BatchListQuery.MaxBatchLimit, allowOrder: false, out var error) is not { } query)
            {
                return error!;
            }

            var page = query.Page(store.Of(TenantHeaders.Tenant(context)), b => b.SortKey, out var hasMore);
            return Results.Json(new
            {
                @object = "list",
                data = page.Select(b => b.ToJson()),
                first_id = page.FirstOrDefault()?.Id,
                last_id = page.LastOrDefault()?.Id,
                has_more = hasMore,
            }, OpenAi.OpenAiJson.Options);
        });
        app.MapGet("/v1/batches/{id}", (string id, HttpContext context, BatchStore store) =>
            store.Get(id, TenantHeaders.Tenant(context)) is { } job ? Results.Json(job.ToJson(), OpenAi.OpenAiJson.Options) : NotFound(id));
        app.MapPost("/v1/batches/{id}/cancel", (string id, HttpContext context, BatchStore store) =>
        {
            if (store.Get(id, TenantHeaders.Tenant(context)) is not { } job)
            {
                return NotFound(id);
            }

            lock (job)
            {
                if (job.Record.Status is "validating" or "in_progress")
                {
                    job.Record.Status = "cancelling";
                    job.Record.CancellingAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                    store.Save(job);
                    job.Cancellation.Cancel();
                }
            }

            return Results.Json(job.ToJson(), OpenAi.OpenAiJson.Options);
        });
    }

    private static IResult NotFound(string id) =>
        OpenAiError.Result(StatusCodes.Status404NotFound, $"No batch with id '{id}'.", "batch_id", "batch_not_found");

    private static async Task<IResult> CreateAsync(HttpContext context, BatchStore store, ServedModel model)
    {
        using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        var reader = new OpenAi.RequestReader(body.RootElement);
        var inputFileId = reader.String("input_file_id", required: true);
        var endpoint = reader.String("endpoint", required: true);
        var window = reader.String("completion_window", required: true);
        if (endpoint is not null and not ("/v1/chat/completions" or "/v1/completions"))
        {
            reader.Fail("endpoint", $"must be /v1/chat/completions or /v1/completions, not '{endpoint}'");
        }

        if (window is not null and not "24h")
        {
            reader.Fail("completion_window", $"must be 24h, not '{window}'");
        }

        Dictionary<string, string>? metadata = null;
        if (reader.Element("metadata") is { ValueKind: JsonValueKind.Object } m)
        {
            metadata = m.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ToString());
        }

        var tenant = TenantHeaders.Tenant(context);
        var file = inputFileId is null ? null : store.Files.Get(inputFileId, tenant);
        if (inputFileId is not null && file is null)
        {
            reader.Fail("input_file_id", $"'{inputFileId}' is not an uploaded file");
        }
        else if (file is not null && endpoint is not null)
        {
            var lines = Encoding.UTF8.GetString(store.Files.ReadContent(file)).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var (line, i) in lines.Select((l, i) => (l, i)))
            {
                using var request = JsonDocument.Parse(line);
                if (request.RootElement.GetProperty("url").GetString() != endpoint)
                {
                    reader.Fail("input_file_id", $"line {i + 1} is for {request.RootElement.GetProperty("url").GetString()}, not the batch's endpoint {endpoint}");
                    break;
                }

                if (request.RootElement.GetProperty("body").TryGetProperty("model", out var name) && name.GetString() != model.Id)
                {
                    reader.Fail("input_file_id", $"line {i + 1} asks for model '{name.GetString()}'; this server serves '{model.Id}'");
                    break;
                }
            }
        }

        if (reader.HasErrors)
        {
            return reader.ErrorResult();
        }

        var job = store.Add(tenant, model.Id, endpoint!, inputFileId!, window!, metadata);
        return Results.Json(job.ToJson(), OpenAi.OpenAiJson.Options);
    }
}
