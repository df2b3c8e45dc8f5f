using System.Collections.Concurrent;
using System.ComponentModel;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Server;

namespace AspireAi.Agents.Tests;

/// <summary>
/// A real MCP server (the <c>ModelContextProtocol.AspNetCore</c> streamable HTTP transport) on loopback Kestrel, with one
/// tool whose answers only this server knows: stock levels drawn at random when the server is made.
/// </summary>
public sealed class McpServer : IAsyncDisposable
{
    // The port is chosen before the start (not port 0): a test configures agents with the address of a
    // server that is not up yet; it stays reserved until then.
    private readonly ReservedPort _port = new();
    private WebApplication? _app;

    public McpServer() => Address = $"http://127.0.0.1:{_port.Port}";

    public string Address { get; }
    public string Endpoint => Address + "/mcp";
    public Inventory Inventory { get; } = new();

    public async Task StartAsync()
    {
        _port.Release();  // Kestrel binds it next
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls(Address);
        builder.Services.AddSingleton(Inventory);
        builder.Services.AddMcpServer().WithHttpTransport().WithTools<WarehouseTools>();
        _app = builder.Build();
        _app.MapMcp("/mcp");
        await _app.StartAsync();
    }

    public async ValueTask DisposeAsync()
    {
        _port.Dispose();
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }
}

/// <summary>The server's state: stock per SKU (random, so a test cannot know a result without asking the server) and the calls made.</summary>
public sealed class Inventory
{
    private readonly ConcurrentDictionary<string, int> _units = new();

    public ConcurrentQueue<string> Calls { get; } = new();

    public string Lookup(string sku)
    {
        Calls.Enqueue(sku);
        return $"{sku}: {Units(sku)} units in stock";
    }

    public int Units(string sku) => _units.GetOrAdd(sku, _ => Random.Shared.Next(100, 10_000));
}

[McpServerToolType]
public sealed class WarehouseTools(Inventory inventory)
{
    [McpServerTool(Name = "stock_level"), Description("How many units of a product are in stock.")]
    public string StockLevel([Description("The product's SKU.")] string sku) => inventory.Lookup(sku);
}
