using System.ComponentModel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Server;

// An MCP server on stdin/stdout with one tool, stock_level, whose answer depends on the --seed it was started with, so a
// test knows the server (and not something else) answered. Logs go to stderr: stdout is the protocol's channel.
var seed = args.Length == 2 && args[0] == "--seed" && int.TryParse(args[1], out var s) ? s
    : throw new ArgumentException("usage: AspireAi.McpStdioServer --seed N");
var builder = Host.CreateApplicationBuilder();
builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning);
builder.Services.AddSingleton(new Warehouse(seed));
builder.Services.AddMcpServer().WithStdioServerTransport().WithTools<WarehouseTools>();
await builder.Build().RunAsync();

/// <summary>Stock per SKU as a function of the seed: <see cref="Units"/> is what the tests compute on their side.</summary>
public sealed class Warehouse(int seed)
{
    public static int Units(int seed, string sku) => 100 + (int)((uint)(seed * 31 + sku.Sum(c => c * 7)) % 9_900);

    public string Lookup(string sku) => $"{sku}: {Units(seed, sku)} units in stock (seed {seed})";
}

[McpServerToolType]
public sealed class WarehouseTools(Warehouse warehouse)
{
    [McpServerTool(Name = "stock_level"), Description("How many units of a product are in stock.")]
    public string StockLevel([Description("The product's SKU.")] string sku) => warehouse.Lookup(sku);
}
