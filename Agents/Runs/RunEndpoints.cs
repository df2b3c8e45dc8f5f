using System.Text.Json;
using AspireAi.Agents.Definitions;
using AspireAi.Agents.Storage;
using AspireAi.Agents.Threads;
using AspireAi.ServiceDefaults;

namespace AspireAi.Agents.Runs;

/// <summary><c>/v1/threads/{id}/runs</c>: start a run (SSE events, or the finished run with <c>?stream=false</c>), read and replay runs, approve or reject tool calls.</summary>
internal static class RunEndpoints
{
    public static void MapRunEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/threads/{threadId}/runs", async (HttpContext context, string threadId, JsonElement body, IThreadStore threads,
            IAgentStore agents, RunStore runs, RunSupervisor supervisor, RunEventHub hub, CancellationToken ct) =>
        {
            var tenant = TenantHeaders.Tenant(context);
            if (!await threads.ExistsAsync(tenant, threadId, ct))
            {
                return ThreadEndpoints.NotFound(threadId);
            }

            if (body.ValueKind != JsonValueKind.Object)
            {
                throw RequestException.BadRequest("The body must be a JSON object with 'agent' and 'input'.");
            }

            var agentName = body.TryGetProperty("agent", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString()!
                : throw RequestException.BadRequest("'agent' (the agent's name) is required.", "agent");
            var input = body.TryGetProperty("input", out var i) && i.ValueKind == JsonValueKind.String && i.GetString()!.Trim().Length > 0 ? i.GetString()!
                : throw RequestException.BadRequest("'input' (a non-empty string) is required.", "input");
            var stream = !(context.Request.Query["stream"] == "false" || body.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.False);
            var agent = await agents.GetAsync(tenant, agentName, ct)
                ?? throw new RequestException(404, $"No agent named '{agentName}' exists for this tenant.", "agent", "agent_not_found");

            var run = await runs.CreateAsync(tenant, threadId, agent, input, ct);
            await supervisor.StartAsync(run.Id);
            return await AnswerAsync(context, runs, hub, run.Id, stream, untilPause: true, ct);
        });

        app.MapGet("/v1/threads/{threadId}/runs", async (HttpContext context, string threadId, IThreadStore threads, RunStore runs, CancellationToken ct) =>
            await threads.ExistsAsync(TenantHeaders.Tenant(context), threadId, ct)
                ? Results.Json(new { @object = "list", data = await runs.ListAsync(threadId, ct) }, Json.Options)
                : ThreadEndpoints.NotFound(threadId));

        app.MapGet("/v1/threads/{threadId}/runs/{runId}", async (HttpContext context, string threadId, string runId, RunStore runs,
            RunEventHub hub, CancellationToken ct) =>
        {
            await FindAsync(context, runs, threadId, runId, ct);
            var stream = context.Request.Query["stream"] == "true";
            return stream
                ? await AnswerAsync(context, runs, hub, runId, stream: true, untilPause: false, ct)
                : Results.Json(await WithEventsAsync(runs, runId, ct), Json.Options);
        });

        app.MapPost("/v1/threads/{threadId}/runs/{runId}/approve", (HttpContext context, string threadId, string runId, RunStore runs,
            RunEventHub hub, CancellationToken ct) => DecideAsync(context, threadId, runId, approved: true, runs, hub, ct));
        app.MapPost("/v1/threads/{threadId}/runs/{runId}/reject", (HttpContext context, string threadId, string runId, RunStore runs,
            RunEventHub hub, CancellationToken ct) => DecideAsync(context, threadId, runId, approved: false, runs, hub, ct));
    }

    private static async Task<IResult> DecideAsync(HttpContext context, string threadId, string runId, bool approved, RunStore runs,
        RunEventHub hub, CancellationToken ct)
    {
        await FindAsync(context, runs, threadId, runId, ct);
        string? callId = null, reason = null;
        if (context.Request.ContentLength > 0)
        {
            var body = await context.Request.ReadFromJsonAsync<JsonElement>(ct);
            callId = body.TryGetProperty("call_id", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
            reason = body.TryGetProperty("reason", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
        }

        if (!await runs.DecideAsync(runId, callId, approved, reason, ct))
        {
            return OpenAiError.Result(409, callId is null
                ? $"Run '{runId}' has no tool call waiting for approval."
                : $"Run '{runId}' has no tool call '{callId}' waiting for approval.", callId is null ? null : "call_id", "no_pending_approval");
        }

        hub.SignalDecision(runId);
        return Results.Json(await runs.GetAsync(runId, ct), Json.Options);
    }

    private static async Task<IResult> AnswerAsync(HttpContext context, RunStore runs, RunEventHub hub, string runId, bool stream, bool untilPause,
        CancellationToken ct)
    {
        if (stream)
        {
            await RunStreamer.StreamAsync(context, runs, hub, runId, untilPause, ct);
            return Results.Empty;
        }

        // ?stream=false: wait for the end (or a pause for approval) without writing the events, then answer the run.
        while (true)
        {
            var run = (await runs.GetAsync(runId, ct))!;
            if (RunStatus.IsTerminal(run.Status) || run.Status == RunStatus.RequiresAction)
            {
                return Results.Json(await WithEventsAsync(runs, runId, ct), Json.Options);
            }

            using var subscription = hub.Subscribe(runId);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
            wait.CancelAfter(TimeSpan.FromSeconds(1));
            try
            {
                await foreach (var runEvent in subscription.Reader.ReadAllAsync(wait.Token))
                {
                    if (RunEventTypes.Ends(runEvent.Type) || runEvent.Type == RunEventTypes.ApprovalRequired)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
            }
        }
    }

    private static async Task<RunRecord> WithEventsAsync(RunStore runs, string runId, CancellationToken ct)
    {
        var run = (await runs.GetAsync(runId, ct))!;
        return run with { Events = await runs.EventsAsync(runId, 0, ct) };
    }

    private static async Task<RunRecord> FindAsync(HttpContext context, RunStore runs, string threadId, string runId, CancellationToken ct)
    {
        var run = await runs.GetAsync(runId, ct);
        return run is not null && run.ThreadId == threadId && run.Tenant == TenantHeaders.Tenant(context)
            ? run
            : throw new RequestException(404, $"No run '{runId}' exists on thread '{threadId}' for this tenant.", "run_id", "run_not_found");
    }
}
