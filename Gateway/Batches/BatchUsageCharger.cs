using System.Text.Json;
using AspireAi.Gateway.Auth;
using AspireAi.Gateway.Limits;
using AspireAi.Gateway.Redis;
using AspireAi.Gateway.Usage;
using StackExchange.Redis;

namespace AspireAi.Gateway.Batches;

/// <summary>
/// Counts a batch's tokens like other requests' — against the key's tokens per minute and budget, and as a usage record —
/// once, when the gateway first sees the batch finished (completed, failed, cancelled or expired) in an answer it forwards:
/// the batch object carries OpenAI's <c>usage</c>, summed by Inference over the requests that succeeded.
/// </summary>
/// <remarks>
/// The gateway sees no tokens while a batch runs (Inference runs its lines itself, in idle capacity), so tokens are charged
/// when the batch is first read finished, normally by the client polling it, to the key that reads it (the caller's own
/// tenant, and in practice the key that created it). "Once" across polls and gateway replicas is a Redis <c>SET NX</c> per
/// batch id: while Redis is down nothing is charged (limits are off then anyway) and the batch is charged when it is next
/// read with Redis back. The markers have no expiry — a batch can be read at any later time — and cost one small key per
/// finished batch.
/// </remarks>
internal sealed class BatchUsageCharger(RedisGuard redis, ILimiter limiter, UsageWriter usage, GatewayMetrics metrics, TimeProvider time)
{
    private static readonly string[] Finished = ["completed", "failed", "cancelled", "expired"];

    /// <summary>Charges every finished batch among <paramref name="batches"/> that has not been charged yet.</summary>
    public async Task ObserveAsync(Caller caller, IEnumerable<JsonElement> batches)
    {
        foreach (var batch in batches)
        {
            if (!batch.TryGetProperty("status", out var status) || !Finished.Contains(status.GetString())
                || !batch.TryGetProperty("usage", out var used) || used.ValueKind != JsonValueKind.Object
                || batch.GetProperty("id").GetString() is not { } id)
            {
                continue;
            }

            var prompt = Tokens(used, "input_tokens");
            var completion = Tokens(used, "output_tokens");
            if (prompt + completion == 0)
            {
                continue;
            }

            var first = await redis.RunAsync("batch-usage",
                db => db.StringSetAsync($"batch-usage:{id}", caller.KeyId, expiry: null, when: When.NotExists), false);
            if (!first)
            {
                continue;
            }

            var model = batch.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
            await limiter.ChargeAsync(caller, prompt + completion);
            metrics.Tokens(model ?? "unknown", prompt, completion);
            usage.Record(new UsageRecord(time.GetUtcNow(), caller.KeyId, caller.Tenant, "/v1/batches/" + id, model, prompt, completion,
                LatencyMs: 0, Status: 200, Cache: null));
        }
    }

    private static int Tokens(JsonElement usage, string name) =>
        usage.TryGetProperty(name, out var value) && value.TryGetInt64(out var tokens) ? (int)Math.Clamp(tokens, 0, int.MaxValue / 2) : 0;
}
