using System.Collections.Concurrent;
using System.Text.Json;
using AspireAi.Agents.Definitions;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace AspireAi.Agents.Tools.Mcp;

/// <summary>
/// <c>mcp</c>: the tools of an MCP server configured under <c>Agents:Mcp:Servers:{name}</c> (a command over stdio, or an
/// HTTP endpoint), through the <c>ModelContextProtocol</c> client. Its tools keep the server's names, descriptions and
/// schemas; their results reach the model and the run's events as the server's text (see <see cref="McpResultFunction"/>).
/// One client per server, kept while it works: a server that cannot be reached is a <see cref="ToolException"/> naming
/// it, and the next run connects again. MCP tools may have effects, so none is treated as read-only.
/// </summary>
internal sealed class McpToolSource(IOptions<AgentsOptions> options, ILoggerFactory loggers) : IToolFactory, IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Task<McpClient>>> _clients = new();

    public string Type => ToolTypes.Mcp;

    public async ValueTask<IReadOnlyList<ToolFunction>> CreateAsync(ToolSpec spec, ToolContext context, CancellationToken ct)
    {
        var name = spec.Server!;
        if (!options.Value.Mcp.Servers.TryGetValue(name, out var server))
        {
            throw new ToolException($"mcp: no server named '{name}' is configured (Agents:Mcp:Servers).");
        }

        var connection = _clients.GetOrAdd(name, _ => new Lazy<Task<McpClient>>(() => ConnectAsync(name, server)));
        try
        {
            var client = await connection.Value.WaitAsync(ct);
            var tools = await client.ListToolsAsync(cancellationToken: ct);
            return [.. tools.Select(t => new ToolFunction(new McpResultFunction(t), IsReadOnly: false, RequiresApproval: false))];
        }
        catch (Exception ex) when (ex is not ToolException && !ct.IsCancellationRequested)
        {
            // Forget the failed (or broken) connection so that the next run tries again rather than reusing the failure.
            if (_clients.TryRemove(KeyValuePair.Create(name, connection)))
            {
                await DisposeAsync(connection);
            }

            throw new ToolException($"mcp: server '{name}' ({Describe(server)}) could not be reached: {ex.Message}");
        }
    }

    private Task<McpClient> ConnectAsync(string name, McpServerOptions server)
    {
        IClientTransport transport = server switch
        {
            { Endpoint: { Length: > 0 } endpoint } => new HttpClientTransport(new HttpClientTransportOptions { Endpoint = new Uri(endpoint), Name = name }, loggers),
            { Command: { Length: > 0 } command } => new StdioClientTransport(new StdioClientTransportOptions { Command = command, Arguments = server.Arguments, Name = name }, loggers),
            _ => throw new ToolException($"mcp: server '{name}' needs Command or Endpoint."),
        };
        return McpClient.CreateAsync(transport, loggerFactory: loggers);
    }

    private static string Describe(McpServerOptions server) =>
        server.Endpoint is { Length: > 0 } endpoint ? endpoint : $"command {server.Command} {string.Join(' ', server.Arguments)}".TrimEnd();

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _clients.Values)
        {
            await DisposeAsync(connection);
        }
    }

    private static async ValueTask DisposeAsync(Lazy<Task<McpClient>> connection)
    {
        if (!connection.IsValueCreated || !connection.Value.IsCompletedSuccessfully)
        {
            return; // a server that failed to connect has nothing to dispose
        }

        await connection.Value.Result.DisposeAsync();
    }

    /// <summary>
    /// An MCP tool whose result is what the server said: the text of its content blocks (or its structured content), and a
    /// server-reported error (<c>isError</c>) as a <see cref="ToolException"/>, so the run records the call as failed.
    /// Without this, <see cref="McpClientTool"/> returns Microsoft.Extensions.AI contents, which would reach the model and
    /// the events as serialised <c>{"$type":"text",…}</c> objects.
    /// </summary>
    private sealed class McpResultFunction(McpClientTool tool) : DelegatingAIFunction(tool)
    {
        protected override async ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken)
        {
            var result = await tool.CallAsync(arguments, cancellationToken: cancellationToken);
            var text = string.Join("\n", result.Content.Select(block => block switch
            {
                TextContentBlock t => t.Text,
                _ => JsonSerializer.Serialize(block, ModelContextProtocol.McpJsonUtilities.DefaultOptions),
            }));
            if (result.IsError is true)
            {
                throw new ToolException($"the MCP server reported an error: {text}");
            }

            return result.StructuredContent is { } structured && text.Length == 0 ? structured.GetRawText() : text;
        }
    }
}
