using System.Text.Json;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Serving.OpenAi;
using AspireAi.ServiceDefaults;

namespace AspireAi.Inference.Serving;

/// <summary><c>POST /v1/completions</c>: OpenAI's (legacy) text completions: prompt as text, token ids or a list of either.</summary>
internal static class CompletionsEndpoints
{
    public static void MapCompletionsEndpoints(this IEndpointRouteBuilder app) =>
        app.MapPost("/v1/completions", HandleAsync);

    /// <summary>A completion request, read and validated.</summary>
    /// <param name="PromptLogprobs">vLLM's <c>prompt_logprobs</c> (alternatives per prompt position), reported apart from
    /// <c>logprobs</c>; null when not asked for.</param>
    private sealed record Request(GenerationSettings Settings, List<int[]> Prompts, bool Echo, int? PromptLogprobs)
    {
        // Choice i belongs to prompt i / n (OpenAI's order for a list of prompts).
        public int[] Prompt(int choice) => Prompts[choice / Settings.N];

        public string EchoText(ServedModel model, int choice) => Echo ? model.Tokenizer.Decode(Prompt(choice)) : "";

        /// <summary>Echo with logprobs: the prompt's tokens lead the choice's logprobs (OpenAI's legacy behaviour).</summary>
        public bool EchoLogprobs => Echo && Settings.Logprobs;

        public int PromptTokens => Prompts.Sum(p => p.Length);
    }

    private static (Request? Request, int Status, OpenAiErrorEnvelope? Error) Read(ServedModel model, JsonElement body)
    {
        if (ServingErrors.UnknownModel(model, body) is { } unknown)
        {
            return (null, unknown.Status, unknown.Error);
        }

        var reader = new RequestReader(body);
        if (body.ValueKind != JsonValueKind.Object)
        {
            reader.Fail("body", "must be a JSON object");
            return (null, 400, reader.ErrorEnvelope());
        }

        var settings = GenerationSettings.Read(reader, chat: false);
        var prompts = Prompts(reader, model);
        var echo = reader.Bool("echo") ?? false;
        var promptLogprobs = reader.Int("prompt_logprobs", 0, 20);
        reader.Unsupported("suffix", v => v.ValueKind == JsonValueKind.String && v.GetString() == "", "is not supported");
        if (reader.HasErrors)
        {
            return (null, 400, reader.ErrorEnvelope());
        }

        // One engine computation serves both: the prompt's part of echoed logprobs and vLLM's prompt_logprobs.
        if (echo && settings.Logprobs || promptLogprobs is not null)
        {
            settings = settings with { PromptLogprobs = Math.Max(echo && settings.Logprobs ? settings.TopLogprobs : 0, promptLogprobs ?? 0) };
        }

        return (new Request(settings, prompts, echo, promptLogprobs), 200, null);
    }

    private static EngineRequestHandle[] Submit(ServedModel model, Request request, string tenant, System.Diagnostics.Activity? activity, CancellationToken cancellation)
    {
        var settings = request.Settings;
        Func<ITokenConstraint>? constraint = null;
        if (settings.Json)
        {
            var schema = settings.ResponseSchema;
            _ = StructuredOutput.GrammarConstraint.ForJson(model.TokenTrie, model.TokenBytes, schema);
            constraint = () => StructuredOutput.GrammarConstraint.ForJson(model.TokenTrie, model.TokenBytes, schema);
        }

        var handles = new List<EngineRequestHandle>();
        try
        {
            foreach (var prompt in request.Prompts)
            {
                handles.AddRange(GenerationRunner.Submit(model, prompt, settings, constraint, tenant, activity, cancellation));
            }
        }
        catch
        {
            handles.ForEach(h => h.Abort());
            throw;
        }

        return [.. handles];
    }

    private static object Response(ServedModel model, Request request, ChoiceResult[] results, string id, long created) => new
    {
        id,
        @object = "text_completion",
        created,
        model = model.Id,
        choices = results.Select((r, i) =>
        {
            var echo = request.EchoText(model, i);
            var logprobs = !request.Settings.Logprobs ? null
                : request.EchoLogprobs ? Concat(EchoLogprobs(model, request, i, r), Legacy(model, r, 0, r.TokenIds.Count, echo.Length))
                : Logprobs(model, r, 0, r.TokenIds.Count, 0);
            return request.PromptLogprobs is { } k
                ? (object)new { index = i, text = echo + r.Text, logprobs, finish_reason = r.FinishReason, prompt_logprobs = PromptLogprobsJson.Vllm(model, request.Prompt(i), r.PromptLogprobs, k) }
                : new { index = i, text = echo + r.Text, logprobs, finish_reason = r.FinishReason };
        }).ToArray(),
        usage = GenerationRunner.Usage(request.PromptTokens, results.Select(r => r.Usage)),
    };

