using System.Text.Json;
using AspireAi.Agents.Definitions;
using AspireAi.Agents.Runs;
using AspireAi.Agents.Storage;
using AspireAi.Agents.Threads;
using AspireAi.ServiceDefaults;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.ChatCompletions;

/// <summary>
/// <c>POST /v1/chat/completions</c> with <c>"model": "agent:&lt;name&gt;"</c>: the agent as a model, so plain OpenAI and
/// IChatClient consumers use agents without the agents API. The request's earlier messages become a new thread's history,
/// its last user message the run's input; the answer streams as <c>chat.completion.chunk</c>s (or one <c>chat.completion</c>).
/// The run stays inspectable: its id is in the <c>aspireai</c> field; a stream also carries the run's step events
/// (plan, steps, tool calls and results, approvals) as chunks with an empty delta and <c>aspireai.event</c>.
/// </summary>
internal static class AgentChatCompletionsEndpoints
{
    public const string Prefix = "agent:";

    public static void MapAgentChatCompletions(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/chat/completions", async (HttpContext context, JsonElement body, IAgentStore agents, IThreadStore threads,
            RunStore runs, RunSupervisor supervisor, RunEventHub hub, CancellationToken ct) =>
        {
            var model = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.String
                ? m.GetString()! : throw RequestException.BadRequest("'model' is required.", "model");
            if (!model.StartsWith(Prefix, StringComparison.Ordinal))
            {
                return OpenAiError.Result(404, $"This service serves only agent models ('agent:<name>'), not '{model}'.", "model", "model_not_found");
            }

            var tenant = TenantHeaders.Tenant(context);
            var agent = await agents.GetAsync(tenant, model[Prefix.Length..], ct)
                ?? throw new RequestException(404, $"The model '{model}' does not exist: no agent named '{model[Prefix.Length..]}' for this tenant.", "model", "model_not_found");
            var messages = ParseMessages(body);
            var last = messages.LastOrDefault();
            if (last is null || last.Role != ChatRole.User || string.IsNullOrWhiteSpace(last.Text))
            {
                throw RequestException.BadRequest("The last message must be a non-empty user message: it is the agent's input.", "messages");
            }

            var stream = body.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;
            var threadId = await threads.CreateAsync(tenant, ct);
            await threads.AppendAsync(threadId, null, messages.Take(messages.Count - 1).Where(x => x.Role != ChatRole.System), ct);
            var run = await runs.CreateAsync(tenant, threadId, agent, last.Text, ct);
            await supervisor.StartAsync(run.Id);
            var id = "chatcmpl-" + run.Id["run_".Length..];
            var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            if (!stream)
            {
                await foreach (var _ in RunStreamer.ReadAsync(runs, hub, run.Id, untilPause: true, ct))
                {
                }

                var done = (await runs.GetAsync(run.Id, ct))!;
                return Results.Json(new
                {
                    id,
                    @object = "chat.completion",
                    created,
                    model,
                    choices = new[] { new { index = 0, message = new { role = "assistant", content = done.Output }, finish_reason = FinishReason(done.Status) } },
                    usage = Usage(done.Usage),
                    aspireai = new { run_id = run.Id, thread_id = threadId, status = done.Status, citations = done.Citations },
                }, Json.Options);
            }

            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-cache";
            await WriteChunkAsync(context, new { id, @object = "chat.completion.chunk", created, model, choices = new[] { new { index = 0, delta = new { role = "assistant", content = "" }, finish_reason = (string?)null } } }, ct);
            var streamedAny = false;
            await foreach (var runEvent in RunStreamer.ReadAsync(runs, hub, run.Id, untilPause: true, ct))
            {
                if (runEvent.Type == RunEventTypes.Token)
                {
                    streamedAny = true;
                    await WriteChunkAsync(context, new { id, @object = "chat.completion.chunk", created, model, choices = new[] { new { index = 0, delta = new { content = runEvent.Data.GetProperty("delta").GetString() }, finish_reason = (string?)null } } }, ct);
                }
                else if (RunEventTypes.IsStep(runEvent.Type))
                {
                    // The run's steps as they happen, beside the answer's text: an empty delta (OpenAI clients skip it) and
                    // the run event itself in the aspireai field, exactly as GET /v1/threads/{id}/runs/{run_id} returns it.
                    await WriteChunkAsync(context, new
                    {
                        id, @object = "chat.completion.chunk", created, model,
                        choices = new[] { new { index = 0, delta = new { }, finish_reason = (string?)null } },
                        aspireai = new { run_id = run.Id, thread_id = threadId, @event = new { seq = runEvent.Seq, type = runEvent.Type, data = runEvent.Data } },
                    }, ct);
                }
                else if (runEvent.Type == RunEventTypes.Answer && !streamedAny)
                {
                    // An answer without token events (a run ended by a limit, or resumed after its answer): send it whole.
                    await WriteChunkAsync(context, new { id, @object = "chat.completion.chunk", created, model, choices = new[] { new { index = 0, delta = new { content = runEvent.Data.GetProperty("text").GetString() }, finish_reason = (string?)null } } }, ct);
                }
            }

            var final = (await runs.GetAsync(run.Id, ct))!;
            await WriteChunkAsync(context, new
            {
                id, @object = "chat.completion.chunk", created, model,
                choices = new[] { new { index = 0, delta = new { }, finish_reason = FinishReason(final.Status) } },
                usage = Usage(final.Usage),
                aspireai = new { run_id = run.Id, thread_id = threadId, status = final.Status, citations = final.Citations },
            }, ct);
            await context.Response.WriteAsync("data: [DONE]\n\n", ct);
            return Results.Empty;
        });
    }

    private static string FinishReason(string status) => status == RunStatus.Completed ? "stop" : "length";

    private static object Usage(JsonElement usage) => new
    {
        prompt_tokens = usage.TryGetProperty("prompt_tokens", out var p) ? p.GetInt64() : 0,
        completion_tokens = usage.TryGetProperty("completion_tokens", out var c) ? c.GetInt64() : 0,
        total_tokens = usage.TryGetProperty("total_tokens", out var t) ? t.GetInt64() : 0,
    };

    private static List<ChatMessage> ParseMessages(JsonElement body)
    {
        if (!body.TryGetProperty("messages", out var array) || array.ValueKind != JsonValueKind.Array || array.GetArrayLength() == 0)
        {
            throw RequestException.BadRequest("'messages' must be a non-empty array.", "messages");
        }

        var messages = new List<ChatMessage>();
        var index = 0;
        foreach (var item in array.EnumerateArray())
        {
            var param = $"messages[{index++}]";
            var role = item.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : throw RequestException.BadRequest($"{param}.role is required.", $"{param}.role");
            if (role is not ("system" or "developer" or "user" or "assistant"))
            {
                throw RequestException.BadRequest($"{param}.role '{role}' is not accepted by agent models (system, developer, user, assistant).", $"{param}.role");
            }

            var content = item.TryGetProperty("content", out var c) ? c : default;
            var text = content.ValueKind switch
            {
                JsonValueKind.String => content.GetString()!,
                JsonValueKind.Array => string.Concat(content.EnumerateArray()
                    .Where(p => p.TryGetProperty("type", out var t) && t.GetString() == "text")
                    .Select(p => p.GetProperty("text").GetString())),
                JsonValueKind.Null or JsonValueKind.Undefined => "",
                _ => throw RequestException.BadRequest($"{param}.content must be a string or an array of content parts.", $"{param}.content"),
            };
            messages.Add(new ChatMessage(role is "developer" ? ChatRole.System : new ChatRole(role), text));
        }

        return messages;
    }

    private static async Task WriteChunkAsync(HttpContext context, object chunk, CancellationToken ct)
    {
        await context.Response.WriteAsync($"data: {JsonSerializer.Serialize(chunk, Json.Options)}\n\n", ct);
        await context.Response.Body.FlushAsync(ct);
    }
}
