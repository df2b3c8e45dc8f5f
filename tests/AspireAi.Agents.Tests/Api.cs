using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace AspireAi.Agents.Tests;

/// <summary>Small helpers over the HTTP API so that tests read as requests and answers.</summary>
internal static class Api
{
    public static async Task CreateAgentAsync(this HttpClient client, object agent) =>
        await (await client.PostAsJsonAsync("/v1/agents", agent)).JsonAsync(HttpStatusCode.Created);

    public static async Task<string> CreateThreadAsync(this HttpClient client) =>
        (await (await client.PostAsync("/v1/threads", null)).JsonAsync(HttpStatusCode.Created)).GetProperty("id").GetString()!;

    /// <summary>Starts a run and reads its SSE stream to the end: the events as (type, data).</summary>
    public static async Task<List<(string Type, JsonElement Data, int Seq)>> RunStreamingAsync(this HttpClient client, string threadId, string agent, string input)
    {
        var response = await client.PostAsJsonAsync($"/v1/threads/{threadId}/runs", new { agent, input });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return ParseSse(await response.Content.ReadAsStringAsync());
    }

    public static List<(string Type, JsonElement Data, int Seq)> ParseSse(string body)
    {
        var events = new List<(string, JsonElement, int)>();
        foreach (var block in body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var data = block.Split('\n').FirstOrDefault(l => l.StartsWith("data: ", StringComparison.Ordinal))?["data: ".Length..];
            if (data is null || data == "[DONE]")
            {
                continue;
            }

            var json = JsonDocument.Parse(data).RootElement.Clone();
            events.Add((json.GetProperty("type").GetString()!, json.GetProperty("data"), json.GetProperty("seq").GetInt32()));
        }

        return events;
    }

    public static async Task<JsonElement> RunAsync(this HttpClient client, string threadId, string agent, string input) =>
        await (await client.PostAsJsonAsync($"/v1/threads/{threadId}/runs?stream=false", new { agent, input })).JsonAsync(HttpStatusCode.OK);

    public static async Task<JsonElement> GetRunAsync(this HttpClient client, string threadId, string runId) =>
        await (await client.GetAsync($"/v1/threads/{threadId}/runs/{runId}")).JsonAsync(HttpStatusCode.OK);

    public static IEnumerable<JsonElement> Events(this JsonElement run, string type) =>
        run.GetProperty("events").EnumerateArray().Where(e => e.GetProperty("type").GetString() == type).Select(e => e.GetProperty("data"));

    /// <summary>Polls until the run reaches one of <paramref name="statuses"/>.</summary>
    public static async Task<JsonElement> WaitForStatusAsync(this HttpClient client, string threadId, string runId, params string[] statuses)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var run = await client.GetRunAsync(threadId, runId);
            if (statuses.Contains(run.GetProperty("status").GetString()))
            {
                return run;
            }

            Assert.True(DateTime.UtcNow < deadline, $"Run {runId} stayed '{run.GetProperty("status").GetString()}', expected {string.Join("/", statuses)}.");
            await Task.Delay(100);
        }
    }
}
