using System.Text.Json;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Serving.OpenAi;
using AspireAi.Inference.Serving.Tools;
using AspireAi.ServiceDefaults;

namespace AspireAi.Inference.Serving;

/// <summary><c>POST /v1/chat/completions</c>: OpenAI's chat API over the engine, streaming (SSE) or not, with tools and JSON output.</summary>
internal static class ChatCompletionsEndpoints
{
    public static void MapChatCompletionsEndpoints(this IEndpointRouteBuilder app) =>
        app.MapPost("/v1/chat/completions", HandleAsync);

    private static async Task<IResult> HandleAsync(HttpContext context, ServedModel model)
    {
        using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        if (ServingErrors.UnknownModel(model, body.RootElement) is { } unknown)
        {
            return Results.Json(unknown.Error, statusCode: unknown.Status);
        }

        var reader = new RequestReader(body.RootElement);
        if (body.RootElement.ValueKind != JsonValueKind.Object)
        {
            reader.Fail("body", "must be a JSON object");
            return reader.ErrorResult();
        }

        var request = ChatRequest.Read(reader);
        if (reader.HasErrors)
        {
            return reader.ErrorResult();
        }

        var activity = ServingTelemetry.Start("chat", model.Id, request.Settings);
        int[] prompt;
        EngineRequestHandle[] handles;
        try
        {
            prompt = request.Prompt(model);
            handles = GenerationRunner.Submit(model, prompt, request.Settings, request.Constraint(model), TenantHeaders.Tenant(context), activity, context.RequestAborted);
        }
        catch (Exception e) when (ServingErrors.From(e, context) is { } error)
        {
            ServingTelemetry.Fail(activity, e);
            return error;
        }

        var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (request.Settings.Stream)
        {
            await StreamAsync(context, model, request, handles, prompt.Length, id, created, activity);
            return Results.Empty;
        }

        var results = await GenerationRunner.CollectAsync(handles, context.RequestAborted);
        ServingTelemetry.Finish(activity, id, model.Id, prompt.Length, results);
        return OpenAiJson.Result(Response(model, request, results, prompt, id, created));
    }

