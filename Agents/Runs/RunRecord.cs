using System.Text.Json;
using System.Text.Json.Serialization;
using AspireAi.Agents.Definitions;

namespace AspireAi.Agents.Runs;

/// <summary>Where a run stands. Terminal: completed, incomplete (a limit ended it with partial results), failed, cancelled.</summary>
public static class RunStatus
{
    public const string Queued = "queued";
    public const string Running = "running";
    /// <summary>Paused on a tool that requires approval.</summary>
    public const string RequiresAction = "requires_action";
    public const string Completed = "completed";
    public const string Incomplete = "incomplete";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    public static bool IsTerminal(string status) => status is Completed or Incomplete or Failed or Cancelled;
}

/// <summary>A run as stored and as answered by the API (<c>object: "thread.run"</c>).</summary>
public sealed record RunRecord
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("object")] public string Object => "thread.run";
    [JsonPropertyName("thread_id")] public required string ThreadId { get; init; }
    [JsonPropertyName("agent")] public required string Agent { get; init; }
    [JsonPropertyName("status")] public required string Status { get; init; }
    [JsonPropertyName("input")] public required string Input { get; init; }
    [JsonPropertyName("output")] public string? Output { get; init; }
    [JsonPropertyName("citations")] public JsonElement Citations { get; init; }
    [JsonPropertyName("usage")] public JsonElement Usage { get; init; }
    [JsonPropertyName("error")] public JsonElement? Error { get; init; }
    [JsonPropertyName("created_at")] public long CreatedAt { get; init; }
    [JsonPropertyName("completed_at")] public long? CompletedAt { get; init; }
    [JsonPropertyName("events")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyList<RunEvent>? Events { get; init; }
    [JsonIgnore] public string Tenant { get; init; } = "";
    [JsonIgnore] public AgentDefinition Definition { get; init; } = null!;
}

/// <summary>One event of a run, numbered from 1 in the order it happened; persisted and replayed as sent.</summary>
public sealed record RunEvent(
    [property: JsonPropertyName("seq")] int Seq,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("data")] JsonElement Data);

/// <summary>The event types a run emits.</summary>
public static class RunEventTypes
{
    public const string Created = "run.created";
    public const string Resumed = "run.resumed";
    public const string Plan = "plan";
    public const string Replan = "plan.revised";
    public const string StepStarted = "step.started";
    public const string StepCompleted = "step.completed";
    public const string StepFailed = "step.failed";
    public const string ToolCall = "tool.call";
    public const string ToolResult = "tool.result";
    public const string ApprovalRequired = "approval.required";
    public const string ApprovalDecided = "approval.decided";
    public const string Token = "token";
    public const string Answer = "answer";
    public const string Usage = "usage";
    public const string Completed = "run.completed";
    public const string Incomplete = "run.incomplete";
    public const string Failed = "run.failed";

    public static bool Ends(string type) => type is Completed or Incomplete or Failed;

    /// <summary>What the run did on its way to the answer: shown to people as it happens (e.g. the gateway's web chat).</summary>
    public static bool IsStep(string type) =>
        type is Resumed or Plan or Replan or StepStarted or StepCompleted or StepFailed or ToolCall or ToolResult or ApprovalRequired or ApprovalDecided;
}
