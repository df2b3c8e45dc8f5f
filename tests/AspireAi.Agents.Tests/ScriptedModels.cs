using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using AspireAi.Agents.Models;
using Microsoft.Extensions.AI;

namespace AspireAi.Agents.Tests;

/// <summary>
/// A scripted model, for tests that must control exactly what the model says (a plan of three steps, a specific tool call).
/// The script sees the request and answers deterministically from it — so a step re-run after a restart gets the same
/// answer, as a greedy model would give. Every call is counted per model id.
/// </summary>
public sealed class ScriptedModels(Func<string, IReadOnlyList<ChatMessage>, ChatOptions?, ChatResponse> script) : IChatModelProvider
{
    public Func<string, IReadOnlyList<ChatMessage>, ChatOptions?, ChatResponse> Script { get; set; } = script;
    public ConcurrentDictionary<string, int> Calls { get; } = new();
    public ConcurrentQueue<IReadOnlyList<ChatMessage>> Requests { get; } = new();
    /// <summary>The options of every request, in the order of <see cref="Requests"/> (what tools and instructions the model got).</summary>
    public ConcurrentQueue<ChatOptions?> Options { get; } = new();
    /// <summary>Awaited before every answer: a test holds the model here to stop the service mid-run.</summary>
    public Func<string, IReadOnlyList<ChatMessage>, Task>? BeforeAnswer { get; set; }
    /// <summary>Awaited before each streamed token after the first (its index given): a test holds a stream here to stop the service mid-answer.</summary>
    public Func<string, IReadOnlyList<ChatMessage>, int, Task>? BeforeToken { get; set; }
    /// <summary>Models that fail as an unreachable server does.</summary>
    public HashSet<string> Broken { get; } = [];

    public IChatClient GetChatClient(string model) => new Client(this, model);

    /// <summary>The text of the last user message (the step's or run's prompt).</summary>
    public static string LastUser(IReadOnlyList<ChatMessage> messages) => messages.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";

    /// <summary>Tool results so far in this request (after the last user message).</summary>
    public static IReadOnlyList<FunctionResultContent> ToolResults(IReadOnlyList<ChatMessage> messages) =>
        [.. messages.SkipWhile(m => m != messages.LastOrDefault(x => x.Role == ChatRole.User)).SelectMany(m => m.Contents.OfType<FunctionResultContent>())];

    public static ChatResponse Text(string text) => new(new ChatMessage(ChatRole.Assistant, text)) { Usage = new UsageDetails { InputTokenCount = 10, OutputTokenCount = 5 } };

    public static ChatResponse Call(string tool, Dictionary<string, object?> arguments, string? callId = null) =>
        new(new ChatMessage(ChatRole.Assistant, [new FunctionCallContent(callId ?? $"call_{tool}_{arguments.Count}", tool, arguments)]))
        { Usage = new UsageDetails { InputTokenCount = 10, OutputTokenCount = 5 } };

    private sealed class Client(ScriptedModels owner, string model) : IChatClient
    {
        public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var list = messages.ToList();
            owner.Calls.AddOrUpdate(model, 1, (_, n) => n + 1);
            lock (owner.Requests)
            {
                owner.Requests.Enqueue(list);
                owner.Options.Enqueue(options);
            }

            if (owner.Broken.Contains(model))
            {
                throw new HttpRequestException($"Connection refused (model {model})", null, System.Net.HttpStatusCode.ServiceUnavailable);
            }

            if (owner.BeforeAnswer is { } gate)
            {
                await gate(model, list).WaitAsync(cancellationToken);
            }

            var response = owner.Script(model, list, options);
            response.ModelId = model;
            return response;
        }

        public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            var list = messages.ToList();
            var response = await GetResponseAsync(list, options, cancellationToken);
            var index = 0;
            foreach (var message in response.Messages)
            {
                foreach (var content in message.Contents)
                {
                    if (content is TextContent text)
                    {
                        // Word by word, as a model streams tokens.
                        foreach (var piece in System.Text.RegularExpressions.Regex.Split(text.Text, @"(?<=\s)"))
                        {
                            if (piece.Length > 0)
                            {
                                if (index++ > 0 && owner.BeforeToken is { } hold)
                                {
                                    await hold(model, list, index - 1).WaitAsync(cancellationToken);
                                }

                                yield return new ChatResponseUpdate(ChatRole.Assistant, piece) { ModelId = model };
                            }
                        }
                    }
                    else
                    {
                        yield return new ChatResponseUpdate(ChatRole.Assistant, [content]) { ModelId = model };
                    }
                }
            }

            yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(response.Usage ?? new UsageDetails())]) { ModelId = model };
        }

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }
}
