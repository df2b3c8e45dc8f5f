using System.ComponentModel;
using System.Text.Json;
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
