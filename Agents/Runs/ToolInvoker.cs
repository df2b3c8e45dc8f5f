using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AspireAi.Agents.Storage;
using AspireAi.Agents.Tools;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Runs;

/// <summary>
/// The <c>FunctionInvoker</c> of each step's <see cref="FunctionInvokingChatClient"/>: every tool call of a run passes here.
/// A call's idempotency key is (step, tool, canonical arguments, how many times this step already made that same call):
/// it is recorded before the tool runs and its result after; the same key again — the step re-run after a restart, making
/// the same calls in the same order — gets the recorded result and never runs the tool again, while a step that
/// deliberately repeats a call (list files, write, list again) still runs each one. A call interrupted mid-way runs again only when the tool is read-only. Calls to tools that require approval
/// pause the run (status <c>requires_action</c>) until <c>POST …/approve</c> or <c>…/reject</c>.
/// </summary>
internal sealed class ToolInvoker(RunExecution run, IReadOnlyDictionary<string, ToolFunction> tools, ILogger logger)
{
    private static readonly TimeSpan DecisionPoll = TimeSpan.FromSeconds(1);
    private readonly Dictionary<string, int> _occurrences = [];

    public async ValueTask<object?> InvokeAsync(string stepKey, FunctionInvocationContext context, CancellationToken ct)
    {
        var name = context.Function.Name;
        var callId = context.CallContent.CallId;
        var arguments = Canonical(context.Arguments);
        await run.Events.EmitAsync(RunEventTypes.ToolCall, new { step = stepKey, call_id = callId, tool = name, arguments = JsonNode.Parse(arguments) });
        if (!tools.TryGetValue(name, out var tool))
        {
            return await ResultAsync(stepKey, callId, name, $"error: there is no tool named '{name}'.", cached: false);
        }

        var call = $"{stepKey}/{name}/{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(arguments)))[..32]}";
        int occurrence;
        lock (_occurrences)
        {
            occurrence = _occurrences[call] = _occurrences.GetValueOrDefault(call) + 1;
        }

        var key = $"{call}/{occurrence}";
        var existing = await run.Store.BeginToolCallAsync(run.Id, key, callId, stepKey, name, arguments,
            tool.RequiresApproval ? "awaiting_approval" : "started", ct);
        if (existing is { Status: "completed" or "failed" })
        {
            run.Tools.Restore(existing.Citations);
            return await ResultAsync(stepKey, callId, name, existing.Result ?? "", cached: true);
        }

        if (existing is { Status: "started" } && !tool.IsReadOnly)
        {
            // The previous attempt may have had effects: running it again could do them twice.
            const string interrupted = "error: this call was interrupted by a restart before its result was recorded; it was not run again because it may have had effects. Check its effects before retrying.";
            await run.Store.SetToolCallAsync(run.Id, key, "failed", interrupted, ct);
            return await ResultAsync(stepKey, callId, name, interrupted, cached: false);
        }

        if (tool.RequiresApproval && existing is null or { Status: "awaiting_approval" })
        {
            var decision = await AwaitDecisionAsync(stepKey, callId, name, arguments, key, ct);
            if (decision.Status == "rejected")
            {
                var rejected = $"The call was rejected by a person{(decision.DecisionReason is { Length: > 0 } r ? $": {r}" : "")}. Do not retry it.";
                await run.Store.SetToolCallAsync(run.Id, key, "failed", rejected, ct);
                return await ResultAsync(stepKey, callId, name, rejected, cached: false);
            }

            await run.Store.SetToolCallAsync(run.Id, key, "started", null, ct);
        }
        else if (existing is { Status: "rejected" })
        {
            return await ResultAsync(stepKey, callId, name, "The call was rejected by a person. Do not retry it.", cached: true);
        }

        try
        {
            run.Budget.TakeToolCall();
        }
        catch (RunLimitException limit)
        {
            // Thrown here it would become a tool result; end the function loop and let the executor end the run.
            run.LimitReached = limit;
            context.Terminate = true;
            await run.Store.SetToolCallAsync(run.Id, key, "failed", $"error: {limit.Message}", CancellationToken.None);
            return await ResultAsync(stepKey, callId, name, $"error: {limit.Message}", cached: false);
        }

        var citationsBefore = run.Tools.CitationCount;
        string result;
        string status;
        try
        {
            var value = await tool.Function.InvokeAsync(context.Arguments, ct);
            result = value switch
            {
                null => "",
                string s => s,
                JsonElement e => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText(),
                _ => JsonSerializer.Serialize(value, Json.Options),
            };
            status = "completed";
        }
        catch (ToolException ex)
        {
            result = $"error: {ex.Message}";
            status = "failed";
        }
        catch (Exception ex) when (ex is not OperationCanceledException && !ct.IsCancellationRequested)
        {
            logger.LogWarning(ex, "Tool {Tool} failed in run {RunId}", name, run.Id);
            result = $"error: {ex.GetType().Name}: {ex.Message}";
            status = "failed";
        }

        await run.Store.SetToolCallAsync(run.Id, key, status, result, CancellationToken.None, run.Tools.CitationsAfter(citationsBefore));
        return await ResultAsync(stepKey, callId, name, result, cached: false);
    }

    private async Task<ToolCallRecord> AwaitDecisionAsync(string stepKey, string callId, string name, string arguments, string key, CancellationToken ct)
    {
        await run.Store.SetStatusAsync(run.Id, RunStatus.RequiresAction, ct);
        await run.Events.EmitAsync(RunEventTypes.ApprovalRequired, new { step = stepKey, call_id = callId, tool = name, arguments = JsonNode.Parse(arguments) });
        while (true)
        {
            var signal = run.Hub.DecisionSignal(run.Id);
            var record = await run.Store.GetToolCallAsync(run.Id, key, ct);
            if (record is { Status: not "awaiting_approval" })
            {
                await run.Store.SetStatusAsync(run.Id, RunStatus.Running, ct);
                await run.Events.EmitAsync(RunEventTypes.ApprovalDecided, new { step = stepKey, call_id = callId, tool = name, approved = record.Status != "rejected", reason = record.DecisionReason });
                return record;
            }

            // Another replica may take the decision: the database is polled as well as the local signal awaited.
            await Task.WhenAny(signal, Task.Delay(DecisionPoll, ct));
            ct.ThrowIfCancellationRequested();
        }
    }

    private async Task<string> ResultAsync(string stepKey, string callId, string name, string result, bool cached)
    {
        await run.Events.EmitAsync(RunEventTypes.ToolResult, new { step = stepKey, call_id = callId, tool = name, result = Truncate(result), cached });
        return result;
    }

    private static string Truncate(string text) => text.Length <= 4000 ? text : text[..4000] + "…";

    /// <summary>Arguments as JSON with keys sorted, so that the same call always has the same key.</summary>
    private static string Canonical(AIFunctionArguments arguments)
    {
        var node = JsonSerializer.SerializeToNode(arguments.ToDictionary(a => a.Key, a => a.Value), Json.Options);
        return Sort(node)?.ToJsonString() ?? "{}";
    }

    private static JsonNode? Sort(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sort(p.Value)))),
        JsonArray a => new JsonArray([.. a.Select(Sort)]),
        null => null,
        _ => JsonNode.Parse(node.ToJsonString()),
    };
}
