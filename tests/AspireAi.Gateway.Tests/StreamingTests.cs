using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using AspireAi.Gateway.Tests.Support;

namespace AspireAi.Gateway.Tests;

/// <summary>
/// Streaming passthrough (scripted upstream: the tests must hold a stream open at a chosen point): chunks reach the client
/// while the upstream is still writing, and the usage chunk is counted.
/// </summary>
public sealed class StreamingTests(TestStack stack)
{
    [Fact]
    public async Task The_first_chunk_reaches_the_client_while_the_upstream_still_holds_the_rest()
    {
        await using var upstream = await new ScriptedUpstream("held").StartAsync();
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        upstream.HoldAfterFirstChunk = hold;
        await using var gateway = GatewayApp.Start(stack, new Dictionary<string, string?>
        {
            ["Gateway:Deployments:scripted"] = null,
            ["Gateway:Deployments:held"] = "http://held",
            ["services:held:http:0"] = upstream.Address,
        });
        using var client = await gateway.ClientForNewKeyAsync("stream-held");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = ScriptedUpstream.Model, stream = true, messages = new[] { new { role = "user", content = "go" } } }),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        // The upstream is blocked after its first chunk: reading it proves the gateway did not buffer the stream.
        var first = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.StartsWith("data: ", first);
        Assert.Contains("tok0", first);
        hold.SetResult();
        var rest = await reader.ReadToEndAsync();
        Assert.Contains("tok4", rest);
        Assert.EndsWith("data: [DONE]\n\n", rest);
    }

    [Fact]
    public async Task Streamed_usage_is_requested_from_the_upstream_counted_and_shown_to_the_client_as_OpenAI_sends_it()
    {
        var (key, id) = await stack.Gateway.CreateKeyAsync("stream-usage", limits: new { tokens_per_minute = 100000 });
        using var client = stack.Gateway.Client(key);
        var marker = "count " + Guid.NewGuid();
        using var response = await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = ScriptedUpstream.Model, stream = true, messages = new[] { new { role = "user", content = marker } },
        });
        var text = await response.Content.ReadAsStringAsync();
        var chunks = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(l => l["data: ".Length..]).ToList();
        Assert.Equal("[DONE]", chunks[^1]);
        var usage = JsonDocument.Parse(chunks[^2]).RootElement.GetProperty("usage");
        Assert.Equal(2, usage.GetProperty("prompt_tokens").GetInt32()); // "count <guid>": two words
        Assert.Equal(5, usage.GetProperty("completion_tokens").GetInt32());

        // The client did not ask for usage; the gateway asked the upstream for it so that tokens are counted.
        var forwarded = stack.Scripted.SelectMany(s => s.Requests).Single(r => r.Body.GetProperty("messages")[0].GetProperty("content").GetString() == marker);
        Assert.True(forwarded.Body.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());

        var rows = await UsageRows.WaitForAsync(stack.GatewayDb, id, 1);
        Assert.Equal((2, 5, 200), (rows[0].Prompt, rows[0].Completion, rows[0].Status));
    }
}
