using System.Collections.Concurrent;
using AspireAi.Agents.Definitions;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Client;

namespace AspireAi.Agents.Tools.Mcp;

/// <summary>
/// <c>mcp</c>: the tools of an MCP server configured under <c>Agents:Mcp:Servers:{name}</c> (a command over stdio, or an
/// HTTP endpoint), through the <c>ModelContextProtocol</c> client. Its tools are Microsoft.Extensions.AI functions
/// (<see cref="McpClientTool"/>) added to the agent as they are. One client per server, kept for the service's lifetime.
/// MCP tools may have effects, so none is treated as read-only.
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

        var client = await _clients.GetOrAdd(name, _ => new Lazy<Task<McpClient>>(() => ConnectAsync(name, server))).Value;
        var tools = await client.ListToolsAsync(cancellationToken: ct);
        return [.. tools.Select(t => new ToolFunction(t, IsReadOnly: false, RequiresApproval: false))];
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

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients.Values.Where(c => c.IsValueCreated))
        {
            try
            {
                await (await client.Value).DisposeAsync();
            }
            catch (Exception)
            {
                // a server that failed to start has nothing to dispose
            }
        }
    }
}
