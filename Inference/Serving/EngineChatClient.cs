using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using AspireAi.Inference.Serving.OpenAi;
using Microsoft.Extensions.AI;

namespace AspireAi.Inference.Serving;

/// <summary>
/// The engine as an in-process <see cref="IChatClient"/> (Microsoft.Extensions.AI): the same path as
/// <c>POST /v1/chat/completions</c> — messages and options become that endpoint's request (validated by the same reader),
/// the model's template renders it, tools and JSON output work the same — without HTTP.
/// </summary>
public sealed class EngineChatClient(ServedModel model, string tenant = ServiceDefaults.TenantHeaders.DefaultTenant) : IChatClient
{
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (request, prompt, handles) = Submit(messages, options, stream: false, cancellationToken);
        var results = await GenerationRunner.CollectAsync(handles, cancellationToken);
        var response = new ChatResponse([.. results.Select((r, i) => Message(request, r))])
        {
            ModelId = model.Id,
            ResponseId = "chatcmpl-" + Guid.NewGuid().ToString("N"),
            CreatedAt = DateTimeOffset.UtcNow,
            Usage = Usage(prompt.Length, results),
        };
        response.FinishReason = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Any()
            ? ChatFinishReason.ToolCalls
            : Finish(results[0].FinishReason);
        return response;
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (request, prompt, handles) = Submit(messages, options, stream: true, cancellationToken);
        var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var parser = request.ParsesTools ? model.ToolFormat.Stream() : null;
        var result = new ChoiceResult();
        await foreach (var (_, e) in GenerationRunner.MergeAsync(handles, cancellationToken))
        {
            result.Add(e);
            var text = parser is null ? e.Text : parser.Push(e.Text);
            if (text.Length > 0)
            {
                yield return Update(id, [new TextContent(text)]);
            }

            if (e.FinishReason is null)
            {
                continue;
            }

            var reason = Finish(e.FinishReason);
            if (parser is not null)
            {
                var (rest, calls) = parser.Finish();
                if (rest.Length > 0)
                {
                    yield return Update(id, [new TextContent(rest)]);
                }

                if (calls.Count > 0)
                {
                    reason = ChatFinishReason.ToolCalls;
                    yield return Update(id, [.. calls.Select(Call)]);
                }
            }

            var final = Update(id, [new UsageContent(Usage(prompt.Length, [result]))]);
            final.FinishReason = reason;
            yield return final;
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("aspireai", null, model.Id)
        : serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
        // The served model belongs to the host.
    }

    private (ChatRequest Request, int[] Prompt, Engine.EngineRequestHandle[] Handles) Submit(
        IEnumerable<ChatMessage> messages, ChatOptions? options, bool stream, CancellationToken cancellation)
    {
        using var body = JsonDocument.Parse(RequestBody(messages, options, stream).ToJsonString());
        var reader = new RequestReader(body.RootElement);
        var request = ChatRequest.Read(reader);
        if (reader.HasErrors)
        {
            throw new ArgumentException(reader.ErrorMessage);
        }

        var prompt = request.Prompt(model);
        return (request, prompt, GenerationRunner.Submit(model, prompt, request.Settings, request.Constraint(model), tenant, null, cancellation));
    }

    /// <summary>The OpenAI chat request these messages and options stand for.</summary>
    private JsonObject RequestBody(IEnumerable<ChatMessage> messages, ChatOptions? options, bool stream)
    {
        var body = new JsonObject { ["model"] = model.Id, ["stream"] = stream };
        var list = new JsonArray();
        foreach (var message in messages)
        {
            foreach (var result in message.Contents.OfType<FunctionResultContent>())
            {
                list.Add(new JsonObject
                {
                    ["role"] = "tool",
                    ["tool_call_id"] = result.CallId,
                    ["content"] = result.Result is string s ? s : JsonSerializer.Serialize(result.Result),
                });
            }

            var calls = message.Contents.OfType<FunctionCallContent>().ToList();
            var text = string.Concat(message.Contents.OfType<TextContent>().Select(t => t.Text));
            if (calls.Count == 0 && message.Contents.OfType<FunctionResultContent>().Any() && text.Length == 0)
            {
                continue;
            }

            var entry = new JsonObject { ["role"] = message.Role.Value, ["content"] = text };
            if (calls.Count > 0)
            {
                entry["tool_calls"] = new JsonArray([.. calls.Select(c => (JsonNode)new JsonObject
                {
                    ["id"] = c.CallId,
                    ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = c.Name, ["arguments"] = JsonSerializer.Serialize(c.Arguments) },
                })]);
            }

            list.Add(entry);
        }

