using System.Globalization;
using AspireAi.Agents.Models;
using AspireAi.TestSupport;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace AspireAi.Agents.Tests;

/// <summary>
/// The model router's policy and the cost limit. The answering models are scripted, because the tests count which model
/// got each request and need known usage per call (10 prompt + 5 completion tokens) to price it; the failing model in the
/// fallback test is the real OpenAI-compatible client against an endpoint where nothing listens.
/// </summary>
public sealed class CostAndRoutingTests(PostgresServer postgres)
{
    /// <summary>A plan of three steps, each needing the one before; each step reports what it found; the answer names its model.</summary>
    private static ChatResponse Script(string model, IReadOnlyList<ChatMessage> messages, ChatOptions? options)
    {
        var prompt = ScriptedModels.LastUser(messages);
        if (prompt.StartsWith("Goal:", StringComparison.Ordinal) && !prompt.Contains("Your step:", StringComparison.Ordinal))
        {
            return ScriptedModels.Text("""
                {"steps":[{"id":"s1","task":"find apples","tool":null,"depends_on":[]},
                          {"id":"s2","task":"find pears","tool":null,"depends_on":["s1"]},
                          {"id":"s3","task":"find plums","tool":null,"depends_on":["s2"]}]}
                """);
        }

        return prompt.Contains("Your step: find ", StringComparison.Ordinal)
            ? ScriptedModels.Text($"found {prompt.Split("Your step: find ")[1].Split('\n')[0].Trim()} in aisle {prompt.Length % 7}")
            : ScriptedModels.Text($"answered by {model}");
    }

    [Fact]
    public async Task Max_cost_ends_the_run_incomplete_with_the_limits_code_and_what_it_found()
    {
        var models = new ScriptedModels(Script);
        // 1 per 1000 prompt tokens, 2 per 1000 completion tokens: every scripted call (10 + 5 tokens) costs 0.02.
        await using var host = new AgentsHost(await postgres.CreateDatabaseAsync("agents_cost"), models, settings: new Dictionary<string, string?>
        {
            ["Agents:Models:Prices:worker:InputPer1K"] = "1",
            ["Agents:Models:Prices:worker:OutputPer1K"] = "2",
        });
        var client = host.ClientFor("t");
        await client.CreateAgentAsync(new { name = "shopper", instructions = "Shop.", model = "worker", planning = true, limits = new { max_cost = 0.05 } });

        var run = await client.RunAsync(await client.CreateThreadAsync(), "shopper", "find the fruit");

        // Plan (0.02), s1 (0.04), s2 (0.06): the cost reached the limit, so s3 never called the model.
        Assert.Equal("incomplete", run.GetProperty("status").GetString());
        var error = run.GetProperty("error");
        Assert.Equal("max_cost", error.GetProperty("code").GetString());
        Assert.Contains("0.05", error.GetProperty("message").GetString());
        Assert.Equal(3, models.Calls["worker"]);
        Assert.Equal(0.06m, run.GetProperty("usage").GetProperty("cost").GetDecimal());
        var found = run.Events("step.completed").Select(s => s.GetProperty("result").GetString()!).ToList();
        Assert.Equal(2, found.Count);
        var output = run.GetProperty("output").GetString()!;
        Assert.Contains("stopped before it finished", output);
        Assert.All(found, f => Assert.Contains(f, output));
        Assert.Equal(output, run.Events("answer").Single().GetProperty("text").GetString());
        Assert.Equal("run.incomplete", run.GetProperty("events").EnumerateArray().Last().GetProperty("type").GetString());
        Assert.Equal(0.06m, run.Events("usage").Single().GetProperty("cost").GetDecimal());
    }