    private static async Task<IResult> HandleAsync(HttpContext context, ServedModel model)
    {
        using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        var (request, status, error) = Read(model, body.RootElement);
        if (request is null)
        {
            return Results.Json(error, statusCode: status);
        }

        var activity = ServingTelemetry.Start("text_completion", model.Id, request.Settings);
        EngineRequestHandle[] handles;
        try
        {
            handles = Submit(model, request, TenantHeaders.Tenant(context), activity, context.RequestAborted);
        }
        catch (Exception e) when (ServingErrors.From(e, context) is { } refusal)
        {
            ServingTelemetry.Fail(activity, e);
            return refusal;
        }

        var id = "cmpl-" + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (request.Settings.Stream)
        {
            await StreamAsync(context, model, request, handles, id, created, activity);
            return Results.Empty;
        }

        var results = await GenerationRunner.CollectAsync(handles, context.RequestAborted);
        ServingTelemetry.Finish(activity, id, model.Id, request.PromptTokens, results);
        return OpenAiJson.Result(Response(model, request, results, id, created));
    }

    /// <summary>A non-streaming request from a parsed body (the Batch API's path): the status and the response or error body.</summary>
    internal static async Task<(int Status, object Body)> RunAsync(ServedModel model, JsonElement body, string tenant, RequestPriority priority, CancellationToken cancellation)
    {
        var (request, status, error) = Read(model, body);
        if (request is null)
        {
            return (status, error!);
        }

        request = request with { Settings = request.Settings with { Stream = false, Priority = (RequestPriority)Math.Max((int)priority, (int)request.Settings.Priority) } };
        try
        {
            var results = await GenerationRunner.CollectAsync(Submit(model, request, tenant, null, cancellation), cancellation);
            return (200, Response(model, request, results, "cmpl-" + Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        }
        catch (Exception e) when (ServingErrors.Describe(e) is { } refusal)
        {
            return (refusal.Status, ServingErrors.Envelope(refusal.Status, refusal.Message, refusal.Param, refusal.Code));
        }
    }

    private static List<int[]> Prompts(RequestReader reader, ServedModel model)
    {
        var prompts = new List<int[]>();
        int[] Encode(string text) => model.Tokenizer.Encode(text, addSpecial: true, parseSpecial: false);
        int[]? Ids(JsonElement array)
        {
            if (!array.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out _)))
            {
                return null;
            }

            var ids = array.EnumerateArray().Select(e => e.GetInt32()).ToArray();
            if (ids.Any(id => id < 0 || id >= model.Config.VocabularySize))
            {
                reader.Fail("prompt", $"token id {ids.First(id => id < 0 || id >= model.Config.VocabularySize)} is outside the vocabulary of {model.Config.VocabularySize}");
                return [];
            }

            return ids;
        }

        switch (reader.Element("prompt"))
        {
            case { ValueKind: JsonValueKind.String } text:
                prompts.Add(Encode(text.GetString()!));
                break;
            case { ValueKind: JsonValueKind.Array } array when array.GetArrayLength() > 0:
                if (Ids(array) is { } single)
                {
                    prompts.Add(single);
                    break;
                }

                foreach (var item in array.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.String)
                    {
                        prompts.Add(Encode(item.GetString()!));
                    }
                    else if (item.ValueKind == JsonValueKind.Array && Ids(item) is { } ids)
                    {
                        prompts.Add(ids);
                    }
                    else
                    {
                        reader.Fail("prompt", "must be a string, an array of strings, an array of token ids or an array of such arrays");
                        break;
                    }
                }

                break;
            default:
                reader.Fail("prompt", "is required: a string, an array of strings or token ids");
                break;
        }

        if (prompts.Any(p => p.Length == 0))
        {
            reader.Fail("prompt", "must not be empty");
        }