        body["messages"] = list;
        if (options is null)
        {
            return body;
        }

        if (options.ModelId is { Length: > 0 } modelId)
        {
            body["model"] = modelId;
        }

        Set(body, "temperature", options.Temperature);
        Set(body, "top_p", options.TopP);
        Set(body, "top_k", options.TopK);
        Set(body, "max_tokens", options.MaxOutputTokens);
        Set(body, "seed", options.Seed);
        Set(body, "presence_penalty", options.PresencePenalty);
        Set(body, "frequency_penalty", options.FrequencyPenalty);
        if (options.StopSequences is { Count: > 0 } stops)
        {
            body["stop"] = new JsonArray([.. stops.Select(s => (JsonNode)s)]);
        }

        if (options.ResponseFormat is ChatResponseFormatJson json)
        {
            body["response_format"] = json.Schema is { } schema
                ? new JsonObject { ["type"] = "json_schema", ["json_schema"] = new JsonObject { ["name"] = json.SchemaName ?? "output", ["schema"] = JsonNode.Parse(schema.GetRawText()) } }
                : new JsonObject { ["type"] = "json_object" };
        }

        var functions = options.Tools?.OfType<AIFunctionDeclaration>().ToList() ?? [];
        if (functions.Count > 0)
        {
            body["tools"] = new JsonArray([.. functions.Select(f => (JsonNode)new JsonObject
            {
                ["type"] = "function",
                ["function"] = new JsonObject
                {
                    ["name"] = f.Name,
                    ["description"] = f.Description,
                    ["parameters"] = JsonNode.Parse(f.JsonSchema.GetRawText()),
                },
            })]);
            body["tool_choice"] = options.ToolMode switch
            {
                NoneChatToolMode => "none",
                RequiredChatToolMode { RequiredFunctionName: { } name } => new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = name } },
                RequiredChatToolMode => "required",
                _ => "auto",
            };
        }

        return body;
    }

    private static void Set<T>(JsonObject body, string name, T? value) where T : struct
    {
        if (value is { } v)
        {
            body[name] = JsonValue.Create(v);
        }
    }

    private ChatMessage Message(ChatRequest request, ChoiceResult result)
    {
        var text = result.Text.ToString();
        var (content, calls) = request.ParsesTools ? model.ToolFormat.Parse(text) : (text, []);
        var contents = new List<AIContent>();
        if (!string.IsNullOrEmpty(content))
        {
            contents.Add(new TextContent(content));
        }

        contents.AddRange(calls.Select(Call));
        return new ChatMessage(ChatRole.Assistant, contents);
    }

    private static FunctionCallContent Call(Tools.ParsedToolCall call)
    {
        IDictionary<string, object?>? arguments;
        try
        {
            arguments = JsonSerializer.Deserialize<Dictionary<string, object?>>(call.ArgumentsJson);
        }
        catch (JsonException)
        {
            arguments = new Dictionary<string, object?>();
        }

        return new FunctionCallContent(call.Id, call.Name, arguments);
    }

    private ChatResponseUpdate Update(string id, IList<AIContent> contents) => new(ChatRole.Assistant, contents)
    {
        ResponseId = id,
        MessageId = id,
        ModelId = model.Id,
        CreatedAt = DateTimeOffset.UtcNow,
    };

    private static ChatFinishReason Finish(string reason) => reason switch
    {
        "length" => ChatFinishReason.Length,
        "tool_calls" => ChatFinishReason.ToolCalls,
        _ => ChatFinishReason.Stop,
    };

    private static UsageDetails Usage(int promptTokens, IReadOnlyList<ChoiceResult> results)
    {
        var output = results.Sum(r => r.Usage?.CompletionTokens ?? 0);
        return new UsageDetails
        {
            InputTokenCount = promptTokens,
            OutputTokenCount = output,
            TotalTokenCount = promptTokens + output,
            CachedInputTokenCount = results.Max(r => r.Usage?.CachedPromptTokens ?? 0),
        };
    }
}
