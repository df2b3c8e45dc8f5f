using System.Text.Json;

namespace AspireAi.Inference.Serving.OpenAi;

/// <summary>Writes OpenAI's streaming responses: <c>data: {json}</c> events, flushed one by one, ending with <c>data: [DONE]</c>.</summary>
internal static class ServerSentEvents
{
    public static void Begin(HttpResponse response)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no"; // proxies must not hold tokens back
    }

    public static async Task WriteAsync(HttpResponse response, object payload, CancellationToken cancellation)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(payload, OpenAiJson.Options);
        await response.Body.WriteAsync("data: "u8.ToArray(), cancellation);
        await response.Body.WriteAsync(json, cancellation);
        await response.Body.WriteAsync("\n\n"u8.ToArray(), cancellation);
        await response.Body.FlushAsync(cancellation);
    }

    public static async Task DoneAsync(HttpResponse response, CancellationToken cancellation)
    {
        await response.Body.WriteAsync("data: [DONE]\n\n"u8.ToArray(), cancellation);
        await response.Body.FlushAsync(cancellation);
    }
}

internal static class OpenAiJson
{
    /// <summary>OpenAI's bodies: nulls written (clients expect e.g. <c>"finish_reason": null</c>), non-ASCII kept readable.</summary>
    public static readonly JsonSerializerOptions Options = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static IResult Result(object body) => Results.Json(body, Options);
}
