using System.Net;
using System.Net.Http.Json;
using AspireAi.TestSupport;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Tests;

/// <summary>
/// An agent with search_documents answers from ingested documents with citations, with the real Retrieval
/// service, real embeddings (all-MiniLM-L6-v2 on ONNX Runtime) and PostgreSQL, and the run's events persisted. Through the
/// agents API directly (the same flow through the gateway is <see cref="GatewayEndToEndTests"/>). The model is scripted, because the test needs it to call
/// search_documents and to answer from the passage it got back; which passage comes back is Retrieval's real work.
/// </summary>
public sealed class SearchDocumentsEndToEndTests(PostgresServer postgres, EmbeddingServer embeddings) : IClassFixture<EmbeddingServer>
{
    [Fact]
    public async Task An_agent_answers_from_ingested_documents_with_citations_and_the_run_is_persisted()
    {
        await using var retrieval = new RetrievalHost(await postgres.CreateDatabaseAsync("e2e_retrieval"), embeddings.BaseAddress);
        var documents = retrieval.CreateClient();
        documents.DefaultRequestHeaders.Add(AgentsHost.TenantHeader, "acme");
        await (await documents.PutAsync("/v1/collections/handbook", null)).JsonAsync(HttpStatusCode.Created);
        foreach (var (id, text) in new[]
        {
            ("vacation-policy", "Vacation policy. Every full-time employee receives 27 paid vacation days per calendar year. Unused days carry over until March 31."),
            ("expense-policy", "Expenses. Travel must be booked through the travel desk; receipts are submitted within 30 days for reimbursement."),
            ("security-policy", "Security. Laptops use full-disk encryption and lock after five minutes; report lost devices to IT at once."),
        })
        {
            await (await documents.PostAsJsonAsync("/v1/collections/handbook/documents", new { id, text })).JsonAsync(HttpStatusCode.Created);
        }

        var models = new ScriptedModels((_, messages, _) => ScriptedModels.ToolResults(messages) is [var result, ..]
            ? ScriptedModels.Text("From the handbook: " + result.Result!.ToString()!.Split('\n')[0])
            : ScriptedModels.Call("search_documents", new() { ["query"] = ScriptedModels.LastUser(messages), ["top_k"] = 2 }));
        await using var agents = new AgentsHost(await postgres.CreateDatabaseAsync("e2e_agents"), models, retrieval: retrieval);
        var client = agents.ClientFor("acme");
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
        Assert.Equal("1", citation.GetProperty("index").GetString());
        Assert.Equal("vacation-policy", citation.GetProperty("document_id").GetString());
        Assert.Equal("handbook/vacation-policy", citation.GetProperty("source").GetString());

        var runId = events[0].Data.GetProperty("run_id").GetString()!;
        var run = await client.GetRunAsync(thread, runId);
        Assert.Equal("completed", run.GetProperty("status").GetString());
        Assert.Equal("vacation-policy", run.GetProperty("citations")[0].GetProperty("document_id").GetString());
        Assert.Equal(events.Count, run.GetProperty("events").GetArrayLength());
        Assert.Contains("vacation-policy", run.Events("tool.result").Single().GetProperty("result").GetString());

        // Another tenant's agent cannot see acme's documents.
        var other = agents.ClientFor("globex");
        await other.CreateAgentAsync(new { name = "hr", instructions = "x", model = "worker", tools = new object[] { new { type = "search_documents", collection = "handbook" } } });
        var foreign = await other.RunAsync(await other.CreateThreadAsync(), "hr", "vacation days?");
        Assert.Contains("does not exist", foreign.Events("tool.result").Single().GetProperty("result").GetString());
        Assert.Equal(0, foreign.GetProperty("citations").GetArrayLength());
    }
}
