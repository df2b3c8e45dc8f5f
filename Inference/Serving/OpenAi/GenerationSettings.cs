using System.Text.Json;
using AspireAi.Inference.Engine;

namespace AspireAi.Inference.Serving.OpenAi;

/// <summary>The request fields chat and text completions share (OpenAI's, plus vLLM's <c>top_k</c>, <c>min_p</c>,
/// <c>repetition_penalty</c>, <c>ignore_eos</c> and <c>priority</c>).</summary>
internal sealed record GenerationSettings
{
    public required string Model { get; init; }

    public int N { get; init; } = 1;

    /// <summary>null: up to the end of the context.</summary>
    public int? MaxTokens { get; init; }

    public required SamplingParams Sampling { get; init; }

    public string[] Stop { get; init; } = [];

    public bool IgnoreEos { get; init; }

    public bool Logprobs { get; init; }

    public int TopLogprobs { get; init; }

    /// <summary>Alternatives per prompt position for prompt logprobs (completions' <c>echo</c> with <c>logprobs</c>, vLLM's
    /// <c>prompt_logprobs</c>); null: prompt logprobs are not computed.</summary>
    public int? PromptLogprobs { get; init; }

    public bool Stream { get; init; }

    public bool IncludeUsage { get; init; }

    /// <summary>Whether <c>response_format</c> asks for JSON (with <see cref="ResponseSchema"/>, or any object).</summary>
    public bool Json { get; init; }

    public JsonElement? ResponseSchema { get; init; }

    public RequestPriority Priority { get; init; }

    /// <summary>Reads the shared fields; problems go to <paramref name="r"/>.</summary>
    public static GenerationSettings Read(RequestReader r, bool chat)
    {
        var model = r.String("model", required: true) ?? "";
        var maxTokens = chat && r.Has("max_completion_tokens") ? r.Int("max_completion_tokens", 1, int.MaxValue) : r.Int("max_tokens", 1, int.MaxValue);
        var topK = r.Int("top_k", -1, int.MaxValue) ?? 0;
        var sampling = new SamplingParams
        {
            Temperature = r.Number("temperature", 0, 2) ?? 1f,
            TopP = r.Number("top_p", 0, 1, minExclusive: true) ?? 1f,
            TopK = topK < 0 ? 0 : topK,
            MinP = r.Number("min_p", 0, 1) ?? 0f,
            PresencePenalty = r.Number("presence_penalty", -2, 2) ?? 0f,
            FrequencyPenalty = r.Number("frequency_penalty", -2, 2) ?? 0f,
            RepetitionPenalty = r.Number("repetition_penalty", 0, 100, minExclusive: true) ?? 1f,
            Seed = r.Seed("seed"),
        };

        var stream = r.Bool("stream") ?? false;
        var includeUsage = false;
        if (r.Element("stream_options") is { } options)
        {
            if (!stream)
            {
                r.Fail("stream_options", "is only allowed when stream is true");
            }
            else if (options.ValueKind != JsonValueKind.Object)
            {
                r.Fail("stream_options", "must be an object");
            }
            else if (options.TryGetProperty("include_usage", out var include))
            {
                if (include.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                {
                    r.Fail("stream_options.include_usage", "must be a boolean");
                }
                else
                {
                    includeUsage = include.GetBoolean();
                }
            }
        }

        bool logprobs;
        int topLogprobs;
        if (chat)
        {
            logprobs = r.Bool("logprobs") ?? false;
            topLogprobs = r.Int("top_logprobs", 0, 20) ?? 0;
            if (topLogprobs > 0 && !logprobs)
            {
                r.Fail("top_logprobs", "needs logprobs set to true");
            }
        }
        else
        {
            // Completions: logprobs is the number of alternatives (0–5), null for none.
            var k = r.Int("logprobs", 0, 5);
            logprobs = k is not null;
            topLogprobs = k ?? 0;
        }

        r.Unsupported("logit_bias", v => v.ValueKind == JsonValueKind.Object && !v.EnumerateObject().Any(), "is not supported");
        var n = r.Int("n", 1, 128) ?? 1;
        r.Unsupported("best_of", v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var b) && b == n, "is only supported equal to n");
        var (json, schema) = ResponseFormat(r);
        var priority = r.Int("priority", int.MinValue, int.MaxValue) ?? 0;
        return new GenerationSettings
        {
            Model = model,
            N = n,
            MaxTokens = maxTokens,
            Sampling = sampling,
            Stop = r.Stop("stop"),
            IgnoreEos = r.Bool("ignore_eos") ?? false,
            Logprobs = logprobs,
            TopLogprobs = topLogprobs,
            Stream = stream,
            IncludeUsage = includeUsage,
            Json = json,
            ResponseSchema = schema,
            Priority = priority > 0 ? RequestPriority.Batch : RequestPriority.Interactive,
        };
    }

    private static (bool Json, JsonElement? Schema) ResponseFormat(RequestReader r)
    {
        if (r.Element("response_format") is not { } format)
        {
            return (false, null);
        }

        if (format.ValueKind != JsonValueKind.Object || !format.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
        {
            r.Fail("response_format", "must be an object with a string 'type'");
            return (false, null);
        }

        switch (type.GetString())
        {
            case "text":
                return (false, null);
            case "json_object":
                return (true, null);
            case "json_schema":
                if (format.TryGetProperty("json_schema", out var wrapper) && wrapper.ValueKind == JsonValueKind.Object
                    && wrapper.TryGetProperty("schema", out var schema) && schema.ValueKind is JsonValueKind.Object or JsonValueKind.True)
                {
                    return (true, schema.Clone());
                }

                r.Fail("response_format.json_schema.schema", "is required (an object) when type is json_schema");
                return (false, null);
            default:
                r.Fail("response_format.type", $"must be text, json_object or json_schema, not '{type.GetString()}'");
                return (false, null);
        }
    }
}
