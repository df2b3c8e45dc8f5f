using System.Text;
using System.Text.Json;
using AspireAi.Inference.Serving.Batches;
using AspireAi.ServiceDefaults;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace AspireAi.Inference.Serving;

/// <summary>
/// OpenAI's Files API, as far as the Batch API needs it: upload JSONL (purpose <c>batch</c>), get, content, list (OpenAI's
/// <c>purpose</c>, <c>limit</c>, <c>order</c>, <c>after</c>), delete. Every call acts for the tenant of
/// <c>X-AspireAi-Tenant</c> (set by the gateway, the only client that can reach this service): another tenant's file is
/// answered 404 exactly as a missing one.
/// </summary>
internal static class FilesEndpoints
{
    public static void MapFilesEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/files", UploadAsync).DisableAntiforgery();
        app.MapGet("/v1/files", (HttpContext context, BatchStore store) =>
        {
            if (BatchListQuery.Read(context.Request.Query, BatchListQuery.MaxFileLimit, BatchListQuery.MaxFileLimit, allowOrder: true, out var error) is not { } query)
            {
                return error!;
            }

            var purpose = context.Request.Query["purpose"].ToString();
            var files = store.Files.Of(TenantHeaders.Tenant(context)).Where(f => purpose.Length == 0 || f.Purpose == purpose);
            var page = query.Page(files, f => f.SortKey, out var hasMore);
            return Results.Json(new
            {
                @object = "list",
                data = page.Select(f => f.ToJson()),
                first_id = page.FirstOrDefault()?.Id,
                last_id = page.LastOrDefault()?.Id,
                has_more = hasMore,
            });
        });
        app.MapGet("/v1/files/{id}", (string id, HttpContext context, BatchStore store) =>
            store.Files.Get(id, TenantHeaders.Tenant(context)) is { } file ? Results.Json(file.ToJson()) : NotFound(id));
        app.MapGet("/v1/files/{id}/content", (string id, HttpContext context, BatchStore store) =>
            store.Files.Get(id, TenantHeaders.Tenant(context)) is { } file
                ? Results.File(store.Files.ContentPath(file.Id), "application/jsonl", file.Filename)
                : NotFound(id));
        app.MapDelete("/v1/files/{id}", (string id, HttpContext context, BatchStore store) =>
            store.Files.Delete(id, TenantHeaders.Tenant(context)) ? Results.Json(new { id, @object = "file", deleted = true }) : NotFound(id));
    }

    private static IResult NotFound(string id) =>
        OpenAiError.Result(StatusCodes.Status404NotFound, $"No file with id '{id}'.", "file_id", "file_not_found");

    private static async Task<IResult> UploadAsync(HttpContext context, BatchStore store, IOptions<InferenceOptions> options)
    {
        // Batch files are larger than chat requests: this endpoint has its own limit.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = options.Value.MaxFileBytes;
        }

        if (!context.Request.HasFormContentType)
        {
            return OpenAiError.Result(400, "Upload a file as multipart/form-data with fields 'file' and 'purpose'.", "file", "invalid_value");
        }

        var form = await context.Request.ReadFormAsync(context.RequestAborted);
        var purpose = form["purpose"].ToString();
        var file = form.Files.GetFile("file");
        var problems = new List<(string Field, string Problem)>();
        if (purpose != "batch")
        {
            problems.Add(("purpose", $"must be 'batch' (the only purpose this server accepts), not '{purpose}'"));
        }

        if (file is null)
        {
            problems.Add(("file", "is required"));
        }

        byte[] content = [];
        if (file is not null)
        {
            using var buffer = new MemoryStream();
            await file.CopyToAsync(buffer, context.RequestAborted);
            content = buffer.ToArray();
            if (purpose == "batch" && ValidateJsonl(content) is { } problem)
            {
                problems.Add(("file", problem));
            }
        }

        if (problems.Count > 0)
        {
            return OpenAiError.Result(400, "Invalid file upload: " + string.Join("; ", problems.Select(p => $"'{p.Field}' {p.Problem}")) + ".",
                string.Join(", ", problems.Select(p => p.Field)), "invalid_value");
        }

        return Results.Json(store.Files.Add(TenantHeaders.Tenant(context), file!.FileName, purpose, content).ToJson());
    }

    /// <summary>Every line a batch request: <c>{"custom_id", "method": "POST", "url", "body"}</c> with unique custom ids.</summary>
    private static string? ValidateJsonl(byte[] content)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var lines = Encoding.UTF8.GetString(content).Split('\n');
        var count = 0;
        for (var i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i]))
            {
                continue;
            }

            count++;
            try
            {
                using var document = JsonDocument.Parse(lines[i]);
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object
                    || !root.TryGetProperty("custom_id", out var id) || id.ValueKind != JsonValueKind.String
                    || !root.TryGetProperty("method", out var method) || method.GetString() != "POST"
                    || !root.TryGetProperty("url", out var url) || url.GetString() is not ("/v1/chat/completions" or "/v1/completions")
                    || !root.TryGetProperty("body", out var body) || body.ValueKind != JsonValueKind.Object)
                {
                    return $"line {i + 1} must be {{\"custom_id\": string, \"method\": \"POST\", \"url\": \"/v1/chat/completions\" or \"/v1/completions\", \"body\": object}}";
                }

                if (!ids.Add(id.GetString()!))
                {
                    return $"line {i + 1} repeats custom_id '{id.GetString()}'";
                }
            }
            catch (JsonException e)
            {
                return $"line {i + 1} is not JSON: {e.Message}";
            }
        }

        return count == 0 ? "has no requests" : null;
    }
}
