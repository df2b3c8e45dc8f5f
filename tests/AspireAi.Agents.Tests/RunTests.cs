using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AspireAi.TestSupport;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Tests;

/// <summary>
/// Runs through the API with a scripted model: these tests must control exactly what the model says (a tool call with given
/// arguments, a reply that depends on the tool's result), which no real model guarantees.
/// </summary>
public sealed class RunTests(PostgresServer postgres) : IAsyncLifetime
{
    private AgentsHost _host = null!;
    private HttpClient _client = null!;
    private ScriptedModels _models = null!;

    public async ValueTask InitializeAsync()
    {
        _models = new ScriptedModels((_, messages, _) => ScriptedModels.Text($"You said: {ScriptedModels.LastUser(messages)}"));
        _host = new AgentsHost(await postgres.CreateDatabaseAsync("agents_runs"), _models);
        _client = _host.ClientFor("tenant-runs");
    }

    public async ValueTask DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task A_run_streams_its_events_persists_them_for_replay_and_its_messages_in_the_thread()
    {
        await _client.CreateAgentAsync(new { name = "echo", instructions = "Repeat.", model = "worker" });
        var thread = await _client.CreateThreadAsync();
        var events = await _client.RunStreamingAsync(thread, "echo", "hello there");

        Assert.Equal("run.created", events[0].Type);
        Assert.Equal("run.completed", events[^1].Type);
        Assert.Equal(Enumerable.Range(1, events.Count), events.Select(e => e.Seq));
        var tokens = events.Where(e => e.Type == "token").Select(e => e.Data.GetProperty("delta").GetString()).ToList();
        Assert.True(tokens.Count >= 3, "the answer arrives as several token deltas");
        Assert.Equal("You said: hello there", string.Concat(tokens));
        var answer = events.Single(e => e.Type == "answer").Data;
        Assert.Equal("You said: hello there", answer.GetProperty("text").GetString());
        Assert.Equal(15, events.Single(e => e.Type == "usage").Data.GetProperty("total_tokens").GetInt32());

        var runId = events[0].Data.GetProperty("run_id").GetString()!;
        var replay = await _client.GetRunAsync(thread, runId);
        Assert.Equal("completed", replay.GetProperty("status").GetString());
        Assert.Equal(events.Select(e => e.Type), replay.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("type").GetString()));
        var replayStream = Api.ParseSse(await _client.GetStringAsync($"/v1/threads/{thread}/runs/{runId}?stream=true"));
        Assert.Equal(events.Select(e => e.Seq), replayStream.Select(e => e.Seq));