    [Fact]
    public async Task A_request_larger_than_a_models_window_goes_to_a_model_whose_window_holds_it()
    {
        var models = new ScriptedModels(Script);
        await using var host = new AgentsHost(await postgres.CreateDatabaseAsync("agents_context_route"), models, settings: new Dictionary<string, string?>
        {
            ["Agents:Models:ContextWindows:small"] = "1024",
            ["Agents:Models:ContextWindows:large"] = "100000",
            ["Agents:Models:Fallbacks:0"] = "large",
        });
        var client = host.ClientFor("t");
        await client.CreateAgentAsync(new { name = "brief", instructions = "Answer.", model = "small" });
        // Instructions are part of the request too: about 1000 tokens of them do not fit the small model's window either.
        await client.CreateAgentAsync(new { name = "wordy", instructions = "Answer. " + string.Concat(Enumerable.Repeat("Mind the house rules. ", 190)), model = "small" });
        var thread = await client.CreateThreadAsync();

        var small = await client.RunAsync(thread, "brief", "a short question");
        Assert.Equal("answered by small", small.GetProperty("output").GetString());

        // About 600 tokens of input (2400 characters, 4 a token) plus the 512 kept for the answer: more than 1024.
        var longInput = "a long question: " + string.Concat(Enumerable.Range(0, 800).Select(i => $"w{i % 10} "));
        var large = await client.RunAsync(await client.CreateThreadAsync(), "brief", longInput);
        Assert.Equal("answered by large", large.GetProperty("output").GetString());

        var wordy = await client.RunAsync(await client.CreateThreadAsync(), "wordy", "a short question");
        Assert.Equal("answered by large", wordy.GetProperty("output").GetString());
        Assert.Equal(1, models.Calls["small"]);
        Assert.Equal(2, models.Calls["large"]);
    }

    [Fact]
    public async Task A_model_that_cannot_be_reached_passes_planner_step_and_streamed_answer_calls_to_the_fallback()
    {
        var scripted = new ScriptedModels(Script);
        var attempts = new System.Collections.Concurrent.ConcurrentQueue<string>();
        // "down" is the real OpenAI-compatible client at services:inference, where nothing listens (127.0.0.1:9); the rest is scripted.
        void Services(IServiceCollection s)
        {
            s.RemoveAll<IChatModelProvider>();
            s.AddSingleton<IChatModelProvider>(sp => new RealOrScripted(ActivatorUtilities.CreateInstance<OpenAiChatModelProvider>(sp), scripted, "down", attempts));
        }

        await using var host = new AgentsHost(await postgres.CreateDatabaseAsync("agents_fallback"), models: null, Services,
            settings: new Dictionary<string, string?> { ["Agents:Models:Fallbacks:0"] = "steady" });
        var client = host.ClientFor("t");
        await client.CreateAgentAsync(new { name = "resilient", instructions = "x", model = "down", planning = true });

        var run = await client.RunAsync(await client.CreateThreadAsync(), "resilient", "find the fruit");

        Assert.Equal("completed", run.GetProperty("status").GetString());
        Assert.Equal("answered by steady", run.GetProperty("output").GetString());
        Assert.Equal(3, run.Events("step.completed").Count(s => s.GetProperty("step").GetString() != "answer"));
        // Planner (structured output), three steps and the streamed answer: five calls, each tried on "down" first.
        Assert.Equal(5, scripted.Calls["steady"]);
        Assert.Equal(5, attempts.Count);
        Assert.Equal(string.Concat(run.Events("token").Select(t => t.GetProperty("delta").GetString())), run.GetProperty("output").GetString());
    }

    /// <summary>The real provider for one model id (counting the attempts), the scripted one for the others.</summary>
    private sealed class RealOrScripted(IChatModelProvider real, ScriptedModels scripted, string realModel, System.Collections.Concurrent.ConcurrentQueue<string> attempts)
        : IChatModelProvider
    {
        public IChatClient GetChatClient(string model) => model == realModel
            ? real.GetChatClient(model).AsBuilder().Use(
                (messages, options, inner, ct) => { attempts.Enqueue(model); return inner.GetResponseAsync(messages, options, ct); },
                (messages, options, inner, ct) => { attempts.Enqueue(model); return inner.GetStreamingResponseAsync(messages, options, ct); }).Build()
            : scripted.GetChatClient(model);
    }
}
