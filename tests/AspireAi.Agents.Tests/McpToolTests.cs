using System.Net;
using System.Net.Http.Json;
using AspireAi.TestSupport;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Tests;

/// <summary>
/// The <c>mcp</c> tool type against real MCP servers — over streamable HTTP, and a command over stdio: its tools reach the model, a run calls one, and
/// the events carry the server's own result; an unknown or unreachable server gives a clear error. The model is scripted,
/// because the test needs it to call the server's tool with known arguments.
/// </summary>
public sealed class McpToolTests(PostgresServer postgres)
{
    private static ChatResponse Script(string model, IReadOnlyList<ChatMessage> messages, ChatOptions? options) =>
        ScriptedModels.ToolResults(messages) is [var result, ..]
            ? ScriptedModels.Text($"The warehouse says: {result.Result}")
            : ScriptedModels.Call("stock_level", new() { ["sku"] = "A-42" });

    [Fact]
    public async Task A_run_calls_a_tool_of_a_configured_MCP_server_and_its_events_carry_the_servers_result()
    {
        await using var server = new McpServer();
        await server.StartAsync();
        var models = new ScriptedModels(Script);
        await using var host = new AgentsHost(await postgres.CreateDatabaseAsync("agents_mcp"), models,
            settings: new Dictionary<string, string?> { ["Agents:Mcp:Servers:warehouse:Endpoint"] = server.Endpoint });
        var client = host.ClientFor("t");
        await client.CreateAgentAsync(new { name = "clerk", instructions = "Answer stock questions.", model = "worker", tools = new object[] { new { type = "mcp", server = "warehouse" } } });

        var run = await client.RunAsync(await client.CreateThreadAsync(), "clerk", "How many A-42 do we have?");

        var expected = $"A-42: {server.Inventory.Units("A-42")} units in stock";
        Assert.Equal("completed", run.GetProperty("status").GetString());
        Assert.Equal(["A-42"], server.Inventory.Calls);
        var call = run.Events("tool.call").Single();
        Assert.Equal("stock_level", call.GetProperty("tool").GetString());
        Assert.Equal("A-42", call.GetProperty("arguments").GetProperty("sku").GetString());
        var result = run.Events("tool.result").Single();
        Assert.Equal(expected, result.GetProperty("result").GetString());
        Assert.Equal($"The warehouse says: {expected}", run.GetProperty("output").GetString());
        // The model was offered the server's tool with the server's description and schema.
        var offered = models.Options.First()!.Tools!.OfType<AIFunctionDeclaration>().Single();
        Assert.Equal("How many units of a product are in stock.", offered.Description);
        Assert.Contains("sku", offered.JsonSchema.GetRawText());
    }

    [Fact]
    public async Task A_run_calls_a_tool_of_an_MCP_server_started_as_a_command_over_stdio()
    {
        // tests/AspireAi.McpStdioServer, built beside this assembly's configuration; its answers depend on the seed it is
        // started with, so only the process this run started can give the expected text.
        var configuration = Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(typeof(McpToolTests).Assembly.Location)))!;
        var serverDll = Path.Combine(RepositoryPaths.Root, "tests", "AspireAi.McpStdioServer", "bin", configuration, "net10.0", "AspireAi.McpStdioServer.dll");
        Assert.True(File.Exists(serverDll), $"{serverDll} was not built");
        var seed = Random.Shared.Next(1, 1_000_000);
        var models = new ScriptedModels(Script);
        await using var host = new AgentsHost(await postgres.CreateDatabaseAsync("agents_mcp_stdio"), models,
            settings: new Dictionary<string, string?>
            {
                ["Agents:Mcp:Servers:warehouse:Command"] = "dotnet",
                ["Agents:Mcp:Servers:warehouse:Arguments:0"] = serverDll,
                ["Agents:Mcp:Servers:warehouse:Arguments:1"] = "--seed",
                ["Agents:Mcp:Servers:warehouse:Arguments:2"] = seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
        var client = host.ClientFor("t");
        await client.CreateAgentAsync(new { name = "clerk", instructions = "Answer stock questions.", model = "worker", tools = new object[] { new { type = "mcp", server = "warehouse" } } });

        var run = await client.RunAsync(await client.CreateThreadAsync(), "clerk", "How many A-42 do we have?");

        // The server's formula (Warehouse.Units in tests/AspireAi.McpStdioServer/Program.cs), computed here.
        var units = 100 + (int)((uint)(seed * 31 + "A-42".Sum(c => c * 7)) % 9_900);
        var expected = $"A-42: {units} units in stock (seed {seed})";
        Assert.Equal("completed", run.GetProperty("status").GetString());
        Assert.Equal(expected, run.Events("tool.result").Single().GetProperty("result").GetString());
        Assert.Equal($"The warehouse says: {expected}", run.GetProperty("output").GetString());
        var offered = models.Options.First()!.Tools!.OfType<AIFunctionDeclaration>().Single();
        Assert.Equal("stock_level", offered.Name);
        Assert.Equal("How many units of a product are in stock.", offered.Description);
    }

    [Fact]
    public async Task An_unknown_or_unreachable_MCP_server_is_a_clear_error_and_a_later_run_reaches_it_once_it_is_up()
    {
        await using var server = new McpServer(); // not started yet: nothing listens at its address
        var database = await postgres.CreateDatabaseAsync("agents_mcp_errors");
        var models = new ScriptedModels(Script);
        await using var host = new AgentsHost(database, models,
            settings: new Dictionary<string, string?> { ["Agents:Mcp:Servers:warehouse:Endpoint"] = server.Endpoint });
        var client = host.ClientFor("t");

        var unknown = await (await client.PostAsJsonAsync("/v1/agents", new { name = "lost", instructions = "x", model = "worker", tools = new object[] { new { type = "mcp", server = "nowhere" } } }))
            .ErrorAsync(HttpStatusCode.BadRequest, "tools[0].server");
        Assert.Contains("'nowhere'", unknown.GetProperty("message").GetString());
        Assert.Contains("warehouse", unknown.GetProperty("message").GetString());

        await client.CreateAgentAsync(new { name = "clerk", instructions = "x", model = "worker", tools = new object[] { new { type = "mcp", server = "warehouse" } } });
        var thread = await client.CreateThreadAsync();
        var failed = await client.RunAsync(thread, "clerk", "How many A-42 do we have?");
        Assert.Equal("failed", failed.GetProperty("status").GetString());
        var error = failed.GetProperty("error");
        Assert.Equal("tool_unavailable", error.GetProperty("code").GetString());
        Assert.Contains("'warehouse'", error.GetProperty("message").GetString());
        Assert.Contains(server.Endpoint, error.GetProperty("message").GetString());
        Assert.Empty(models.Requests);

        await server.StartAsync();
        var succeeded = await client.RunAsync(thread, "clerk", "How many A-42 do we have?");
        Assert.Equal("completed", succeeded.GetProperty("status").GetString());
        Assert.Equal($"A-42: {server.Inventory.Units("A-42")} units in stock", succeeded.Events("tool.result").Single().GetProperty("result").GetString());

        // A definition naming a server this instance does not have (configuration changed since) fails its run naming the server.
        await using var reconfigured = new AgentsHost(database, models);
        var stale = await reconfigured.ClientFor("t").RunAsync(await reconfigured.ClientFor("t").CreateThreadAsync(), "clerk", "How many A-42 do we have?");
        Assert.Equal("failed", stale.GetProperty("status").GetString());
        Assert.Equal("tool_unavailable", stale.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("no server named 'warehouse'", stale.GetProperty("error").GetProperty("message").GetString());
    }
}