        // Episodic memory: the second run sees the first one's turn in its history.
        var second = await _client.RunAsync(thread, "echo", "again");
        Assert.Equal("completed", second.GetProperty("status").GetString());
        var lastRequest = _models.Requests.Last();
        Assert.Contains(lastRequest, m => m.Role == ChatRole.Assistant && m.Text == "You said: hello there");
        var messages = await (await _client.GetAsync($"/v1/threads/{thread}/messages")).JsonAsync(HttpStatusCode.OK);
        Assert.Equal(["user", "assistant", "user", "assistant"], messages.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("role").GetString()));
        Assert.Equal("again", messages.GetProperty("data")[2].GetProperty("content").GetString());
    }

    [Fact]
    public async Task Run_requests_are_validated_and_scoped_to_the_tenant()
    {
        await _client.CreateAgentAsync(new { name = "scoped", instructions = "x", model = "worker" });
        var thread = await _client.CreateThreadAsync();
        await (await _client.PostAsJsonAsync($"/v1/threads/{thread}/runs", new { agent = "nobody", input = "hi" })).ErrorAsync(HttpStatusCode.NotFound, "agent");
        await (await _client.PostAsJsonAsync($"/v1/threads/{thread}/runs", new { agent = "scoped" })).ErrorAsync(HttpStatusCode.BadRequest, "input");
        var other = _host.ClientFor("someone-else");
        await (await other.PostAsJsonAsync($"/v1/threads/{thread}/runs", new { agent = "scoped", input = "hi" })).ErrorAsync(HttpStatusCode.NotFound, "thread_id");
        await (await other.GetAsync($"/v1/threads/{thread}/messages")).ErrorAsync(HttpStatusCode.NotFound, "thread_id");
    }

    [Fact]
    public async Task Code_that_tries_the_network_is_stopped_and_the_run_reports_it()
    {
        _models.Script = (_, messages, _) => ScriptedModels.ToolResults(messages) is [var result, ..]
            ? ScriptedModels.Text("The sandbox said: " + result.Result)
            : ScriptedModels.Call("run_code", new() { ["code"] = "import urllib.request; urllib.request.urlopen('http://1.1.1.1', timeout=2)", ["language"] = "python" });
        await _client.CreateAgentAsync(new { name = "coder", instructions = "Run code.", model = "worker", tools = new[] { "run_code" } });
        var run = await _client.RunAsync(await _client.CreateThreadAsync(), "coder", "fetch a page with python");

        Assert.Equal("completed", run.GetProperty("status").GetString());
        var result = run.Events("tool.result").Single().GetProperty("result").GetString()!;
        Assert.Contains("exit_code: 1", result);
        Assert.Contains("Network is unreachable", result);
        Assert.Contains("Network is unreachable", run.GetProperty("output").GetString());
    }

    [Fact]
    public async Task A_tool_that_requires_approval_pauses_the_run_until_approved_or_rejected()
    {
        _models.Script = (_, messages, _) => ScriptedModels.ToolResults(messages) is [var result, ..]
            ? ScriptedModels.Text("Result: " + result.Result)
            : ScriptedModels.Call("write_file", new() { ["path"] = "note.txt", ["content"] = "approved content" });
        await _client.CreateAgentAsync(new { name = "writer", instructions = "Write.", model = "worker", tools = new object[] { new { type = "files", requires_approval = true } } });

        foreach (var approve in new[] { true, false })
        {
            var thread = await _client.CreateThreadAsync();
            var paused = await _client.RunAsync(thread, "writer", "write a note");
            Assert.Equal("requires_action", paused.GetProperty("status").GetString());
            var request = paused.Events("approval.required").Single();
            Assert.Equal("write_file", request.GetProperty("tool").GetString());
            var runId = paused.GetProperty("id").GetString()!;
            var workspace = Path.Combine(Path.GetTempPath(), "aspireai-agents-tests", runId, "note.txt");
            Assert.False(File.Exists(workspace), "nothing runs before the decision");

            var decision = approve
                ? await _client.PostAsync($"/v1/threads/{thread}/runs/{runId}/approve", null)
                : await _client.PostAsJsonAsync($"/v1/threads/{thread}/runs/{runId}/reject", new { reason = "not today" });
            await decision.JsonAsync(HttpStatusCode.OK);
            var done = await _client.WaitForStatusAsync(thread, runId, "completed", "failed");
            Assert.Equal("completed", done.GetProperty("status").GetString());
            Assert.Equal(approve, done.Events("approval.decided").Single().GetProperty("approved").GetBoolean());
            Assert.Equal(approve, File.Exists(workspace));
            Assert.Contains(approve ? "Wrote" : "rejected", done.GetProperty("output").GetString());
            await (await _client.PostAsync($"/v1/threads/{thread}/runs/{runId}/approve", null)).ErrorAsync(HttpStatusCode.Conflict);
        }
    }

    [Fact]
    public async Task A_limit_ends_the_run_as_incomplete_with_what_it_found()
    {
        // The model keeps calling tools; the tool-call limit stops it.
        var calls = 0;
        _models.Script = (_, _, _) => ScriptedModels.Call("list_files", new() { ["path"] = "" }, $"call_{Interlocked.Increment(ref calls)}");
        await _client.CreateAgentAsync(new { name = "looper", instructions = "Loop.", model = "worker", tools = new[] { "files" }, limits = new { max_tool_calls = 2 } });
        var run = await _client.RunAsync(await _client.CreateThreadAsync(), "looper", "look around");

        Assert.Equal("incomplete", run.GetProperty("status").GetString());
        Assert.Equal("max_tool_calls", run.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(2, run.Events("tool.result").Count(r => !r.GetProperty("result").GetString()!.StartsWith("error", StringComparison.Ordinal)));
        Assert.Contains("stopped before it finished", run.GetProperty("output").GetString());
        Assert.Equal("run.incomplete", run.GetProperty("events").EnumerateArray().Last().GetProperty("type").GetString());
    }

    [Fact]
    public async Task The_router_falls_back_to_the_next_model_when_one_fails()
    {
        _models.Broken.Add("flaky");
        await using var host = new AgentsHost(await postgres.CreateDatabaseAsync("agents_router"), _models,
            settings: new Dictionary<string, string?> { ["Agents:Models:Fallbacks:0"] = "steady" });
        var client = host.ClientFor("t");
        await client.CreateAgentAsync(new { name = "fallback", instructions = "x", model = "flaky" });
        var run = await client.RunAsync(await client.CreateThreadAsync(), "fallback", "still there?");
        Assert.Equal("completed", run.GetProperty("status").GetString());
        Assert.Equal("You said: still there?", run.GetProperty("output").GetString());
        Assert.True(_models.Calls["flaky"] >= 1);
        Assert.Equal(1, _models.Calls["steady"]);
    }

    [Fact]
    public async Task An_agent_answers_as_a_model_in_chat_completions_streaming_and_not()
    {
        await _client.CreateAgentAsync(new { name = "chatty", instructions = "Repeat.", model = "worker" });
        var body = new { model = "agent:chatty", messages = new object[] { new { role = "user", content = "first" }, new { role = "assistant", content = "ok" }, new { role = "user", content = "second" } } };
        var completion = await (await _client.PostAsJsonAsync("/v1/chat/completions", body)).JsonAsync(HttpStatusCode.OK);
        Assert.Equal("chat.completion", completion.GetProperty("object").GetString());
        Assert.Equal("You said: second", completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Contains(_models.Requests.Last(), m => m.Role == ChatRole.Assistant && m.Text == "ok");

        var response = await _client.PostAsJsonAsync("/v1/chat/completions", new { body.model, body.messages, stream = true });
        var chunks = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(c => c["data: ".Length..]).ToList();
        Assert.Equal("[DONE]", chunks[^1]);
        var parsed = chunks[..^1].Select(c => JsonDocument.Parse(c).RootElement).ToList();
        Assert.All(parsed, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        var text = string.Concat(parsed.Select(c => c.GetProperty("choices")[0].GetProperty("delta")).Where(d => d.TryGetProperty("content", out _)).Select(d => d.GetProperty("content").GetString()));
        Assert.Equal("You said: second", text);
        Assert.Equal("stop", parsed[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());

        await (await _client.PostAsJsonAsync("/v1/chat/completions", new { model = "agent:nobody", messages = body.messages })).ErrorAsync(HttpStatusCode.NotFound, "model");
    }
}
