using System.Net;
using System.Net.Http.Json;
using AspireAi.TestSupport;

namespace AspireAi.Agents.Tests;

/// <summary>
/// Acceptance, through the gateway: an agent with search_documents answers from ingested documents with citations, and
/// the run's events are persisted. Real gateway (API keys, tenant from the key, routing) over PostgreSQL and Redis; real
/// Agents and Retrieval apps on loopback ports reached by the gateway's service discovery; real embeddings
/// (all-MiniLM-L6-v2 on ONNX Runtime). The model is scripted — the only fake — because the test needs it to call
/// search_documents and to answer from the passage it got back; which passage comes back is Retrieval's real work.
/// </summary>
public sealed class GatewayEndToEndTests(PostgresServer postgres, EmbeddingServer embeddings, RedisServer redis)
    : IClassFixture<EmbeddingServer>, IClassFixture<RedisServer>
{
    [Fact]
    public async Task An_agent_answers_from_ingested_documents_with_citations_through_the_gateway()
    {
        var models = new ScriptedModels((_, messages, _) => ScriptedModels.ToolResults(messages) is [var result, ..]
            ? ScriptedModels.Text("From the handbook: " + result.Result!.ToString()!.Split('\n')[0])
            : ScriptedModels.Call("search_documents", new() { ["query"] = ScriptedModels.LastUser(messages), ["top_k"] = 2 }));
        await using var stack = await AgentsBehindGateway.StartAsync("gw_e2e", models, postgres, embeddings, redis);
        var (agents, gateway) = (stack.Agents, stack.Gateway);
        using var client = await gateway.ClientForNewKeyAsync("acme");

        // Documents go in through the gateway, under the key's tenant.
        await (await client.PutAsync("/v1/collections/handbook", null)).JsonAsync(HttpStatusCode.Created);
        foreach (var (id, text) in new[]
        {
            ("vacation-policy", "Vacation policy. Every full-time employee receives 27 paid vacation days per calendar year. Unused days carry over until March 31."),
            ("expense-policy", "Expenses. Travel must be booked through the travel desk; receipts are submitted within 30 days for reimbursement."),
            ("security-policy", "Security. Laptops use full-disk encryption and lock after five minutes; report lost devices to IT at once."),
        })
        {
            await (await client.PostAsJsonAsync("/v1/collections/handbook/documents", new { id, text })).JsonAsync(HttpStatusCode.Created);
        }

        await client.CreateAgentAsync(new
        {
            name = "hr", instructions = "Answer questions about the employee handbook, citing sources.", model = "worker",
            tools = new object[] { new { type = "search_documents", collection = "handbook" } },
        });
        var thread = await client.CreateThreadAsync();
        var events = await client.RunStreamingAsync(thread, "hr", "How many paid days off do staff get each year?");

        Assert.Equal(["run.created", "step.started", "tool.call", "tool.result"], events.Take(4).Select(e => e.Type));
        Assert.Equal("run.completed", events[^1].Type);
        var answer = events.Single(e => e.Type == "answer").Data;
        Assert.StartsWith("From the handbook: [1] (document vacation-policy)", answer.GetProperty("text").GetString());
        Assert.Contains("27 paid vacation days", answer.GetProperty("text").GetString());
        var citation = answer.GetProperty("citations")[0];
        Assert.Equal("vacation-policy", citation.GetProperty("document_id").GetString());
        Assert.Equal("handbook/vacation-policy", citation.GetProperty("source").GetString());

        // Persisted under the key's tenant: replayed through the gateway, and in the agents service's own store.
        var runId = events[0].Data.GetProperty("run_id").GetString()!;
        var run = await client.GetRunAsync(thread, runId);
        Assert.Equal("completed", run.GetProperty("status").GetString());
        Assert.Equal(events.Select(e => e.Type), run.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("type").GetString()));
        Assert.Equal("vacation-policy", run.GetProperty("citations")[0].GetProperty("document_id").GetString());
        Assert.Equal("completed", (await agents.ClientFor("acme").GetRunAsync(thread, runId)).GetProperty("status").GetString());

        // The same agent as a model through the gateway's chat completions.
        var completion = await (await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "agent:hr",
            messages = new[] { new { role = "user", content = "Which policy covers lost laptops?" } },
        })).JsonAsync(HttpStatusCode.OK);
        Assert.StartsWith("From the handbook: [1] (document security-policy)", completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("security-policy", completion.GetProperty("aspireai").GetProperty("citations")[0].GetProperty("document_id").GetString());

        // Another tenant's key reaches neither acme's thread nor its documents.
        using var other = await gateway.ClientForNewKeyAsync("globex");
        await (await other.GetAsync($"/v1/threads/{thread}/runs/{runId}")).ErrorAsync(HttpStatusCode.NotFound);
        await other.CreateAgentAsync(new { name = "hr", instructions = "x", model = "worker", tools = new object[] { new { type = "search_documents", collection = "handbook" } } });
        var foreign = await other.RunAsync(await other.CreateThreadAsync(), "hr", "vacation days?");
        Assert.Contains("does not exist", foreign.Events("tool.result").Single().GetProperty("result").GetString());
        Assert.Equal(0, foreign.GetProperty("citations").GetArrayLength());
    }
}
