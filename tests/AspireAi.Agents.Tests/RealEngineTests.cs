using System.Net;
using System.Net.Http.Json;
using AspireAi.TestSupport;

namespace AspireAi.Agents.Tests;

/// <summary>
/// Agents with the real Inference engine as their model (no scripted model): stories15M writes whatever it writes, so the
/// tests check the run's mechanics — streamed token deltas, the final answer equal to them, usage counted by the engine,
/// events persisted and replayed — never the text's meaning.
/// </summary>
public sealed class RealEngineTests(PostgresServer postgres, EngineServer engine) : IClassFixture<EngineServer>, IAsyncLifetime
{
    private AgentsHost _host = null!;
    private HttpClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        // No model provider given: the host keeps Agents' own OpenAI-compatible provider, pointed at the engine.
        _host = new AgentsHost(await postgres.CreateDatabaseAsync("agents_real_engine"), models: null,
            settings: new Dictionary<string, string?> { ["services:inference:http:0"] = engine.BaseAddress });
        _client = _host.ClientFor("tenant-engine");
        await _client.CreateAgentAsync(new { name = "teller", instructions = "Tell a story.", model = EngineServer.Model, limits = new { max_steps = 2 } });
    }

    public async ValueTask DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task A_run_on_the_real_engine_streams_tokens_answer_and_usage_and_replays_them()
    {
        var thread = await _client.CreateThreadAsync();
        var events = await _client.RunStreamingAsync(thread, "teller", "Once upon a time");

        Assert.Equal("run.created", events[0].Type);
        Assert.True(events[^1].Type == "run.completed", $"The run ended with {events[^1].Type}: {events[^1].Data}");
        var tokens = events.Where(e => e.Type == "token").Select(e => e.Data.GetProperty("delta").GetString()).ToList();
        Assert.True(tokens.Count >= 2, $"the engine streams its answer as token deltas, got {tokens.Count}");
        var answer = events.Single(e => e.Type == "answer").Data.GetProperty("text").GetString();
        Assert.False(string.IsNullOrWhiteSpace(answer));
        Assert.Equal(answer, string.Concat(tokens));
        var usage = events.Single(e => e.Type == "usage").Data;
        Assert.True(usage.GetProperty("prompt_tokens").GetInt32() > 0);
        Assert.True(usage.GetProperty("completion_tokens").GetInt32() > 0);
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + usage.GetProperty("completion_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());

        var runId = events[0].Data.GetProperty("run_id").GetString()!;
        var replay = await _client.GetRunAsync(thread, runId);
        Assert.Equal("completed", replay.GetProperty("status").GetString());
        Assert.Equal(events.Select(e => e.Type), replay.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("type").GetString()));
        Assert.Equal(answer, replay.Events("answer").Single().GetProperty("text").GetString());
        var messages = await (await _client.GetAsync($"/v1/threads/{thread}/messages")).JsonAsync(HttpStatusCode.OK);
        Assert.Equal(answer, messages.GetProperty("data")[1].GetProperty("content").GetString());
    }

    [Fact]
    public async Task The_agent_as_a_model_answers_chat_completions_from_the_real_engine()
    {
        var completion = await (await _client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "agent:teller",
            messages = new[] { new { role = "user", content = "Once upon a time" } },
        })).JsonAsync(HttpStatusCode.OK);
        Assert.Equal("agent:teller", completion.GetProperty("model").GetString());
        var content = completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        Assert.False(string.IsNullOrWhiteSpace(content));
        Assert.True(completion.GetProperty("usage").GetProperty("completion_tokens").GetInt32() > 0);

        // The run behind it is persisted like any other: its answer is the completion's content.
        var aspire = completion.GetProperty("aspireai");
        var run = await _client.GetRunAsync(aspire.GetProperty("thread_id").GetString()!, aspire.GetProperty("run_id").GetString()!);
        Assert.Equal("completed", run.GetProperty("status").GetString());
        Assert.Equal(content, run.Events("answer").Single().GetProperty("text").GetString());
        Assert.NotEmpty(run.Events("token"));
    }
}