    /// <summary>A non-streaming request from a parsed body (the Batch API's path): the status and the response or error body.</summary>
    internal static async Task<(int Status, object Body)> RunAsync(ServedModel model, JsonElement body, string tenant, RequestPriority priority, CancellationToken cancellation)
    {
        if (ServingErrors.UnknownModel(model, body) is { } unknown)
        {
            return unknown;
        }

        var reader = new RequestReader(body);
        if (body.ValueKind != JsonValueKind.Object)
        {
            reader.Fail("body", "must be a JSON object");
            return (400, reader.ErrorEnvelope());
        }

        var request = ChatRequest.Read(reader);
        if (reader.HasErrors)
        {
            return (400, reader.ErrorEnvelope());
        }

        request = request with { Settings = request.Settings with { Stream = false, Priority = (RequestPriority)Math.Max((int)priority, (int)request.Settings.Priority) } };
        try
        {
            var prompt = request.Prompt(model);
            var handles = GenerationRunner.Submit(model, prompt, request.Settings, request.Constraint(model), tenant, null, cancellation);
            var results = await GenerationRunner.CollectAsync(handles, cancellation);
            return (200, Response(model, request, results, prompt, "chatcmpl-" + Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        }
        catch (Exception e) when (ServingErrors.Describe(e) is { } error)
        {
            return (error.Status, ServingErrors.Envelope(error.Status, error.Message, error.Param, error.Code));
        }
    }

    internal static object Response(ServedModel model, ChatRequest request, ChoiceResult[] results, int[] prompt, string id, long created) =>
        request.Settings.PromptLogprobs is { } k
            ? new { id, @object = "chat.completion", created, model = model.Id, choices = Choices(model, request, results), usage = GenerationRunner.Usage(prompt.Length, results.Select(r => r.Usage)),
                prompt_logprobs = PromptLogprobsJson.Vllm(model, prompt, results[0].PromptLogprobs, k) }
            : new { id, @object = "chat.completion", created, model = model.Id, choices = Choices(model, request, results), usage = GenerationRunner.Usage(prompt.Length, results.Select(r => r.Usage)) };

    private static object[] Choices(ServedModel model, ChatRequest request, ChoiceResult[] results) => results.Select((r, i) =>
    {
        var text = r.Text.ToString();
        var (content, calls) = request.ParsesTools ? model.ToolFormat.Parse(text) : (text, []);
        return (object)new
        {
            index = i,
            message = new
            {
                role = "assistant",
                content,
                refusal = (string?)null,
                tool_calls = calls.Count == 0 ? null : calls.Select(ToolCall).ToArray(),
            },
            logprobs = request.Settings.Logprobs ? new { content = LogprobContent(model, r.TokenIds, r.Logprobs, r.TopLogprobs, 0, r.TokenIds.Count) } : null,
            finish_reason = calls.Count > 0 ? "tool_calls" : r.FinishReason,
        };
    }).ToArray();

    private static object ToolCall(ParsedToolCall call) =>
        new { id = call.Id, type = "function", function = new { name = call.Name, arguments = call.ArgumentsJson } };

    /// <summary>OpenAI's <c>delta.tool_calls[]</c> entry: id, type and name on a call's first piece, argument text on every piece.</summary>
    private static object ToolCallDelta(ToolCallDelta delta) => delta.Name is null
        ? new { index = delta.Index, function = new { arguments = delta.Arguments } }
        : new { index = delta.Index, id = delta.Id, type = "function", function = new { name = delta.Name, arguments = delta.Arguments } };

    internal static object[] LogprobContent(ServedModel model, List<int> ids, List<float> logprobs, List<Engine.TokenLogprob[]?> tops, int from, int to)
    {
        var content = new object[to - from];
        for (var t = from; t < to; t++)
        {
            content[t - from] = new
            {
                token = model.TokenBytes.Text(ids[t]),
                logprob = logprobs[t],
                bytes = model.TokenBytes.Bytes(ids[t]).Select(b => (int)b).ToArray(),
                top_logprobs = (tops[t] ?? []).Select(a => new
                {
                    token = model.TokenBytes.Text(a.Id),
                    logprob = a.Logprob,
                    bytes = model.TokenBytes.Bytes(a.Id).Select(b => (int)b).ToArray(),
                }).ToArray(),
            };
        }

        return content;
    }

    private static async Task StreamAsync(HttpContext context, ServedModel model, ChatRequest request, EngineRequestHandle[] handles,
        int promptTokens, string id, long created, System.Diagnostics.Activity? activity)
    {
        var response = context.Response;
        var cancellation = context.RequestAborted;
        var settings = request.Settings;
        ServerSentEvents.Begin(response);
        var results = handles.Select(_ => new ChoiceResult()).ToArray();
        var parsers = handles.Select(_ => request.ParsesTools ? model.ToolFormat.Stream() : null).ToArray();

        object Chunk(int index, object delta, object? logprobs, string? finish) => Build(id, created, model.Id, settings.IncludeUsage,
            new { index, delta, logprobs, finish_reason = finish });

        // One chunk per piece, as OpenAI streams them.
        async Task WriteToolCallDeltasAsync(int choice)
        {
            foreach (var delta in parsers[choice]?.TakeDeltas() ?? [])
            {
                await ServerSentEvents.WriteAsync(response, Chunk(choice, new { tool_calls = new[] { ToolCallDelta(delta) } }, null, null), cancellation);
            }
        }

        for (var i = 0; i < handles.Length; i++)
        {
            await ServerSentEvents.WriteAsync(response, Chunk(i, new { role = "assistant", content = "" }, null, null), cancellation);
        }

        await foreach (var (choice, e) in GenerationRunner.MergeAsync(handles, cancellation))
        {
            var result = results[choice];
            var before = result.TokenIds.Count;
            result.Add(e);
            var text = parsers[choice] is { } parser ? parser.Push(e.Text) : e.Text;
            var logprobs = settings.Logprobs && result.TokenIds.Count > before
                ? new { content = LogprobContent(model, result.TokenIds, result.Logprobs, result.TopLogprobs, before, result.TokenIds.Count) }
                : null;
            if (text.Length > 0 || logprobs is not null)
            {
                await ServerSentEvents.WriteAsync(response, Chunk(choice, new { content = text }, logprobs, null), cancellation);
            }

            await WriteToolCallDeltasAsync(choice);

            if (e.FinishReason is { } finish)
            {
                var reason = finish;
                if (parsers[choice] is { } p)
                {
                    var (rest, calls) = p.Finish();
                    if (rest.Length > 0)
                    {
                        await ServerSentEvents.WriteAsync(response, Chunk(choice, new { content = rest }, null, null), cancellation);
                    }

                    await WriteToolCallDeltasAsync(choice);
                    if (calls.Count > 0)
                    {
                        reason = "tool_calls";
                    }
                }

                result.FinishReason = reason;
                await ServerSentEvents.WriteAsync(response, Chunk(choice, new { }, null, reason), cancellation);
            }
        }

        await GenerationRunner.EndStreamAsync(response, "chat.completion.chunk", id, created, model.Id, promptTokens, results,
            settings.IncludeUsage, activity, cancellation);
    }

    private static object Build(string id, long created, string model, bool includeUsage, object choice) => includeUsage
        ? new { id, @object = "chat.completion.chunk", created, model, choices = new[] { choice }, usage = (object?)null }
        : new { id, @object = "chat.completion.chunk", created, model, choices = new[] { choice } };
}
