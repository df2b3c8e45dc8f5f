using System.Text.Json;
using AspireAi.Agents.Tools;
using AspireAi.TestSupport;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace AspireAi.Agents.Tests;

/// <summary>
/// Durability: a planned multi-step run is interrupted by stopping the service mid-run — once during a step, once while the
/// answer streams its tokens — and new instances on the same database complete it from its last completed step, with every
/// tool call executed once and a replay that reads as one answer. The model is scripted: the test needs a plan of exactly
/// three steps (two independent, one depending on both), known tool calls, and an answer it can stop after its third token.
/// </summary>
public sealed class RestartTests(PostgresServer postgres)
{
    private const string Answer = "All counted: apples, pears and baskets.";

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

        return ScriptedModels.Text(Answer);
    }

    [Fact]
    public async Task A_run_stopped_mid_step_and_mid_answer_resumes_after_restarts_with_each_tool_call_once_and_one_answer()
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

        // The second instance finishes the steps and starts streaming the answer; it is stopped before the answer's fourth token.
        var heldMidAnswer = new TaskCompletionSource();
        models.BeforeToken = (model, messages, index) =>
            model == "worker" && index == 3 && ScriptedModels.LastUser(messages).StartsWith("count everything", StringComparison.Ordinal)
                ? HoldAsync(heldMidAnswer)
                : Task.CompletedTask;
        List<string> streamedBeforeStop;
        int lastSeqBeforeStop;
        var second = new AgentsHost(database, models, Services);
        await using (second)
        {
            var client = second.ClientFor("t"); // starts the instance, which resumes the run
            await heldMidAnswer.Task.WaitAsync(TimeSpan.FromSeconds(60));
            var interrupted = await client.GetRunAsync(thread, runId);
            streamedBeforeStop = [.. interrupted.Events("token").Select(t => t.GetProperty("delta").GetString()!)];
            lastSeqBeforeStop = interrupted.GetProperty("events").EnumerateArray().Max(e => e.GetProperty("seq").GetInt32());
        }

        // The token events were persisted as they streamed (this is what a replay would have shown twice).
        Assert.Equal(["All ", "counted: ", "apples, "], streamedBeforeStop);
        models.BeforeToken = null;

        await using var third = new AgentsHost(database, models, Services);
        var resumedClient = third.ClientFor("t");
        var run = await resumedClient.WaitForStatusAsync(thread, runId, "completed", "failed", "incomplete");

        Assert.Equal("completed", run.GetProperty("status").GetString());
        Assert.Equal(Answer, run.GetProperty("output").GetString());
        Assert.Equal(new Dictionary<string, int> { ["apples"] = 1, ["pears"] = 1, ["baskets"] = 1 }, tool.Executions.ToDictionary());
        Assert.Equal(callsBeforeRestart, models.Requests.Count(r => ScriptedModels.LastUser(r).Contains("Your step: count apples", StringComparison.Ordinal)));
        var resumes = run.Events("run.resumed").ToList();
        Assert.Equal(2, resumes.Count);
        Assert.Equal(["plan", "step:0:s1", "step:0:s2"], resumes[0].GetProperty("completed_steps").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(0, resumes[0].GetProperty("discarded_token_events").GetInt32());
        Assert.Equal(["plan", "step:0:s1", "step:0:s2", "step:0:s3"], resumes[1].GetProperty("completed_steps").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(streamedBeforeStop.Count, resumes[1].GetProperty("discarded_token_events").GetInt32());
        var basketsResult = run.Events("tool.result").Last(r => r.GetProperty("step").GetString() == "step:0:s3");
        Assert.True(basketsResult.GetProperty("cached").GetBoolean(), "the re-run step got the recorded result");
        Assert.Single(run.Events("plan"));

        // The replay reads as one answer: the interrupted attempt's tokens are gone, the second attempt's are all there.
        var tokens = run.Events("token").Select(t => t.GetProperty("delta").GetString()).ToList();
        Assert.Equal(Answer, string.Concat(tokens));
        Assert.Equal(run.Events("answer").Single().GetProperty("text").GetString(), string.Concat(tokens));
        var replayed = Api.ParseSse(await resumedClient.GetStringAsync($"/v1/threads/{thread}/runs/{runId}?stream=true"));
        Assert.Equal(Answer, string.Concat(replayed.Where(e => e.Type == "token").Select(e => e.Data.GetProperty("delta").GetString())));

        // Event numbers only grow and are never given twice: the second resume comes right after the last number ever used.
        var events = run.GetProperty("events").EnumerateArray().ToList();
        var seqs = events.Select(e => e.GetProperty("seq").GetInt32()).ToList();
        Assert.Equal(seqs.Order().Distinct(), seqs);
        var secondResume = events.Where(e => e.GetProperty("type").GetString() == "run.resumed").Last();
        Assert.Equal(lastSeqBeforeStop + 1, secondResume.GetProperty("seq").GetInt32());

        // The thread holds the turn once, with the whole answer.
        var messages = await (await resumedClient.GetAsync($"/v1/threads/{thread}/messages")).JsonAsync(System.Net.HttpStatusCode.OK);
        Assert.Equal(["count everything", Answer], messages.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("content").GetString()));
    }

    private static async Task HoldAsync(TaskCompletionSource reached)
    {
        reached.TrySetResult();
        await Task.Delay(Timeout.Infinite);
    }

    private static StringContent JsonContent(object value) =>
        new(JsonSerializer.Serialize(value), System.Text.Encoding.UTF8, "application/json");
}
