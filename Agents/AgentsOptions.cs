namespace AspireAi.Agents;

/// <summary>Configuration section <c>Agents</c>: models, tools, sandbox and durability settings.</summary>
public sealed class AgentsOptions
{
    public const string Section = "Agents";

    /// <summary>OpenAI-compatible base address of the models (Inference or the gateway), resolved by service discovery.</summary>
    public string ModelEndpoint { get; set; } = "http://inference/v1";
    /// <summary>API key sent to <see cref="ModelEndpoint"/> (Inference needs none; the gateway does).</summary>
    public string? ModelApiKey { get; set; }
    /// <summary>Retrieval's base address (for <c>search_documents</c> and semantic memory).</summary>
    public string RetrievalEndpoint { get; set; } = "http://retrieval";
    public ModelRoutingOptions Models { get; set; } = new();
    public SandboxOptions Sandbox { get; set; } = new();
    public HttpFetchOptions HttpFetch { get; set; } = new();
    public SqlToolOptions Sql { get; set; } = new();
    public McpOptions Mcp { get; set; } = new();
    public MemoryOptions Memory { get; set; } = new();
    /// <summary>Folder under which each run gets its workspace (file tools, run_code scratch).</summary>
    public string WorkspaceRoot { get; set; } = Path.Combine(Path.GetTempPath(), "aspireai-agents");
    /// <summary>How long a run's lease lasts without renewal; a crashed instance's runs are taken over after it.</summary>
    public TimeSpan RunLease { get; set; } = TimeSpan.FromSeconds(30);
    /// <summary>How often unfinished runs without a live owner are looked for (and resumed).</summary>
    public TimeSpan OrphanScanInterval { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>The model router's policy.</summary>
public sealed class ModelRoutingOptions
{
    /// <summary>Planner model for agents that name none; unset → the agent's own model.</summary>
    public string? Planner { get; set; }
    /// <summary>Models tried in order after the chosen one fails (unreachable, 5xx, timeout).</summary>
    public List<string> Fallbacks { get; set; } = [];
    /// <summary>Context window per model id, in tokens; a request estimated larger moves to a model with a larger window.</summary>
    public Dictionary<string, int> ContextWindows { get; set; } = [];
    /// <summary>Window assumed for models not listed in <see cref="ContextWindows"/>.</summary>
    public int DefaultContextWindow { get; set; } = 8192;
    /// <summary>Prices per 1000 tokens by model id, for <c>limits.max_cost</c>.</summary>
    public Dictionary<string, ModelPrice> Prices { get; set; } = [];
}

public sealed class ModelPrice
{
    public decimal InputPer1K { get; set; }
    public decimal OutputPer1K { get; set; }
}

public sealed class SandboxOptions
{
    public string BwrapPath { get; set; } = "bwrap";
    public string PrlimitPath { get; set; } = "prlimit";
    /// <summary>Interpreters by language name; run inside the sandbox.</summary>
    public Dictionary<string, string[]> Languages { get; set; } = new()
    {
        ["python"] = ["/usr/bin/python3", "-I", "-c"],
        ["sh"] = ["/bin/sh", "-c"],
    };
    public int CpuSeconds { get; set; } = 10;
    public long MemoryBytes { get; set; } = 512L * 1024 * 1024;
    /// <summary>Processes the sandbox user may have at once: stops fork bombs.</summary>
    public int MaxProcesses { get; set; } = 32;
    public long MaxFileBytes { get; set; } = 16L * 1024 * 1024;
    public TimeSpan WallTimeout { get; set; } = TimeSpan.FromSeconds(15);
    public int MaxOutputBytes { get; set; } = 64 * 1024;
    /// <summary>Uid/gid the code runs as when the service runs as root (nobody).</summary>
    public int SandboxUid { get; set; } = 65534;
}

public sealed class HttpFetchOptions
{
    public int MaxBytes { get; set; } = 1024 * 1024;
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);
    public int MaxRedirects { get; set; } = 3;
}

public sealed class SqlToolOptions
{
    /// <summary>Named connection strings an agent's <c>sql_query</c> tool may use.</summary>
    public Dictionary<string, string> Connections { get; set; } = [];
    public int MaxRows { get; set; } = 200;
    public TimeSpan StatementTimeout { get; set; } = TimeSpan.FromSeconds(5);
}

public sealed class McpOptions
{
    public Dictionary<string, McpServerOptions> Servers { get; set; } = [];
}

/// <summary>An MCP server: a command started over stdio, or an HTTP endpoint.</summary>
public sealed class McpServerOptions
{
    public string? Command { get; set; }
    public List<string> Arguments { get; set; } = [];
    public string? Endpoint { get; set; }
}

public sealed class MemoryOptions
{
    /// <summary>Retrieval collection that holds each agent's remembered facts (per tenant, as Retrieval scopes it).</summary>
    public string CollectionPrefix { get; set; } = "agent-memory-";
    public int RecallCount { get; set; } = 3;
    /// <summary>Share of the context window the thread history may take before older turns are summarised.</summary>
    public double HistoryShare { get; set; } = 0.5;
    /// <summary>Most recent turns always kept verbatim.</summary>
    public int KeepRecentMessages { get; set; } = 4;
}
