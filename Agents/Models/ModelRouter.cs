using AspireAi.Agents.Definitions;
using AspireAi.Agents.Runs;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace AspireAi.Agents.Models;

/// <summary>What a model call is for; the router's policy picks the model by it.</summary>
public enum ModelRole
{
    /// <summary>Writes the plan (JSON-schema structured output).</summary>
    Planner,
    /// <summary>Carries out a step with tools, and writes the final answer.</summary>
    Worker,
    /// <summary>Summarises older turns to fit the context window.</summary>
    Summarizer,
}

/// <summary>
/// Picks the model for each call by policy and builds the Microsoft.Extensions.AI pipeline around it:
/// OpenTelemetry → logging → budget metering → <see cref="ModelRoutingChatClient"/> (context-size choice and fallback on failure).
/// Function invocation goes on top per step (see <c>StepAgentFactory</c>), where its hooks know the step.
/// </summary>
public sealed class ModelRouter(IChatModelProvider models, IOptions<AgentsOptions> options, ILoggerFactory loggers)
{
    /// <summary>Models to try, in order, for <paramref name="role"/> of <paramref name="agent"/>.</summary>
    public IReadOnlyList<string> Candidates(AgentDefinition agent, ModelRole role)
    {
        var routing = options.Value.Models;
        var first = role == ModelRole.Planner ? agent.PlannerModel ?? routing.Planner ?? agent.Model : agent.Model;
        return [.. new[] { first, agent.Model }.Concat(routing.Fallbacks).Distinct()];
    }

    public int ContextWindow(string model) =>
        options.Value.Models.ContextWindows.TryGetValue(model, out var window) ? window : options.Value.Models.DefaultContextWindow;

    /// <summary>The pipeline for one role of one run; usage is charged to <paramref name="budget"/>.</summary>
    public IChatClient For(AgentDefinition agent, ModelRole role, RunBudget? budget)
    {
        var routing = new ModelRoutingChatClient(models, Candidates(agent, role), options.Value.Models, loggers.CreateLogger<ModelRoutingChatClient>());
        var builder = routing.AsBuilder()
            .UseOpenTelemetry(loggers, configure: telemetry => telemetry.EnableSensitiveData = false)
            .UseLogging(loggers);
        if (budget is not null)
        {
            builder.Use(inner => new BudgetChatClient(inner, budget, options.Value.Models));
        }

        return builder.Build();
    }
}
