using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using AspireAi.Gateway.Redis;
using AspireAi.Gateway.Routing;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace AspireAi.Gateway.Caching;

/// <summary>
/// The opt-in semantic cache (<c>Gateway:SemanticCache</c>) for chat completions: the whole conversation is embedded (by the
/// inference deployment serving <c>Gateway:SemanticCache:Model</c>) and a cached answer is served when a conversation of the
/// same tenant, model and request shape (every field but the messages, plus the sequence of roles) had an embedding with
/// cosine similarity ≥ <c>Threshold</c>. Entries live in one Redis list per scope, newest first, at most <c>MaxEntries</c>,
/// each with its own expiry; a lookup reads the list and compares in the gateway. That is a linear scan — fine for the
/// hundreds of entries per scope this is sized for; a vector index (Redis Stack, Qdrant) would be the next step beyond.
/// </summary>
internal sealed class SemanticCache(RedisGuard redis, EmbeddingClient embeddings, IOptions<GatewayOptions> options,
    TimeProvider time, ILogger<SemanticCache> logger)
{
    private readonly SemanticCacheOptions _options = options.Value.SemanticCache;

    public bool Enabled => _options.Enabled;

    public static string Scope(string tenant, string model, JsonElement request)
    {
        var roles = request.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array
            ? string.Join(',', messages.EnumerateArray().Select(m => m.TryGetProperty("role", out var r) ? r.GetString() : "?"))
            : "";
        return $"sem:{{{tenant}}}:{model}:{CacheKeys.Hash(request, "messages")}:{Convert.ToHexStringLower(System.IO.Hashing.XxHash3.Hash(Encoding.UTF8.GetBytes(roles)))}";
    }

    /// <summary>The conversation as one text: each message as <c>role: content</c> on its own line.</summary>
    public static string Conversation(JsonElement request)
    {
        var text = new StringBuilder();
        foreach (var message in request.GetProperty("messages").EnumerateArray())
        {
            text.Append(message.TryGetProperty("role", out var role) ? role.GetString() : "").Append(": ");
            if (message.TryGetProperty("content", out var content))
            {
                if (content.ValueKind == JsonValueKind.String)
                {
                    text.Append(content.GetString());
                }
                else if (content.ValueKind == JsonValueKind.Array)
                {
                    foreach (var part in content.EnumerateArray())
                    {
                        if (part.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
                        {
                            text.Append(t.GetString());
                        }
                    }
                }
            }

            text.Append('\n');
        }

        return text.ToString();
    }

    /// <summary>Embeds the conversation; null when embeddings are unavailable (then the semantic cache is skipped).</summary>
    public async ValueTask<float[]?> EmbedAsync(string conversation, CancellationToken ct)
    {
        try
        {
            return await embeddings.EmbedAsync(_options.Model, conversation, ct);
        }
        catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException or JsonException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            logger.LogWarning("Semantic cache skipped: embedding with '{Model}' failed: {Error}", _options.Model, ex.Message);
            return null;
        }
    }

    public async ValueTask<CachedResponse?> FindAsync(string scope, float[] embedding)
    {
        var entries = await redis.RunAsync("semantic-cache", db => db.ListRangeAsync(scope, 0, _options.MaxEntries - 1), []);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        (double Similarity, ReadOnlyMemory<byte> Response) best = (double.MinValue, default);
        foreach (var entry in entries)
        {
            var blob = (ReadOnlyMemory<byte>)(byte[])entry!;
            if (blob.Length < 12 || BinaryPrimitives.ReadInt64LittleEndian(blob.Span) < now)
            {
                continue;
            }

            var dimensions = BinaryPrimitives.ReadInt32LittleEndian(blob.Span[8..]);
            if (dimensions != embedding.Length || blob.Length < 12 + dimensions * 4)
            {
                continue;
            }

            var vector = MemoryMarshal.Cast<byte, float>(blob.Span.Slice(12, dimensions * 4));
            var similarity = TensorPrimitives.CosineSimilarity(vector, embedding);
            if (similarity > best.Similarity)
            {
                best = (similarity, blob[(12 + dimensions * 4)..]);
            }
        }

        return best.Similarity >= _options.Threshold ? CachedResponse.Deserialize(best.Response) : null;
    }

    public async ValueTask StoreAsync(string scope, float[] embedding, CachedResponse response)
    {
        var body = response.Serialize();
        var blob = new byte[12 + embedding.Length * 4 + body.Length];
        var ttl = TimeSpan.FromSeconds(_options.TtlSeconds);
        BinaryPrimitives.WriteInt64LittleEndian(blob, time.GetUtcNow().Add(ttl).ToUnixTimeMilliseconds());
        BinaryPrimitives.WriteInt32LittleEndian(blob.AsSpan(8), embedding.Length);
        MemoryMarshal.AsBytes(embedding.AsSpan()).CopyTo(blob.AsSpan(12));
        body.CopyTo(blob.AsSpan(12 + embedding.Length * 4));
        await redis.RunAsync("semantic-cache", async db =>
        {
            var batch = db.CreateTransaction();
            _ = batch.ListLeftPushAsync(scope, blob);
            _ = batch.ListTrimAsync(scope, 0, _options.MaxEntries - 1);
            _ = batch.KeyExpireAsync(scope, ttl);
            return await batch.ExecuteAsync();
        }, false);
    }
}
