using System.Text.Json.Serialization;

namespace AspireAi.Agents.Definitions;

/// <summary>An agent as stored and served by <c>/v1/agents</c>: what it is told, which models it uses, its tools and limits.</summary>
public sealed record AgentDefinition
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("description")] public string Description { get; init; } = "";
    [JsonPropertyName("instructions")] public required string Instructions { get; init; }
    /// <summary>The worker model: tool-using steps and the final answer.</summary>
    [JsonPropertyName("model")] public required string Model { get; init; }
    /// <summary>The model that writes plans; the router falls back to <see cref="Model"/> when unset.</summary>
    [JsonPropertyName("planner_model")] public string? PlannerModel { get; init; }
    /// <summary>Plan first (JSON-schema plan, dependency-ordered steps), or answer directly with the tools at hand.</summary>
    [JsonPropertyName("planning")] public bool Planning { get; init; }
    [JsonPropertyName("tools")] public IReadOnlyList<ToolSpec> Tools { get; init; } = [];
    [JsonPropertyName("limits")] public RunLimits Limits { get; init; } = new();
    [JsonPropertyName("created_at")] public long CreatedAt { get; init; }
    [JsonPropertyName("updated_at")] public long UpdatedAt { get; init; }
}

/// <summary>One tool an agent may use, with its per-agent settings.</summary>
public sealed record ToolSpec
{
    [JsonPropertyName("type")] public required string Type { get; init; }
    /// <summary>Calls pause the run until <c>POST …/approve</c> or <c>…/reject</c>.</summary>
    [JsonPropertyName("requires_approval")] public bool RequiresApproval { get; init; }
    /// <summary><c>search_documents</c>: the Retrieval collection searched.</summary>
    [JsonPropertyName("collection")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Collection { get; init; }
    /// <summary><c>http_fetch</c>: host names allowed (exact, or <c>*.example.com</c>).</summary>
    [JsonPropertyName("allowed_hosts")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyList<string>? AllowedHosts { get; init; }
    /// <summary><c>sql_query</c>: the name of a connection configured under <c>Agents:Sql:Connections</c>.</summary>
    [JsonPropertyName("connection")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Connection { get; init; }
    /// <summary><c>mcp</c>: the name of an MCP server configured under <c>Agents:Mcp:Servers</c>.</summary>
    [JsonPropertyName("server")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Server { get; init; }
}

/// <summary>Bounds on one run; reaching one ends the run as <c>incomplete</c> with what it found so far.</summary>
public sealed record RunLimits
{
    [JsonPropertyName("max_steps")] public int MaxSteps { get; init; } = 8;
    [JsonPropertyName("max_tokens")] public int MaxTokens { get; init; } = 32_000;
    [JsonPropertyName("max_wall_seconds")] public int MaxWallSeconds { get; init; } = 300;
    [JsonPropertyName("max_tool_calls")] public int MaxToolCalls { get; init; } = 16;
    [JsonPropertyName("max_replans")] public int MaxReplans { get; init; } = 1;
    /// <summary>In the currency of <c>Agents:Models:Prices</c>; unset means unbounded.</summary>
    [JsonPropertyName("max_cost")] public decimal? MaxCost { get; init; }
}
