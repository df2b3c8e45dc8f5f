using AspireAi.TestSupport;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Tests;

/// <summary>
/// Semantic memory end to end with the real Retrieval service, real embeddings (all-MiniLM-L6-v2 on ONNX Runtime) and
/// PostgreSQL: facts stored by the <c>remember</c> tool in one run are recalled by similarity into the model's instructions
/// in a later run on another thread, and only for the tenant that stored them. The model is scripted, because the test
/// needs it to call <c>remember</c> with known facts; which fact comes back is Retrieval's real work.
/// </summary>
public sealed class SemanticMemoryTests(PostgresServer postgres, EmbeddingServer embeddings) : IClassFixture<EmbeddingServer>
{
    private const string ParkingFact = "The staff parking garage door code is 4417.";

    private static readonly string[] Facts =
    [
        "Maria's dog is called Pepper and is afraid of thunderstorms.",
        ParkingFact,
        "Quarterly invoices go to the finance team as PDF files.",
        "The board meeting moved to Thursday afternoons.",
    ];

    /// <summary>"Remember:" followed by one fact per line → one remember call per fact, then "Noted."; anything else → "ok".</summary>
    private static ChatResponse Script(string model, IReadOnlyList<ChatMessage> messages, ChatOptions? options)
    {
        var prompt = ScriptedModels.LastUser(messages);
        if (!prompt.StartsWith("Remember:", StringComparison.Ordinal))
        {
            return ScriptedModels.Text("ok");
        }

        var facts = prompt["Remember:".Length..].Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var done = ScriptedModels.ToolResults(messages).Count;
        return done < facts.Length
            ? ScriptedModels.Call("remember", new() { ["fact"] = facts[done] }, $"call_remember_{done}")
            : ScriptedModels.Text("Noted.");
    }

    [Fact]
    public async Task Facts_remembered_in_one_run_are_recalled_by_similarity_in_a_later_run_of_the_same_tenant_only()
    {
        await using var retrieval = new RetrievalHost(await postgres.CreateDatabaseAsync("memory_retrieval"), embeddings.BaseAddress);
        var models = new ScriptedModels(Script);
        await using var agents = new AgentsHost(await postgres.CreateDatabaseAsync("memory_agents"), models, retrieval: retrieval,
            settings: new Dictionary<string, string?> { ["Agents:Memory:RecallCount"] = "2" });
        var acme = agents.ClientFor("acme");
        var agent = new { name = "assistant", instructions = "Help the staff.", model = "worker", tools = new[] { "memory" } };
        await acme.CreateAgentAsync(agent);

        var stored = await acme.RunAsync(await acme.CreateThreadAsync(), "assistant", "Remember:\n" + string.Join("\n", Facts));
        Assert.Equal("completed", stored.GetProperty("status").GetString());
        Assert.Equal(Facts, stored.Events("tool.call").Select(c => c.GetProperty("arguments").GetProperty("fact").GetString()));
        Assert.All(stored.Events("tool.result"), r => Assert.Equal("Remembered.", r.GetProperty("result").GetString()));

        // A new thread: no history, so whatever the model learns of the code comes from semantic memory. The question shares
        // no word with the fact: it is found by meaning.
        var asked = await acme.RunAsync(await acme.CreateThreadAsync(), "assistant", "Which number opens the gate where employees leave their cars?");
        Assert.Equal("completed", asked.GetProperty("status").GetString());
        var recalled = RecalledFacts(models);
        Assert.Equal(2, recalled.Count);
        Assert.Equal(ParkingFact, recalled[0]);
        Assert.DoesNotContain(models.Requests.Last(), m => m.Text.Contains("4417", StringComparison.Ordinal)); // it came through the instructions, not history

        // Another tenant's agent of the same name recalls nothing of acme's, before and after it remembers its own.
        var globex = agents.ClientFor("globex");
        await globex.CreateAgentAsync(agent);
        await globex.RunAsync(await globex.CreateThreadAsync(), "assistant", "Which number opens the gate where employees leave their cars?");
        Assert.Empty(RecalledFacts(models));
        await globex.RunAsync(await globex.CreateThreadAsync(), "assistant", "Remember:\nThe visitor parking gate code is 9021.");
        await globex.RunAsync(await globex.CreateThreadAsync(), "assistant", "Which number opens the gate where employees leave their cars?");
        Assert.Equal(["The visitor parking gate code is 9021."], RecalledFacts(models));
    }

    /// <summary>The facts listed in the instructions of the latest model request (empty when it got none).</summary>
    private static List<string> RecalledFacts(ScriptedModels models)
    {
        var instructions = models.Options.Last()?.Instructions ?? "";
        var marker = "Facts you remembered in earlier conversations:\n";
        var at = instructions.IndexOf(marker, StringComparison.Ordinal);
        return at < 0
            ? []
            : [.. instructions[(at + marker.Length)..].Split('\n').TakeWhile(l => l.StartsWith("- ", StringComparison.Ordinal)).Select(l => l[2..])];
    }
}
