using System.Text.Json;
using AspireAi.Agents.Tools;
using AspireAi.TestSupport;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AspireAi.Agents.Tests;

/// <summary>
/// Durability: a planned multi-step run is interrupted by stopping the service mid-run, and a new instance on the same
/// database completes it from its last completed step, with every tool call executed once. The model is scripted: the test
/// needs a plan of exactly three steps (two independent, one depending on both) and known tool calls.
/// </summary>
public sealed class RestartTests(PostgresServer postgres)
{
    private static ChatResponse Script(string model, IReadOnlyList<ChatMessage> messages, ChatOptions? options)
    {
        if (model == "planner")
        {
            return ScriptedModels.Text("""
                {"steps":[{"id":"s1","task":"count apples","tool":"count","depends_on":[]},
                          {"id":"s2","task":"count pears","tool":"count","depends_on":[]},
                          {"id":"s3","task":"count baskets","tool":"count","depends_on":["s1","s2"]}]}
                """);
        }

        var prompt = ScriptedModels.LastUser(messages);
        if (prompt.Contains("Your step: count ", StringComparison.Ordinal))
        {
            var item = prompt.Split("Your step: count ")[1].Split('\n')[0].Trim();
            return ScriptedModels.ToolResults(messages) is [var result, ..]
                ? ScriptedModels.Text($"{result.Result}")
                : ScriptedModels.Call("count", new() { ["item"] = item });
        }

        return ScriptedModels.Text("All counted.");
    }

    [Fact]
    public async Task A_run_stopped_mid_way_resumes_after_restart_and_runs_each_tool_call_once()
    {
        var database = await postgres.CreateDatabaseAsync("agents_restart");
        var tool = new CountingTool();
        var models = new ScriptedModels(Script);
        var heldAtBaskets = new TaskCompletionSource();
        // Hold the model after the third step's tool call ran, before the step completes: the service is stopped there.
        models.BeforeAnswer = (_, messages) =>
            ScriptedModels.LastUser(messages).Contains("Your step: count baskets", StringComparison.Ordinal) && ScriptedModels.ToolResults(messages).Count > 0
                ? HoldAsync(heldAtBaskets)
                : Task.CompletedTask;
        void Services(IServiceCollection s) => s.AddSingleton<IToolFactory>(tool);

        string thread, runId;
        var first = new AgentsHost(database, models, Services);
        await using (first)
        {
            var client = first.ClientFor("t");
            await client.CreateAgentAsync(new { name = "counter", instructions = "Count.", model = "worker", planner_model = "planner", planning = true, tools = new[] { "memory" } });
            thread = await client.CreateThreadAsync();
            var stream = client.PostAsync($"/v1/threads/{thread}/runs", JsonContent(new { agent = "counter", input = "count everything" }));
            await heldAtBaskets.Task.WaitAsync(TimeSpan.FromSeconds(60));
            var runs = await (await client.GetAsync($"/v1/threads/{thread}/runs")).JsonAsync(System.Net.HttpStatusCode.OK);
            runId = runs.GetProperty("data")[0].GetProperty("id").GetString()!;
            Assert.Equal("running", runs.GetProperty("data")[0].GetProperty("status").GetString());
            _ = stream.ContinueWith(_ => { }, TaskScheduler.Default);
        }

        Assert.Equal(1, tool.Executions["baskets"]);
        var callsBeforeRestart = models.Requests.Count(r => ScriptedModels.LastUser(r).Contains("Your step: count apples", StringComparison.Ordinal));
        models.BeforeAnswer = null;

        await using var second = new AgentsHost(database, models, Services);
        var resumedClient = second.ClientFor("t");
        var run = await resumedClient.WaitForStatusAsync(thread, runId, "completed", "failed", "incomplete");

        Assert.Equal("completed", run.GetProperty("status").GetString());
        Assert.Equal("All counted.", run.GetProperty("output").GetString());
        Assert.Equal(new Dictionary<string, int> { ["apples"] = 1, ["pears"] = 1, ["baskets"] = 1 }, tool.Executions.ToDictionary());
        Assert.Equal(callsBeforeRestart, models.Requests.Count(r => ScriptedModels.LastUser(r).Contains("Your step: count apples", StringComparison.Ordinal)));
        var resumed = run.Events("run.resumed").Single();
        Assert.Equal(["plan", "step:0:s1", "step:0:s2"], resumed.GetProperty("completed_steps").EnumerateArray().Select(s => s.GetString()));
        var basketsResult = run.Events("tool.result").Last(r => r.GetProperty("step").GetString() == "step:0:s3");
        Assert.True(basketsResult.GetProperty("cached").GetBoolean(), "the re-run step got the recorded result");
        Assert.Single(run.Events("plan"));
        var seqs = run.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("seq").GetInt32()).ToList();
        Assert.Equal(Enumerable.Range(1, seqs.Count), seqs);
    }

    private static async Task HoldAsync(TaskCompletionSource reached)
    {
        reached.TrySetResult();
        await Task.Delay(Timeout.Infinite);
    }

    private static StringContent JsonContent(object value) =>
        new(JsonSerializer.Serialize(value), System.Text.Encoding.UTF8, "application/json");
}
