using System.Diagnostics;
using AspireAi.Inference.Engine;
using AspireAi.Inference.Serving.OpenAi;

namespace AspireAi.Inference.Serving;

/// <summary>
/// One span per generation request with OpenTelemetry's GenAI semantic-convention attributes (<c>gen_ai.*</c>); the
/// engine adds an <c>engine.step</c> event for every step the request takes part in. The source is named after the
/// application, which ServiceDefaults already exports.
/// </summary>
internal static class ServingTelemetry
{
    public const string SourceName = "AspireAi.Inference";

    public static readonly ActivitySource Source = new(SourceName);

    public static Activity? Start(string operation, string model, GenerationSettings settings)
    {
        var activity = Source.StartActivity($"{operation} {model}", ActivityKind.Internal);
        if (activity is null)
        {
            return null;
        }

        activity.SetTag("gen_ai.operation.name", operation);
        activity.SetTag("gen_ai.provider.name", "aspireai");
        activity.SetTag("gen_ai.request.model", model);
        activity.SetTag("gen_ai.request.temperature", settings.Sampling.Temperature);
        activity.SetTag("gen_ai.request.top_p", settings.Sampling.TopP);
        if (settings.MaxTokens is { } max)
        {
            activity.SetTag("gen_ai.request.max_tokens", max);
        }

        if (settings.Sampling.Seed is { } seed)
        {
            activity.SetTag("gen_ai.request.seed", seed);
        }

        if (settings.N != 1)
        {
            activity.SetTag("gen_ai.request.choice.count", settings.N);
        }

        if (settings.Stop.Length > 0)
        {
            activity.SetTag("gen_ai.request.stop_sequences", settings.Stop);
        }

        activity.SetTag("gen_ai.output.type", settings.Json ? "json" : "text");
        return activity;
    }

    public static void Finish(Activity? activity, string responseId, string model, int promptTokens, IReadOnlyList<ChoiceResult> choices)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetTag("gen_ai.response.id", responseId);
        activity.SetTag("gen_ai.response.model", model);
        activity.SetTag("gen_ai.response.finish_reasons", choices.Select(c => c.FinishReason).ToArray());
        activity.SetTag("gen_ai.usage.input_tokens", promptTokens);
        activity.SetTag("gen_ai.usage.output_tokens", choices.Sum(c => c.Usage?.CompletionTokens ?? 0));
        activity.SetTag("aspireai.usage.cached_input_tokens", choices.Max(c => c.Usage?.CachedPromptTokens ?? 0));
        activity.Dispose();
    }

    public static void Fail(Activity? activity, Exception error)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetStatus(ActivityStatusCode.Error, error.Message);
        activity.SetTag("error.type", error.GetType().Name);
        activity.Dispose();
    }
}
