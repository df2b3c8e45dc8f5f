using System.Text;
using System.Text.Json;
using AspireAi.Agents.Definitions;
using AspireAi.Agents.Memory;
using AspireAi.Agents.Models;
using AspireAi.Agents.Planning;
using AspireAi.Agents.Storage;
using AspireAi.Agents.Threads;
using AspireAi.Agents.Tools;
using Microsoft.Agents.AI;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace AspireAi.Agents.Runs;

/// <summary>
/// Executes a run to its end, checkpointing each step in PostgreSQL: with planning, the plan (JSON-schema structured
/// output from the planner model), then the plan's steps in dependency order — each as soon as its dependencies are done,
/// so independent steps run concurrently — with a bounded re-plan when a step fails, then the final answer, streamed.
/// Without planning, the answer step alone, with the agent's tools. A resumed run skips every step whose checkpoint exists.
/// Every model call is a Microsoft Agent Framework <see cref="ChatClientAgent"/> run over the router's pipeline.
/// </summary>
internal sealed class RunExecutor(
    RunStore store,
    RunEventHub hub,
    IThreadStore threads,
    ModelRouter router,
    ToolCatalog catalog,
    SemanticMemory memory,
    IOptions<AgentsOptions> options,
    ILoggerFactory loggers,
    TimeProvider time)
{
    private const string PlanKey = "plan";
    private const string AnswerKey = "answer";
    private readonly ILogger _logger = loggers.CreateLogger<RunExecutor>();

    /// <summary>Runs <paramref name="record"/> until it ends; returns without finishing it when <paramref name="ct"/> stops this instance.</summary>
    public async Task ExecuteAsync(RunRecord record, CancellationToken ct)
    {
        var completed = await store.CompletedStepsAsync(record.Id, ct);
        var lastSeq = await store.LastEventSeqAsync(record.Id, ct);
        var events = new RunEventSink(record.Id, lastSeq, store, hub);
        var budget = new RunBudget(record.Definition.Limits, DateTimeOffset.FromUnixTimeSeconds(record.CreatedAt), time);
        RestoreBudget(budget, record.Usage);
        var workspace = Path.Combine(options.Value.WorkspaceRoot, record.Id);
        Directory.CreateDirectory(workspace);
        var toolContext = new ToolContext(record.Tenant, record.Id, record.Definition, workspace);
        var run = new RunExecution(record, store, hub, events, budget, toolContext);
        foreach (var step in completed.Values)
        {
            if (step.TryGetProperty("citations", out var cited))
            {
                toolContext.Restore(cited.Deserialize<List<Citation>>(Json.Options) ?? []);
            }
        }

        if (lastSeq == 0)
        {
            await events.EmitAsync(RunEventTypes.Created, new { run_id = record.Id, thread_id = record.ThreadId, agent = record.Agent, input = record.Input });
        }
        else if (completed.ContainsKey(AnswerKey))
        {
            await events.EmitAsync(RunEventTypes.Resumed, new { completed_steps = completed.Keys.Order().ToArray(), discarded_token_events = 0 });
        }
        else
        {
            // The answer step runs again from its start (a stream cannot continue another's tokens): the token events an
            // interrupted attempt streamed are deleted with this event, so the replay reads as one answer. A client that
            // showed them live drops them when discarded_token_events > 0.
            await events.EmitDiscardingTokensAsync(RunEventTypes.Resumed, AnswerKey,
                discarded => new { completed_steps = completed.Keys.Order().ToArray(), discarded_token_events = discarded });
        }

        await store.SetStatusAsync(record.Id, RunStatus.Running, ct);
        using var wallClock = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var remaining = budget.Deadline - time.GetUtcNow();
        wallClock.CancelAfter(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero);
        var results = new StepResults();
        try
        {
            var tools = await catalog.CreateAsync(toolContext, wallClock.Token);
            if (record.Definition.Planning)
            {
                await ExecutePlanAsync(run, tools, completed, results, wallClock.Token);
            }

            var answer = completed.TryGetValue(AnswerKey, out var done)
                ? done.GetProperty("text").GetString()!
                : await AnswerAsync(run, tools, results, wallClock.Token);
            var status = results.FailedStep is null ? RunStatus.Completed : RunStatus.Incomplete;
            await FinishAsync(run, status, answer, results.FailedStep is { } failed
                ? new { code = "step_failed", message = $"Step '{failed}' failed after {record.Definition.Limits.MaxReplans} re-plan(s); the answer uses the steps that succeeded." }
                : null);
        }
        catch (Exception ex) when (ex is RunLimitException || (ex is OperationCanceledException && wallClock.IsCancellationRequested && !ct.IsCancellationRequested))
        {
            var limit = ex as RunLimitException ?? new RunLimitException("max_wall_seconds", $"The run reached its wall-time limit of {record.Definition.Limits.MaxWallSeconds} s.");
            await FinishAsync(run, RunStatus.Incomplete, results.PartialAnswer(limit.Message), new { code = limit.Limit, message = limit.Message });
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            _logger.LogInformation("Run {RunId} interrupted by shutdown; it resumes from its last completed step.", record.Id);
            await store.SaveUsageAsync(record.Id, Json.Element(budget.Snapshot()), CancellationToken.None);
            throw;
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Run {RunId} failed", record.Id);
            await FinishAsync(run, RunStatus.Failed, results.Count > 0 ? results.PartialAnswer(ex.Message) : null,
                new
                {
                    code = ex switch
                    {
                        ModelUnavailableException => "model_unavailable",
                        PlanningException => "planning_failed",
                        ToolException => "tool_unavailable", // the agent's tools could not be set up (e.g. an MCP server unreachable)
                        _ => "run_failed",
                    },
                    message = ex.Message,
                });
        }
    }

    // ── Planning ──

    private async Task ExecutePlanAsync(RunExecution run, IReadOnlyList<ToolFunction> tools, Dictionary<string, JsonElement> completed,
        StepResults results, CancellationToken ct)
    {
        var limits = run.Record.Definition.Limits;
        var revision = Enumerable.Range(0, limits.MaxReplans + 1).LastOrDefault(r => completed.ContainsKey(PlanKeyOf(r)));
        var plan = completed.TryGetValue(PlanKeyOf(revision), out var saved)
            ? saved.GetProperty("plan").Deserialize<Plan>(Json.Options)!
            : await MakePlanAsync(run, tools, revision, results, failure: null, ct);

        // Results of every completed step, of this plan and of earlier ones (a revised plan builds on them).
        foreach (var (key, value) in completed.Where(c => c.Key.StartsWith("step:", StringComparison.Ordinal)))
        {
            results.Add(key, value.GetProperty("task").GetString()!, value.GetProperty("text").GetString()!);
        }

        while (true)
        {
            var failure = await ExecuteStepsAsync(run, tools, plan, revision, results, ct);
            if (failure is null)
            {
                return;
            }

            if (revision >= limits.MaxReplans)
            {
                results.FailedStep = failure.Value.Key;
                return;
            }

            revision++;
            plan = await MakePlanAsync(run, tools, revision, results, failure, ct);
        }
    }

    private static string PlanKeyOf(int revision) => revision == 0 ? PlanKey : $"{PlanKey}.{revision}";

    private static string StepKey(int revision, string id) => $"step:{revision}:{id}";

    /// <summary>Runs the plan's steps, each once its dependencies are done; returns the first failure (after the running steps end).</summary>
    private async Task<(string Key, string Error)?> ExecuteStepsAsync(RunExecution run, IReadOnlyList<ToolFunction> tools, Plan plan, int revision,
        StepResults results, CancellationToken ct)
    {
        var done = plan.Steps.Where(s => results.Has(StepKey(revision, s.Id))).Select(s => s.Id).ToHashSet();
        var pending = plan.Steps.Where(s => !done.Contains(s.Id)).ToList();
        var running = new Dictionary<Task<(PlanStep Step, string? Error)>, PlanStep>();
        (string, string)? failure = null;
        using var stepsCancel = CancellationTokenSource.CreateLinkedTokenSource(ct);
        while (true)
        {
            if (failure is null)
            {
                foreach (var step in pending.Where(s => s.DependsOn.All(done.Contains) && !running.ContainsValue(s)).ToList())
                {
                    running[RunStepAsync(run, tools, step, revision, results, plan, stepsCancel.Token)] = step;
                }
            }

            if (running.Count == 0)
            {
                return failure;
            }

            var finished = await Task.WhenAny(running.Keys);
            running.Remove(finished);
            try
            {
                var (step, error) = await finished;
                pending.Remove(step);
                if (error is null)
                {
                    done.Add(step.Id);
                }
                else
                {
                    failure ??= (StepKey(revision, step.Id), error);
                }
            }
            catch
            {
                // A limit or a shutdown: stop the other steps, then let the exception end the run.
                await stepsCancel.CancelAsync();
                await Task.WhenAll(running.Keys.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
                throw;
            }
        }
    }

    private async Task<(PlanStep, string?)> RunStepAsync(RunExecution run, IReadOnlyList<ToolFunction> tools, PlanStep step, int revision,
        StepResults results, Plan plan, CancellationToken ct)
    {
        await Task.Yield();
        var key = StepKey(revision, step.Id);
        run.Budget.TakeStep();
        await run.Events.EmitAsync(RunEventTypes.StepStarted, new { step = key, id = step.Id, task = step.Task, tool = step.Tool, depends_on = step.DependsOn });
        var stepTools = step.Tool is { Length: > 0 } name ? tools.Where(t => t.Name == name).ToList() : [];
        var context = new StringBuilder()
            .AppendLine($"Goal: {run.Record.Input}")
            .AppendLine($"Your step: {step.Task}");
        foreach (var dependency in step.DependsOn)
        {
            var dependencyKey = StepKey(revision, dependency);
            context.AppendLine($"Result of step {dependency} ({plan.Steps.First(s => s.Id == dependency).Task}): {results.Text(dependencyKey)}");
        }

        try
        {
            var agent = CreateAgent(run, ModelRole.Worker, key, stepTools,
                run.Record.Definition.Instructions + "\n\nYou are carrying out one step of a plan. Use your tool if the step needs it, then reply with the step's result only.");
            var session = await agent.CreateSessionAsync(ct);
            var response = await agent.RunAsync(context.ToString(), session, cancellationToken: ct);
            run.ThrowIfLimitReached();
            var text = response.Text;
            results.Add(key, step.Task, text);
            await run.Store.SaveStepAsync(run.Id, key, "completed",
                Json.Element(new { task = step.Task, tool = step.Tool, text, citations = run.Tools.Citations.ToArray() }), CancellationToken.None);
            await run.Store.SaveUsageAsync(run.Id, Json.Element(run.Budget.Snapshot()), CancellationToken.None);
            await run.Events.EmitAsync(RunEventTypes.StepCompleted, new { step = key, id = step.Id, result = text });
            return (step, null);
        }
        catch (Exception ex) when (ex is not RunLimitException and not OperationCanceledException)
        {
            _logger.LogWarning(ex, "Step {Step} of run {RunId} failed", key, run.Id);
            await run.Events.EmitAsync(RunEventTypes.StepFailed, new { step = key, id = step.Id, error = ex.Message });
            return (step, ex.Message);
        }
    }

    private async Task<Plan> MakePlanAsync(RunExecution run, IReadOnlyList<ToolFunction> tools, int revision, StepResults results,
        (string Key, string Error)? failure, CancellationToken ct)
    {
        var definition = run.Record.Definition;
        var toolList = string.Join("\n", tools.Select(t => $"- {t.Name}: {t.Function.Description}"));
        var instructions = $$"""
            You plan how to reach a goal with tools. Reply with JSON only: {"steps": [{"id", "task", "tool", "depends_on"}]}.
            At most {{definition.Limits.MaxSteps}} steps. Each step uses at most one tool, named exactly as below, or null.
            A step lists in depends_on the ids of the steps whose results it needs; steps without dependencies run at once.
            Tools:
            {{(toolList.Length > 0 ? toolList : "(none)")}}
            """;
        var prompt = new StringBuilder($"Goal: {run.Record.Input}\n");
        if (failure is { } f)
        {
            prompt.AppendLine($"A previous plan's step {f.Key} failed: {f.Error}");
            prompt.AppendLine("Completed steps and their results (do not repeat them; new steps cannot depend on them by id):");
            foreach (var (task, text) in results.All())
            {
                prompt.AppendLine($"- {task}: {text}");
            }

            prompt.AppendLine("Plan only the remaining work.");
        }

        var planner = CreateAgent(run, ModelRole.Planner, PlanKeyOf(revision), [], instructions);
        var toolNames = tools.Select(t => t.Name).ToList();
        List<string> problems = [];
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var session = await planner.CreateSessionAsync(ct);
            Plan? plan;
            try
            {
                var response = await planner.RunAsync<Plan>(prompt.ToString(), session, Json.Options, cancellationToken: ct);
                plan = response.Result;
            }
            catch (JsonException ex)
            {
                problems = [$"the reply was not a plan in the required JSON shape: {ex.Message}"];
                prompt.AppendLine($"Your previous reply was invalid: {problems[0]}. Reply with the JSON plan only.");
                continue;
            }

            problems = plan is null ? ["the reply was empty"] : PlanValidator.Problems(plan, toolNames, definition.Limits.MaxSteps);
            if (problems.Count == 0)
            {
                await run.Store.SaveStepAsync(run.Id, PlanKeyOf(revision), "completed", Json.Element(new { plan }), CancellationToken.None);
                await run.Events.EmitAsync(revision == 0 ? RunEventTypes.Plan : RunEventTypes.Replan,
                    new { revision, plan, reason = failure is { } r ? $"step {r.Key} failed: {r.Error}" : null });
                return plan!;
            }

            prompt.AppendLine($"Your previous plan was invalid: {string.Join("; ", problems)}. Reply with a corrected plan.");
        }

        throw new PlanningException($"The planner produced no valid plan: {string.Join("; ", problems)}.");
    }

    // ── The answer ──

    private async Task<string> AnswerAsync(RunExecution run, IReadOnlyList<ToolFunction> tools, StepResults results, CancellationToken ct)
    {
        run.Budget.TakeStep();
        await run.Events.EmitAsync(RunEventTypes.StepStarted, new { step = AnswerKey });
        var definition = run.Record.Definition;
        var instructions = definition.Instructions;
        if (tools.Any(t => t.Name == ToolTypes.SearchDocuments))
        {
            instructions += "\n\nWhen you use search results, cite them by their labels, e.g. [1].";
        }

        var message = run.Record.Input;
        if (definition.Planning)
        {
            message += "\n\nResults of the plan's steps:\n" + string.Join("\n", results.All().Select(r => $"- {r.Task}: {r.Text}"));
        }

        var history = new PostgresChatHistoryProvider(threads, run.Record.ThreadId, run.Id, run.Record.Input, router, definition, options.Value.Memory, loggers);
        AIContextProvider[] providers = definition.Tools.Any(t => t.Type == ToolTypes.Memory) ? [memory.Recall(run.Tools)] : [];
        // With a plan, the steps did the tool work and the answer is written from their results.
        var agent = CreateAgent(run, ModelRole.Worker, AnswerKey, definition.Planning ? [] : tools, instructions, history, providers);
        var session = await agent.CreateSessionAsync(ct);
        var text = new StringBuilder();
        await foreach (var update in agent.RunStreamingAsync(message, session, cancellationToken: ct))
        {
            if (!string.IsNullOrEmpty(update.Text))
            {
                text.Append(update.Text);
                await run.Events.EmitAsync(RunEventTypes.Token, new { step = AnswerKey, delta = update.Text });
            }
        }

        run.ThrowIfLimitReached();
        var answer = text.ToString();
        await run.Store.SaveStepAsync(run.Id, AnswerKey, "completed", Json.Element(new { text = answer, citations = run.Tools.Citations.ToArray() }), CancellationToken.None);
        await run.Events.EmitAsync(RunEventTypes.StepCompleted, new { step = AnswerKey });
        return answer;
    }

    /// <summary>A Microsoft Agent Framework agent over the routed pipeline, with function invocation hooked to this run's <see cref="ToolInvoker"/>.</summary>
    private ChatClientAgent CreateAgent(RunExecution run, ModelRole role, string stepKey, IReadOnlyList<ToolFunction> tools, string instructions,
        ChatHistoryProvider? history = null, IEnumerable<AIContextProvider>? contextProviders = null)
    {
        var invoker = new ToolInvoker(run, tools.ToDictionary(t => t.Name), _logger);
        var client = router.For(run.Record.Definition, role, run.Budget)
            .AsBuilder()
            .UseFunctionInvocation(loggers, functions =>
            {
                functions.FunctionInvoker = (context, ct) => invoker.InvokeAsync(stepKey, context, ct);
                functions.MaximumIterationsPerRequest = Math.Max(1, run.Record.Definition.Limits.MaxToolCalls + 1);
                functions.AllowConcurrentInvocation = false;
            })
            .Build();
        return new ChatClientAgent(client, new ChatClientAgentOptions
        {
            Name = run.Record.Definition.Name,
            Description = run.Record.Definition.Description,
            ChatOptions = new ChatOptions { Instructions = instructions, Tools = tools.Count > 0 ? [.. tools.Select(t => t.Function)] : null },
            // The pipeline above already invokes functions (with our invoker); the agent must not add a second layer.
            UseProvidedChatClientAsIs = true,
            ChatHistoryProvider = history,
            AIContextProviders = contextProviders?.ToList(),
        }, loggers);
    }

    private async Task FinishAsync(RunExecution run, string status, string? output, object? error)
    {
        var citations = Json.Element(run.Tools.Citations.OrderBy(c => int.Parse(c.Index, System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        var usage = Json.Element(run.Budget.Snapshot());
        if (output is not null)
        {
            await run.Events.EmitAsync(RunEventTypes.Answer, new { text = output, citations });
        }

        await run.Events.EmitAsync(RunEventTypes.Usage, usage);
        var end = status switch
        {
            RunStatus.Completed => RunEventTypes.Completed,
            RunStatus.Incomplete => RunEventTypes.Incomplete,
            _ => RunEventTypes.Failed,
        };
        await run.Events.EmitEndAsync(end, new { status, error }, endEvent =>
            store.FinishAsync(run.Id, status, output, citations, usage, error is null ? null : Json.Element(error), endEvent, CancellationToken.None));
    }

    private static void RestoreBudget(RunBudget budget, JsonElement usage)
    {
        if (usage.ValueKind != JsonValueKind.Object || !usage.TryGetProperty("prompt_tokens", out _))
        {
            return;
        }

        budget.Restore(usage.GetProperty("prompt_tokens").GetInt64(), usage.GetProperty("completion_tokens").GetInt64(),
            usage.GetProperty("cost").GetDecimal(), usage.GetProperty("steps").GetInt32(), usage.GetProperty("tool_calls").GetInt32());
    }

    /// <summary>The results of a run's completed steps, by step key.</summary>
    private sealed class StepResults
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (string Task, string Text)> _results = new();

        public string? FailedStep { get; set; }
        public int Count => _results.Count;

        public void Add(string key, string task, string text) => _results[key] = (task, text);

        public bool Has(string key) => _results.ContainsKey(key);

        public string Text(string key) => _results.TryGetValue(key, out var r) ? r.Text : "(no result)";

        public IEnumerable<(string Task, string Text)> All() => _results.OrderBy(r => r.Key, StringComparer.Ordinal).Select(r => r.Value);

        public string PartialAnswer(string reason) =>
            $"The run stopped before it finished: {reason}\n" +
            (_results.IsEmpty ? "No step had completed." : "What it found so far:\n" + string.Join("\n", All().Select(r => $"- {r.Task}: {r.Text}")));
    }
}

/// <summary>The planner gave no valid plan, even after being told what was wrong.</summary>
internal sealed class PlanningException(string message) : Exception(message);
