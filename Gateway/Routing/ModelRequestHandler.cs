using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using AspireAi.Gateway.Auth;
using AspireAi.Gateway.Caching;
using AspireAi.Gateway.Limits;
using AspireAi.Gateway.Replicas;
using AspireAi.Gateway.Usage;
using AspireAi.Gateway.Validation;
using Microsoft.Extensions.Options;

namespace AspireAi.Gateway.Routing;

/// <summary>
/// One OpenAI model request (chat completions, completions, embeddings) through the gateway, in order: read the body
/// (size limit) → validate it (JSON Schema) → check the key may use the model → find where it is served → admit it
/// (rate limits, budget) → prompt guard → exact cache → semantic cache → forward to a replica (retrying before the first
/// byte, then fallbacks) → charge tokens from the response's <c>usage</c>, store it in the cache, record usage.
/// </summary>
internal sealed class ModelRequestHandler(
    ModelRouter router,
    ILimiter limiter,
    PromptGuard guard,
    ResponseCache cache,
    SemanticCache semanticCache,
    ReplicaForwarder forwarder,
    UsageWriter usage,
    GatewayMetrics metrics,
    IOptions<GatewayOptions> options)
{
    public const string CacheHeader = "x-aspireai-cache";
    private readonly GatewayOptions _options = options.Value;

    public async Task HandleAsync(HttpContext context, RequestKind kind)
    {
        var started = Stopwatch.GetTimestamp();
        var caller = Caller.Of(context);
        var outcome = new Outcome();
        try
        {
            await HandleAsync(context, kind, caller, outcome);
        }
        finally
        {
            usage.Record(new UsageRecord(DateTimeOffset.UtcNow, caller.KeyId, caller.Tenant, context.Request.Path.Value ?? "",
                outcome.Model, outcome.Usage?.PromptTokens ?? 0, outcome.Usage?.CompletionTokens ?? 0,
                Stopwatch.GetElapsedTime(started).TotalMilliseconds, context.Response.StatusCode, outcome.Cache));
        }
    }

    private sealed class Outcome
    {
        public string? Model { get; set; }
        public TokenUsage? Usage { get; set; }
        public string? Cache { get; set; }
    }

    private async Task HandleAsync(HttpContext context, RequestKind kind, Caller caller, Outcome outcome)
    {
        var request = context.Request;
        var response = context.Response;
        if (request.ContentType is { } contentType && !contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            await OpenAiError.WriteAsync(context, 415, $"Unsupported content type '{contentType}': send the request as application/json.");
            return;
        }

        var bytes = await ReadBodyAsync(request, _options.Validation.MaxBodyBytes, context.RequestAborted);
        if (bytes is null)
        {
            await OpenAiError.WriteAsync(context, 413,
                $"The request body is larger than the gateway's limit of {_options.Validation.MaxBodyBytes} bytes (Gateway:Validation:MaxBodyBytes).");
            return;
        }

        using var document = Parse(bytes, out var parseError);
        if (document is null)
        {
            await OpenAiError.WriteAsync(context, 400, $"The request body is not valid JSON: {parseError}", "body");
            return;
        }

        var root = document.RootElement;
        if (RequestValidator.Validate(kind, root) is { } invalid)
        {
            await OpenAiError.WriteAsync(context, 400, invalid.Message, invalid.Param, "invalid_request_error");
            return;
        }

        var model = root.GetProperty("model").GetString()!;
        var canonical = router.Canonical(model);
        outcome.Model = canonical;
        var scope = canonical.StartsWith(ModelRouter.AgentPrefix, StringComparison.Ordinal) ? "agents" : "inference";
        if (!caller.HasScope(scope))
        {
            await OpenAiError.WriteAsync(context, 403, $"This key lacks the '{scope}' scope needed for model '{model}'.", "model", "insufficient_scope");
            return;
        }

        if (!caller.MayUse(model) && !caller.MayUse(canonical))
        {
            await OpenAiError.WriteAsync(context, 403, $"This key may not use the model '{model}'.", "model", "model_not_allowed");
            return;
        }

        var targets = await router.ResolveAsync(model, context.RequestAborted);
        if (targets.Count == 0)
        {
            await OpenAiError.WriteAsync(context, 404, $"The model '{model}' does not exist. GET /v1/models lists the models served.", "model", "model_not_found");
            return;
        }

        var decision = await limiter.AdmitAsync(caller);
        // On starting, not now: a retry on another replica clears the response headers.
        response.OnStarting(() =>
        {
            RateLimitHeaders.Write(response, decision);
            return Task.CompletedTask;
        });
        if (!decision.Allowed)
        {
            metrics.RateLimited(decision.Refused.ToString().ToLowerInvariant());
            await RateLimitHeaders.Refusal(decision).ExecuteAsync(context);
            return;
        }

        var streaming = CachePolicy.IsStreaming(root);
        var forwardBody = (ReadOnlyMemory<byte>)bytes;
        JsonObject? rewritten = null;
        // Usage of a stream comes only in a last chunk the client must ask for; ask for it, so that tokens are counted.
        var injectUsage = streaming && kind != RequestKind.Embeddings
            && !(root.TryGetProperty("stream_options", out var so) && so.ValueKind == JsonValueKind.Object
                 && so.TryGetProperty("include_usage", out var iu) && iu.ValueKind == JsonValueKind.True);
        if (guard.Enabled || injectUsage)
        {
            rewritten = JsonNode.Parse(bytes)!.AsObject();
            if (guard.Enabled && guard.Apply(kind, rewritten, out _) is { } refused)
            {
                await OpenAiError.WriteAsync(context, 400, refused.Message, refused.Param, "prompt_rejected");
                return;
            }

            if (injectUsage)
            {
                rewritten["stream_options"] = new JsonObject { ["include_usage"] = true };
            }

            forwardBody = JsonSerializer.SerializeToUtf8Bytes(rewritten);
        }

        // Caches: exact first (deterministic requests), then semantic (opt-in, chat only).
        string? exactKey = cache.Enabled && CachePolicy.IsDeterministic(kind, root)
            ? ResponseCache.Key(caller.Tenant, canonical, CacheKeys.Hash(root, "model"))
            : null;
        string? semanticScope = null;
        float[]? embedding = null;
        if (exactKey is not null && await cache.GetAsync(exactKey) is { } hit)
        {
            await ServeFromCacheAsync(context, hit, "hit", outcome);
            return;
        }

        if (semanticCache.Enabled && kind == RequestKind.ChatCompletions)
        {
            semanticScope = SemanticCache.Scope(caller.Tenant, canonical, root);
            embedding = await semanticCache.EmbedAsync(SemanticCache.Conversation(root), context.RequestAborted);
            if (embedding is not null && await semanticCache.FindAsync(semanticScope, embedding) is { } similar)
            {
                await ServeFromCacheAsync(context, similar, "semantic-hit", outcome);
                return;
            }
        }

        var cacheable = exactKey is not null || embedding is not null;
        if (cacheable)
        {
            response.Headers[CacheHeader] = "miss";
            outcome.Cache = "miss";
            metrics.CacheLookup("miss");
        }

        var observer = new ResponseObserver(response.Body, keepCopy: cacheable, cache.MaxEntryBytes) { IsEventStream = streaming };
        var original = response.Body;
        response.Body = observer;
        var affinity = Affinity(kind, root, _options.Replicas.AffinityPrefixChars);
        var forwarded = false;
        try
        {
            for (var i = 0; i < targets.Count; i++)
            {
                var target = targets[i];
                var body = target.Model == model ? forwardBody : WithModel(rewritten ?? JsonNode.Parse(bytes)!.AsObject(), target.Model);
                if (await forwarder.ForwardAsync(context, target.Service, body, affinity, fallbackFollows: i < targets.Count - 1) == ForwardResult.Forwarded)
                {
                    forwarded = true;
                    outcome.Model = target.Model;
                    break;
                }
            }
        }
        finally
        {
            response.Body = original;
        }

        if (!forwarded)
        {
            var deployments = string.Join(", ", targets.Select(t => t.Deployment).Distinct());
            response.Headers.RetryAfter = Math.Ceiling(_options.Replicas.BreakSeconds).ToString(CultureInfo.InvariantCulture);
            await OpenAiError.WriteAsync(context, 503,
                $"No replica of {deployments} could take the request for '{model}'; try again shortly.", code: "upstream_unavailable");
            return;
        }

        // The client has its whole answer now; charging tokens and filling the cache are Redis round trips it need not wait for.
        // (The next request on this connection is read only after this handler returns, so it sees the charge.)
        await response.CompleteAsync();
        observer.Complete();
        if (observer.Usage is { } used)
        {
            outcome.Usage = used;
            metrics.Tokens(outcome.Model ?? canonical, used.PromptTokens, used.CompletionTokens);
            await limiter.ChargeAsync(caller, used.Total);
        }

        if (cacheable && response.StatusCode == 200 && observer.Copy is { } copy && (!streaming || observer.SawDone))
        {
            var entry = new CachedResponse(response.ContentType ?? "application/json", copy.ToArray());
            if (exactKey is not null)
            {
                await cache.SetAsync(exactKey, entry);
            }

            if (embedding is not null)
            {
                await semanticCache.StoreAsync(semanticScope!, embedding, entry);
            }
        }
    }

    private async Task ServeFromCacheAsync(HttpContext context, CachedResponse hit, string kind, Outcome outcome)
    {
        outcome.Cache = kind;
        metrics.CacheLookup(kind);
        context.Response.Headers[CacheHeader] = kind;
        await hit.WriteAsync(context.Response, context.RequestAborted);
    }

    /// <summary>The body, or null when it is larger than <paramref name="limit"/> (413).</summary>
    internal static async Task<byte[]?> ReadBodyAsync(HttpRequest request, long limit, CancellationToken ct)
    {
        if (request.ContentLength > limit)
        {
            return null;
        }

        var buffer = new ArrayBufferWriter<byte>((int)Math.Min(request.ContentLength ?? 16 * 1024, limit) + 1);
        while (true)
        {
            var read = await request.Body.ReadAsync(buffer.GetMemory(16 * 1024), ct);
            if (read == 0)
            {
                return buffer.WrittenSpan.ToArray();
            }

            buffer.Advance(read);
            if (buffer.WrittenCount > limit)
            {
                return null;
            }
        }
    }

    private static JsonDocument? Parse(byte[] bytes, out string? error)
    {
        try
        {
            error = null;
            return JsonDocument.Parse(bytes);
        }
        catch (JsonException ex)
        {
            error = ex.Message;
            return null;
        }
    }

    private static byte[] WithModel(JsonObject body, string model)
    {
        body["model"] = model;
        return JsonSerializer.SerializeToUtf8Bytes(body);
    }

    /// <summary>
    /// The prefix-affinity key: a hash of the first <paramref name="chars"/> characters of what the model reads first (chat
    /// messages in order, or the completion prompt). Embeddings have no prefix cache to hit, so no affinity.
    /// </summary>
    public static ulong? Affinity(RequestKind kind, JsonElement root, int chars)
    {
        if (chars <= 0 || kind == RequestKind.Embeddings)
        {
            return null;
        }

        var prefix = new StringBuilder();
        if (kind == RequestKind.ChatCompletions)
        {
            foreach (var message in root.GetProperty("messages").EnumerateArray())
            {
                if (message.TryGetProperty("role", out var role))
                {
                    prefix.Append(role.GetString()).Append('\n');
                }

                if (message.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
                {
                    prefix.Append(content.GetString()).Append('\n');
                }

                if (prefix.Length >= chars)
                {
                    break;
                }
            }
        }
        else if (root.GetProperty("prompt") is { ValueKind: JsonValueKind.String } prompt)
        {
            prefix.Append(prompt.GetString());
        }

        if (prefix.Length == 0)
        {
            return null;
        }

        var text = prefix.Length > chars ? prefix.ToString(0, chars) : prefix.ToString();
        return System.IO.Hashing.XxHash3.HashToUInt64(Encoding.UTF8.GetBytes(text));
    }
}
