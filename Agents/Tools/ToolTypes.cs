namespace AspireAi.Agents.Tools;

/// <summary>The tool types an agent definition may name.</summary>
internal static class ToolTypes
{
    public const string SearchDocuments = "search_documents";
    public const string HttpFetch = "http_fetch";
    public const string RunCode = "run_code";
    /// <summary>list_files, read_file and write_file over the run's workspace.</summary>
    public const string Files = "files";
    public const string SqlQuery = "sql_query";
    public const string Mcp = "mcp";
    /// <summary>Semantic memory: <c>remember</c> stores a fact; recall happens before every run.</summary>
    public const string Memory = "memory";

    public static readonly string[] All = [SearchDocuments, HttpFetch, RunCode, Files, SqlQuery, Mcp, Memory];
}
