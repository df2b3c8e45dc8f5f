using System.ComponentModel;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using AspireAi.Inference.Serving;
using AspireAi.Inference.Tests.Support;
using Microsoft.Extensions.AI;

namespace AspireAi.Inference.Tests.Serving;

/// <summary>
/// The API suite through the OpenAI .NET client (via Microsoft.Extensions.AI.OpenAI) against the running server with
/// stories15M (real text), and the same calls through the in-process <see cref="EngineChatClient"/>.
/// </summary>
public sealed class OpenAiClientTests(StoriesServerFixture server, RandomWeightServerFixture randomServer)
    : IClassFixture<StoriesServerFixture>, IClassFixture<RandomWeightServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ChatMessage[] Conversation => [new(ChatRole.User, "Tell me a story about a cat.")];

    [Fact]
    public async Task Streaming_and_non_streaming_give_the_same_greedy_text_with_usage()
    {
        var client = server.Host.OpenAiChatClient();
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 24 };
        var whole = await client.GetResponseAsync(Conversation, options, Ct);

        var streamed = "";
        UsageDetails? usage = null;
        await foreach (var update in client.GetStreamingResponseAsync(Conversation, options, Ct))
        {
            streamed += update.Text;
            usage ??= update.Contents.OfType<UsageContent>().FirstOrDefault()?.Details;
        }

        Assert.False(string.IsNullOrWhiteSpace(whole.Text));
        Assert.Equal(whole.Text, streamed);
        Assert.Equal(ChatFinishReason.Length, whole.FinishReason);
        Assert.Equal(24, whole.Usage!.OutputTokenCount);
        Assert.NotNull(usage);
        Assert.Equal(whole.Usage.InputTokenCount, usage!.InputTokenCount);

        // The in-process client runs the same path without HTTP.
        var local = await new EngineChatClient(server.Host.Model).GetResponseAsync(Conversation, options, Ct);
        Assert.Equal(whole.Text, local.Text);
    }

    [Description("Gets the weather of a city.")]
    private static string GetWeather([Description("The city")] string city) => $"It is sunny in {city}.";

    [Fact]
    public async Task Required_tool_call_is_invoked_then_answered()
    {
        // No model here would call a tool on its own (stories15M is a base model whose 256-token context cannot even hold
        // the round trip; this one has random weights and a 1,024-token context). tool_choice "required" makes the server
        // constrain the output to a well-formed call in the template's format (Hermes <tool_call>), so the call is the
        // model's own sampled output, kept within the grammar: no scripted model.
        var calls = new List<string>();
        var function = AIFunctionFactory.Create((string city) =>
        {
            calls.Add(city);
            return GetWeather(city);
        }, "get_weather", "Gets the weather of a city.");
        var client = new ChatClientBuilder(randomServer.Host.OpenAiChatClient()).UseFunctionInvocation().Build();
        var response = await client.GetResponseAsync(
            [new ChatMessage(ChatRole.User, "What is the weather in Paris?")],
            new ChatOptions { Tools = [function], ToolMode = ChatToolMode.RequireAny, Temperature = 0.7f, Seed = 1, MaxOutputTokens = 120 }, Ct);

        Assert.Single(calls);
        var call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Single();
        Assert.Equal("get_weather", call.Name);
        Assert.True(call.Arguments!.ContainsKey("city"));
        var result = response.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().Single();
        Assert.Equal(call.CallId, result.CallId);
        Assert.False(string.IsNullOrWhiteSpace(response.Messages[^1].Text), "after the tool result the model answers in text");
    }

    [Fact]
    public async Task Streamed_tool_call_arrives_as_a_delta()
    {
        var function = AIFunctionFactory.Create((string city) => GetWeather(city), "get_weather");
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in server.Host.OpenAiChatClient().GetStreamingResponseAsync(
            [new ChatMessage(ChatRole.User, "Weather in Oslo?")],
            new ChatOptions { Tools = [function], ToolMode = ChatToolMode.RequireSpecific("get_weather"), MaxOutputTokens = 100, Seed = 3 }, Ct))
        {
            updates.Add(update);
        }

        var call = updates.SelectMany(u => u.Contents).OfType<FunctionCallContent>().Single();
        Assert.Equal("get_weather", call.Name);
        Assert.IsType<string>(call.Arguments!["city"]?.ToString());
        Assert.Contains(updates, u => u.FinishReason == ChatFinishReason.ToolCalls);
    }

    [Fact]
    public async Task Tool_call_arguments_stream_in_pieces_that_add_up_to_the_arguments()
    {
        // The random-weight model calls the tool because tool_choice forces a well-formed call (constrained decoding, see
        // Required_tool_call_is_invoked_then_answered); which arguments it writes is its own sampling.
        var tools = new[]
        {
            new
            {
                type = "function",
                function = new
                {
                    name = "plan_trip",
                    parameters = new
                    {
                        type = "object",
                        properties = new { city = new { type = "string" }, days = new { type = "integer" }, stops = new { type = "array", items = new { type = "string" } } },
                        required = new[] { "city", "days", "stops" },
                    },
                },
            },
        };
        object Request(bool stream) => new
        {
            model = randomServer.Host.Model.Id,
            messages = new[] { new { role = "user", content = "Plan a trip." } },
            tools,
            tool_choice = "required",
            max_tokens = 200,
            temperature = 0.8,
            seed = 4,
            stream,
        };

        var whole = JsonNode.Parse(await (await randomServer.Host.Http.PostAsJsonAsync("/v1/chat/completions", Request(stream: false), Ct)).Content.ReadAsStringAsync(Ct))!;
        var call = whole["choices"]![0]!["message"]!["tool_calls"]![0]!["function"]!;
        var arguments = call["arguments"]!.GetValue<string>();
        Assert.Equal("plan_trip", call["name"]!.GetValue<string>());
        using (var parsed = JsonDocument.Parse(arguments))
        {
            Assert.Equal(JsonValueKind.Array, parsed.RootElement.GetProperty("stops").ValueKind);
        }

        using var message = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(Request(stream: true)) };
        using var response = await randomServer.Host.Http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, Ct);
        var deltas = new List<JsonNode>();
        string? finish = null;
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct));
        while (await reader.ReadLineAsync(Ct) is { } line)
        {
            if (line.StartsWith("data: {", StringComparison.Ordinal) && JsonNode.Parse(line[6..])!["choices"]![0] is { } choice)
            {
                deltas.AddRange(choice["delta"]!["tool_calls"]?.AsArray().Select(d => d!) ?? []);
                finish ??= choice["finish_reason"]?.GetValue<string>();
            }
        }

        Assert.Equal("tool_calls", finish);
        Assert.All(deltas, d => Assert.Equal(0, d["index"]!.GetValue<int>()));
        Assert.StartsWith("call_", deltas[0]["id"]!.GetValue<string>());
        Assert.Equal("function", deltas[0]["type"]!.GetValue<string>());
        Assert.Equal("plan_trip", deltas[0]["function"]!["name"]!.GetValue<string>());
        Assert.All(deltas.Skip(1), d => Assert.Null(d["id"] ?? d["function"]!["name"]));
        Assert.True(deltas.Count > 3, $"arguments should arrive in several pieces, not {deltas.Count - 1}");
        Assert.Equal(arguments, string.Concat(deltas.Select(d => d["function"]!["arguments"]!.GetValue<string>())));

        // The OpenAI client joins the pieces back into one call: the same as its non-streaming call.
        var client = randomServer.Host.OpenAiChatClient();
        var function = AIFunctionFactory.Create((string city, int days, string[] stops) => "ok", "plan_trip");
        var options = new ChatOptions { Tools = [function], ToolMode = ChatToolMode.RequireAny, MaxOutputTokens = 200, Temperature = 0.8f, Seed = 4 };
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Plan a trip.")], options, Ct))
        {
            updates.Add(update);
        }

        var joined = updates.SelectMany(u => u.Contents).OfType<FunctionCallContent>().Single();
        var single = (await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Plan a trip.")], options, Ct))
            .Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Single();
        Assert.Equal("plan_trip", joined.Name);
        Assert.StartsWith("call_", joined.CallId);
        Assert.Equal(JsonSerializer.Serialize(single.Arguments), JsonSerializer.Serialize(joined.Arguments));
        Assert.Equal(3, joined.Arguments!.Count);
    }

    public sealed record Pet(string Name, int Age, bool Friendly);

    [Fact]
    public async Task Structured_output_parses_into_the_requested_type()
    {
        var client = server.Host.OpenAiChatClient();
        var response = await client.GetResponseAsync<Pet>(
            [new ChatMessage(ChatRole.User, "Describe a pet.")], new ChatOptions { MaxOutputTokens = 60, Seed = 11, Temperature = 0.8f }, cancellationToken: Ct);
        Assert.True(response.TryGetResult(out var pet), response.Text);
        Assert.NotNull(pet!.Name);

        var json = await client.GetResponseAsync(
            [new ChatMessage(ChatRole.User, "Any JSON.")], new ChatOptions { ResponseFormat = ChatResponseFormat.Json, MaxOutputTokens = 50, Seed = 5 }, Ct);
        using var document = JsonDocument.Parse(json.Text);
        Assert.Equal(JsonValueKind.Object, document.RootElement.ValueKind);
    }
}

/// <summary>The server on the shared stories15M (Q8_0), started once per test class.</summary>
public sealed class StoriesServerFixture : IAsyncLifetime
{
    public ServingHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        Host = await ServingHost.StartAsync(TestPaths.SharedModel("stories15M-q8_0.gguf"), "--kv-cache-tokens", "4096", "--max-num-seqs", "8", "--max-batched-tokens", "256");

    public async ValueTask DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>The server on a tiny random-weight model with stories15M's vocabulary and a 1,024-token context.</summary>
public sealed class RandomWeightServerFixture : IAsyncLifetime
{
    private readonly TempDirectory _temp = new();

    public ServingHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var path = _temp.File("random-32k.gguf");
        RealVocabularyModel.Write(path, RealVocabularyModel.Spec with { Context = 1024 });
        Host = await ServingHost.StartAsync(path, "--kv-cache-tokens", "8192", "--max-num-seqs", "8", "--max-batched-tokens", "256");
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        _temp.Dispose();
    }
}
