using AspireAi.ServiceDefaults;

namespace AspireAi.Agents.Threads;

/// <summary><c>/v1/threads</c>: conversations and their messages.</summary>
internal static class ThreadEndpoints
{
    public static void MapThreadEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/threads", async (HttpContext context, IThreadStore threads, CancellationToken ct) =>
        {
            var id = await threads.CreateAsync(TenantHeaders.Tenant(context), ct);
            return Results.Json(new { id, @object = "thread", created_at = DateTimeOffset.UtcNow.ToUnixTimeSeconds() }, statusCode: 201);
        });

        app.MapGet("/v1/threads/{threadId}", async (HttpContext context, string threadId, IThreadStore threads, CancellationToken ct) =>
            await threads.ExistsAsync(TenantHeaders.Tenant(context), threadId, ct)
                ? Results.Json(new { id = threadId, @object = "thread" })
                : NotFound(threadId));

        app.MapDelete("/v1/threads/{threadId}", async (HttpContext context, string threadId, IThreadStore threads, CancellationToken ct) =>
            await threads.DeleteAsync(TenantHeaders.Tenant(context), threadId, ct)
                ? Results.Json(new { id = threadId, @object = "thread.deleted", deleted = true })
                : NotFound(threadId));

        app.MapGet("/v1/threads/{threadId}/messages", async (HttpContext context, string threadId, IThreadStore threads, CancellationToken ct) =>
        {
            if (!await threads.ExistsAsync(TenantHeaders.Tenant(context), threadId, ct))
            {
                return NotFound(threadId);
            }

            var messages = await threads.MessagesAsync(threadId, ct);
            return Results.Json(new
            {
                @object = "list",
                data = messages.Select(m => new
                {
                    id = $"msg_{m.Seq}",
                    @object = "thread.message",
                    role = m.Message.Role.Value,
                    content = m.Message.Text,
                    run_id = m.RunId,
                    created_at = m.CreatedAt.ToUnixTimeSeconds(),
                }),
            });
        });
    }

    public static IResult NotFound(string threadId) =>
        OpenAiError.Result(404, $"No thread '{threadId}' exists for this tenant.", "thread_id", "thread_not_found");
}
