using System.Text.Json;
using AspireAi.Gateway.Validation;

namespace AspireAi.Gateway.Caching;

/// <summary>Which requests the caches may answer.</summary>
internal static class CachePolicy
{
    /// <summary>
    /// The exact cache takes deterministic requests only: embeddings always; completions with <c>temperature</c> 0 or a
    /// <c>seed</c> (the same seed gives the same sample). Anything else would freeze one random sample as "the" answer.
    /// </summary>
    public static bool IsDeterministic(RequestKind kind, JsonElement body) =>
        kind == RequestKind.Embeddings
        || (body.TryGetProperty("temperature", out var t) && t.ValueKind == JsonValueKind.Number && t.GetDouble() == 0)
        || (body.TryGetProperty("seed", out var s) && s.ValueKind == JsonValueKind.Number);

    public static bool IsStreaming(JsonElement body) =>
        body.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True;
}
