using System.ComponentModel;
using System.Text.Json.Serialization;

namespace AspireAi.Agents.Planning;

/// <summary>The planner's structured output: its JSON schema is what the model is constrained to.</summary>
[Description("A plan: the steps that reach the goal, each with the tool it needs and the steps it depends on.")]
public sealed record Plan
{
    [JsonPropertyName("steps")]
    [Description("The steps, at most the step limit. Steps whose dependencies are met run concurrently.")]
    public required List<PlanStep> Steps { get; init; }
}

public sealed record PlanStep
{
    [JsonPropertyName("id")][Description("Short unique id, e.g. s1.")] public required string Id { get; init; }
    [JsonPropertyName("task")][Description("What this step must find out or do.")] public required string Task { get; init; }
    [JsonPropertyName("tool")][Description("The one tool the step needs, or null when it needs none.")] public string? Tool { get; init; }
    [JsonPropertyName("depends_on")][Description("Ids of the steps whose results this step needs.")] public List<string> DependsOn { get; init; } = [];
}