        return prompts;
    }

    /// <summary>The legacy logprobs arrays of one run of tokens (OpenAI's <c>logprobs</c> object of a text completion).</summary>
    private sealed record LegacyLogprobs(List<string> Tokens, List<float?> TokenLogprobs, List<Dictionary<string, float>?> TopLogprobs, List<int> TextOffset)
    {
        public object ToJson() => new { tokens = Tokens, token_logprobs = TokenLogprobs, top_logprobs = TopLogprobs, text_offset = TextOffset };
    }

    private static object Concat(LegacyLogprobs prompt, LegacyLogprobs completion) => new LegacyLogprobs(
        [.. prompt.Tokens, .. completion.Tokens],
        [.. prompt.TokenLogprobs, .. completion.TokenLogprobs],
        [.. prompt.TopLogprobs, .. completion.TopLogprobs],
        [.. prompt.TextOffset, .. completion.TextOffset]).ToJson();

    /// <summary>
    /// The prompt's part of echoed logprobs: every prompt token, the first without a logprob (nothing precedes it, as in
    /// OpenAI's and vLLM's output), each with its most likely alternatives and itself, offsets from the start of the text.
    /// </summary>
    private static LegacyLogprobs EchoLogprobs(ServedModel model, Request request, int choice, ChoiceResult r)
    {
        var prompt = request.Prompt(choice);
        var scored = r.PromptLogprobs ?? [];
        var echoLength = request.EchoText(model, choice).Length;
        var result = new LegacyLogprobs([], [], [], []);
        var offset = 0;
        for (var t = 0; t < prompt.Length; t++)
        {
            var text = model.TokenBytes.Text(prompt[t]);
            result.Tokens.Add(text);
            result.TextOffset.Add(Math.Min(offset, echoLength));
            offset += text.Length;
            if (t == 0 || t - 1 >= scored.Count)
            {
                result.TokenLogprobs.Add(null);
                result.TopLogprobs.Add(null);
                continue;
            }

            var entry = scored[t - 1];
            result.TokenLogprobs.Add(entry.Logprob);
            var map = new Dictionary<string, float>();
            foreach (var a in (entry.TopLogprobs ?? []).Take(request.Settings.TopLogprobs))
            {
                map.TryAdd(model.TokenBytes.Text(a.Id), a.Logprob);
            }

            map.TryAdd(text, entry.Logprob);
            result.TopLogprobs.Add(map);
        }

        return result;
    }

    /// <summary>The legacy logprobs object for tokens [from, to) whose text starts at <paramref name="offset"/> in the choice's text.</summary>
    private static object Logprobs(ServedModel model, ChoiceResult r, int from, int to, int offset) => Legacy(model, r, from, to, offset).ToJson();

    private static LegacyLogprobs Legacy(ServedModel model, ChoiceResult r, int from, int to, int offset)
    {
        var tokens = new List<string>();
        var offsets = new List<int>();
        for (var t = from; t < to; t++)
        {
            var text = model.TokenBytes.Text(r.TokenIds[t]);
            tokens.Add(text);
            offsets.Add(offset);
            offset += text.Length;
        }

        return new LegacyLogprobs(
            tokens,
            r.Logprobs.GetRange(from, to - from).Select(l => (float?)l).ToList(),
            r.TopLogprobs.GetRange(from, to - from).Select(top =>
            {
                var map = new Dictionary<string, float>();
                foreach (var a in top ?? [])
                {
                    map.TryAdd(model.TokenBytes.Text(a.Id), a.Logprob);
                }

                return (Dictionary<string, float>?)map;
            }).ToList(),
            offsets);
    }

    private static async Task StreamAsync(HttpContext context, ServedModel model, Request request, EngineRequestHandle[] handles,
        string id, long created, System.Diagnostics.Activity? activity)
    {
        var settings = request.Settings;
        var response = context.Response;
        var cancellation = context.RequestAborted;
        ServerSentEvents.Begin(response);
        var results = handles.Select(_ => new ChoiceResult()).ToArray();
        var offsets = new int[handles.Length];
        object Chunk(int index, string text, object? logprobs, string? finish, object? promptLogprobs = null)
        {
            object choice = promptLogprobs is null
                ? new { index, text, logprobs, finish_reason = finish }
                : new { index, text, logprobs, finish_reason = finish, prompt_logprobs = promptLogprobs };
            return settings.IncludeUsage
                ? new { id, @object = "text_completion", created, model = model.Id, choices = new[] { choice }, usage = (object?)null }
                : new { id, @object = "text_completion", created, model = model.Id, choices = new[] { choice } };
        }

        // Echoed text goes first; when it carries prompt logprobs it waits for them (computed by the prefill).
        var waitsForPrompt = settings.PromptLogprobs is not null;
        for (var i = 0; i < handles.Length && !waitsForPrompt; i++)
        {
            var prefix = request.EchoText(model, i);
            if (prefix.Length > 0)
            {
                offsets[i] = prefix.Length;
                await ServerSentEvents.WriteAsync(response, Chunk(i, prefix, null, null), cancellation);
            }
        }

        await foreach (var (choice, e) in GenerationRunner.MergeAsync(handles, cancellation))
        {
            var result = results[choice];
            var before = result.TokenIds.Count;
            result.Add(e);
            if (e.PromptLogprobs is not null)
            {
                var prefix = request.EchoText(model, choice);
                offsets[choice] = prefix.Length;
                await ServerSentEvents.WriteAsync(response, Chunk(choice, prefix,
                    request.EchoLogprobs ? EchoLogprobs(model, request, choice, result).ToJson() : null, null,
                    request.PromptLogprobs is { } k ? PromptLogprobsJson.Vllm(model, request.Prompt(choice), result.PromptLogprobs, k) : null), cancellation);
                continue;
            }

            var logprobs = settings.Logprobs && result.TokenIds.Count > before ? Logprobs(model, result, before, result.TokenIds.Count, offsets[choice]) : null;
            if (e.Text.Length > 0 || logprobs is not null)
            {
                await ServerSentEvents.WriteAsync(response, Chunk(choice, e.Text, logprobs, null), cancellation);
            }

            offsets[choice] += e.Text.Length;
            if (e.FinishReason is { } finish)
            {
                await ServerSentEvents.WriteAsync(response, Chunk(choice, "", null, finish), cancellation);
            }
        }

        await GenerationRunner.EndStreamAsync(response, "text_completion", id, created, model.Id, request.PromptTokens, results,
            settings.IncludeUsage, activity, cancellation);
    }
}
