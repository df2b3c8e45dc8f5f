using AspireAi.Inference.Engine;
using AspireAi.Inference.Serving.StructuredOutput;
using AspireAi.Inference.Tokenization.Jinja;

namespace AspireAi.Inference.Serving.OpenAi;

/// <summary>Maps what the engine and the template refuse to OpenAI errors.</summary>
internal static class ServingErrors
{
    /// <summary>404 <c>model_not_found</c> when the body names a model this replica does not serve (checked before anything
    /// else: another model's request is never validated or served here).</summary>
    public static (int Status, OpenAiErrorEnvelope Error)? UnknownModel(ServedModel model, System.Text.Json.JsonElement body) =>
        body.ValueKind == System.Text.Json.JsonValueKind.Object && body.TryGetProperty("model", out var name)
            && name.ValueKind == System.Text.Json.JsonValueKind.String && name.GetString() != model.Id
            ? (StatusCodes.Status404NotFound, Envelope(StatusCodes.Status404NotFound,
                $"The model '{name.GetString()}' does not exist. This server serves '{model.Id}'.", "model", "model_not_found"))
            : null;

    /// <summary>The error result for <paramref name="error"/>, or null when it is not a client-visible refusal.</summary>
    public static IResult? From(Exception error, HttpContext context)
    {
        if (Describe(error) is not { } e)
        {
            return null;
        }

        if (e.RetryAfter is { } retry)
        {
            context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retry.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return OpenAiError.Result(e.Status, e.Message, e.Param, e.Code);
    }

    /// <summary>Status and OpenAI error fields for a refusal; null for anything else (a server error).</summary>
    public static (int Status, string Message, string? Param, string? Code, TimeSpan? RetryAfter)? Describe(Exception error) => error switch
    {
        AdmissionException { RetryAfter: { } retry } full => (StatusCodes.Status503ServiceUnavailable, full.Message, null, full.Code, retry),
        AdmissionException refused => (StatusCodes.Status400BadRequest, refused.Message, refused.Param, refused.Code, null),
        UnsupportedSchemaException schema => (StatusCodes.Status400BadRequest, $"response_format: {schema.Message}", "response_format", "invalid_value", null),
        JinjaException template => (StatusCodes.Status400BadRequest, $"The chat template rejected the messages: {template.Message}", "messages", "invalid_value", null),
        ArgumentException argument => (StatusCodes.Status400BadRequest, argument.Message, argument.ParamName, "invalid_value", null),
        _ => null,
    };

    public static OpenAiErrorEnvelope Envelope(int status, string message, string? param, string? code) =>
        new(new OpenAiError(message, OpenAiError.TypeFor(status), param, code));
}
